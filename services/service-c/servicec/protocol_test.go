package servicec

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseLine(t *testing.T) {
	cases := []struct {
		line     string
		wantCode int // 0: accepted
		want     string
	}{
		{"VERSION", 0, ""},
		{"VERSION\r", 0, ""},
		{"", 400, "empty command"},
		{"\r", 400, "empty command"},
		{"version", 400, `unknown command "version"`},
		{"VERSION ", 400, `unknown command "VERSION "`},
		{" VERSION", 400, `unknown command " VERSION"`},
		{"VERSION\r\r", 400, `unknown command "VERSION\r"`},
		{"GET / HTTP/1.1\r", 400, `unknown command "GET / HTTP/1.1"`},
		{"\x00\xff\x1b[2J", 400, `unknown command "\x00\xff\x1b[2J"`},
		{"héllo 👋", 400, `unknown command "h\u00e9llo \U0001f44b"`},
		{strings.Repeat("A", 40), 400, `unknown command "` + strings.Repeat("A", 32) + `"...`},
		{strings.Repeat("A", MaxLine), 400, "unknown command"},
		{strings.Repeat("A", MaxLine+1), 413, "line too long: over 256 bytes"},
	}
	for _, tc := range cases {
		cmd, err := ParseLine([]byte(tc.line))
		if tc.wantCode == 0 {
			if err != nil || cmd != Version {
				t.Errorf("ParseLine(%q) = %q, %v; want VERSION", tc.line, cmd, err)
			}
			continue
		}
		var re *RequestError
		if !errors.As(err, &re) || re.Code != tc.wantCode || !strings.HasPrefix(re.Reason, tc.want) {
			t.Errorf("ParseLine(%q) error = %v; want %d %s", tc.line, err, tc.wantCode, tc.want)
		}
	}
}

func TestAnswer(t *testing.T) {
	if got := Answer("1.0.0", ""); got != "c 1.0.0\n" {
		t.Errorf("Answer without pod = %q", got)
	}
	if got := Answer("1.0.0", "service-c-6c4b-x"); got != "c 1.0.0 service-c-6c4b-x\n" {
		t.Errorf("Answer with pod = %q", got)
	}
}

// FuzzParseLine checks that no input crashes the parser, that only VERSION
// is accepted, and that every refusal fits on one short printable line, since
// the reason is sent back to the client verbatim after "ERR ".
func FuzzParseLine(f *testing.F) {
	for _, seed := range []string{
		"VERSION", "VERSION\r", "", "\r", "version", "GET / HTTP/1.1\r",
		"\x00\xff", "héllo 👋", "VERSION\nVERSION", strings.Repeat("A", MaxLine+1),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		cmd, err := ParseLine(line)
		accept := len(line) <= MaxLine && string(bytes.TrimSuffix(line, []byte("\r"))) == "VERSION"
		if accept != (err == nil) {
			t.Fatalf("ParseLine(%q) = %q, %v; accept should be %v", line, cmd, err, accept)
		}
		if err == nil {
			if cmd != Version {
				t.Fatalf("ParseLine(%q) accepted as %q", line, cmd)
			}
			return
		}
		var re *RequestError
		if !errors.As(err, &re) || (re.Code != 400 && re.Code != 413) {
			t.Fatalf("ParseLine(%q) error %#v is not a 400 or 413 RequestError", line, err)
		}
		if re.Reason == "" || len(re.Reason) > 160 {
			t.Fatalf("reason for %q is %d bytes, want 1 to 160", line, len(re.Reason))
		}
		for _, c := range []byte(re.Reason) {
			if c < 0x20 || c > 0x7e {
				t.Fatalf("reason %q for %q has the non-printable byte %#x", re.Reason, line, c)
			}
		}
	})
}
