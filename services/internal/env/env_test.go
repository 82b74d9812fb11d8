package env_test

import (
	"strings"
	"testing"
	"time"

	"bluegreen-harness/services/internal/env"
)

func TestReaderAcceptsGoodValuesAndDefaults(t *testing.T) {
	r := env.Map(map[string]string{
		"PORT": "8080", "RATE": "0.25", "WAIT": "0", "VERSION": "1.2.3-rc.1+build_7",
		"GREETING": "Hello 👋", "HOST": "::1", "EMPTY": "",
	})
	if got := r.Port("PORT", 1); got != 8080 {
		t.Errorf("Port = %d, want 8080", got)
	}
	if got := r.Port("UNSET", 3000); got != 3000 {
		t.Errorf("Port default = %d, want 3000", got)
	}
	if got := r.Fraction("RATE", "0.1"); got != 0.25 {
		t.Errorf("Fraction = %v, want 0.25", got)
	}
	if got := r.Millis("WAIT", time.Second, 0, "1"); got != 0 {
		t.Errorf("Millis = %v, want 0", got)
	}
	if got := r.Millis("EMPTY", time.Second, 0, "1"); got != time.Second {
		t.Errorf("Millis of an empty variable = %v, want the default 1s", got)
	}
	if got := r.Token("VERSION", "dev", "1"); got != "1.2.3-rc.1+build_7" {
		t.Errorf("Token = %q", got)
	}
	if got := r.Text("GREETING", "", "hi"); got != "Hello 👋" {
		t.Errorf("Text = %q", got)
	}
	if got := r.Host("HOST", "0.0.0.0"); got != "::1" {
		t.Errorf("Host = %q", got)
	}
	if err := r.Err(); err != nil {
		t.Fatalf("Err = %v, want nil", err)
	}
}

func TestReaderNamesVariableValueAndExample(t *testing.T) {
	cases := []struct {
		name, value string
		read        func(*env.Reader)
		want        string
	}{
		{"PORT", "abc", func(r *env.Reader) { r.Port("PORT", 3000) }, `invalid PORT="abc": want a TCP port from 1 to 65535, e.g. PORT=3000`},
		{"PORT", "0", func(r *env.Reader) { r.Port("PORT", 3000) }, `invalid PORT="0"`},
		{"PORT", "65536", func(r *env.Reader) { r.Port("PORT", 3000) }, `invalid PORT="65536"`},
		{"FAULT_ERROR_RATE", "2", func(r *env.Reader) { r.Fraction("FAULT_ERROR_RATE", "0.05") }, `invalid FAULT_ERROR_RATE="2": want a number from 0 to 1, e.g. FAULT_ERROR_RATE=0.05`},
		{"FAULT_ERROR_RATE", "NaN", func(r *env.Reader) { r.Fraction("FAULT_ERROR_RATE", "0.05") }, `invalid FAULT_ERROR_RATE="NaN"`},
		{"FAULT_ERROR_RATE", "-0.1", func(r *env.Reader) { r.Fraction("FAULT_ERROR_RATE", "0.05") }, `invalid FAULT_ERROR_RATE="-0.1"`},
		{"IDLE_TIMEOUT_MS", "0", func(r *env.Reader) { r.Millis("IDLE_TIMEOUT_MS", time.Second, 1, "5000") }, `invalid IDLE_TIMEOUT_MS="0": want whole milliseconds from 1 to 3600000, e.g. IDLE_TIMEOUT_MS=5000`},
		{"FAULT_LATENCY_MS", "1.5", func(r *env.Reader) { r.Millis("FAULT_LATENCY_MS", 0, 0, "250") }, `invalid FAULT_LATENCY_MS="1.5"`},
		{"VERSION", "1.0 beta", func(r *env.Reader) { r.Token("VERSION", "dev", "1.2.3") }, `invalid VERSION="1.0 beta": want 1 to 253 letters, digits or . _ + -, e.g. VERSION=1.2.3`},
		{"POD_NAME", "a\nb", func(r *env.Reader) { r.Token("POD_NAME", "", "p") }, `invalid POD_NAME="a\nb"`},
		{"GREETING", "\xff", func(r *env.Reader) { r.Text("GREETING", "", "hi") }, `invalid GREETING="\xff": want UTF-8 text`},
		{"HOST", "not a host", func(r *env.Reader) { r.Host("HOST", "0.0.0.0") }, `invalid HOST="not a host"`},
	}
	for _, tc := range cases {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			r := env.Map(map[string]string{tc.name: tc.value})
			tc.read(r)
			err := r.Err()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Err = %v, want it to contain %s", err, tc.want)
			}
		})
	}
}

func TestReaderReportsEveryBadValueAtOnce(t *testing.T) {
	r := env.Map(map[string]string{"PORT": "x", "METRICS_PORT": "y"})
	r.Port("PORT", 1)
	r.Port("METRICS_PORT", 2)
	err := r.Err()
	if err == nil || !strings.Contains(err.Error(), "PORT=\"x\"") || !strings.Contains(err.Error(), "METRICS_PORT=\"y\"") {
		t.Fatalf("Err = %v, want both variables named", err)
	}
}
