// Package env reads service settings from environment variables.
//
// A Reader collects every bad value instead of stopping at the first, so a
// release with three typos fails once, naming all three. Each message names
// the variable, the value it had and an example of a good one, because the
// person reading it is looking at a crash-looping pod, not at this code.
package env

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Reader reads typed values and remembers what was wrong with them.
type Reader struct {
	lookup func(string) (string, bool)
	errs   []error
}

// OS reads the process environment.
func OS() *Reader { return New(os.LookupEnv) }

// Map reads from a map; tests use it instead of mutating the process environment.
func Map(m map[string]string) *Reader {
	return New(func(k string) (string, bool) { v, ok := m[k]; return v, ok })
}

// New reads through lookup, which has the signature of os.LookupEnv.
func New(lookup func(string) (string, bool)) *Reader { return &Reader{lookup: lookup} }

// Err returns every problem seen so far, one per line, or nil.
func (r *Reader) Err() error { return errors.Join(r.errs...) }

// Fail records a problem found by the caller's own validation.
func (r *Reader) Fail(name, value, want, example string) {
	r.errs = append(r.errs, fmt.Errorf("invalid %s=%q: want %s, e.g. %s=%s", name, value, want, name, example))
}

func (r *Reader) raw(name string) (string, bool) {
	v, ok := r.lookup(name)
	if !ok || v == "" {
		return "", false
	}
	return v, true
}

// String returns the value, or def when the variable is unset or empty.
func (r *Reader) String(name, def string) string {
	if v, ok := r.raw(name); ok {
		return v
	}
	return def
}

// Text returns free text that must be valid UTF-8, or def.
func (r *Reader) Text(name, def, example string) string {
	v := r.String(name, def)
	if !utf8.ValidString(v) {
		r.Fail(name, v, "UTF-8 text", example)
		return def
	}
	return v
}

// Token returns a value that ends up in protocol lines, metric labels and
// JSON: letters, digits and . _ + - only, at most 253 bytes (the longest
// Kubernetes object name). An unset or empty variable gives def unchecked.
func (r *Reader) Token(name, def, example string) string {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	if !isToken(v) {
		r.Fail(name, v, "1 to 253 letters, digits or . _ + -", example)
		return def
	}
	return v
}

func isToken(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("._+-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// Port returns a TCP port number, 1 to 65535.
func (r *Reader) Port(name string, def int) int {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		r.Fail(name, v, "a TCP port from 1 to 65535", strconv.Itoa(def))
		return def
	}
	return n
}

// Millis returns a duration given in whole milliseconds; min is the smallest
// value accepted, so a timeout can refuse 0 while a latency knob allows it.
func (r *Reader) Millis(name string, def time.Duration, min int, example string) time.Duration {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > 3_600_000 {
		r.Fail(name, v, fmt.Sprintf("whole milliseconds from %d to 3600000", min), example)
		return def
	}
	return time.Duration(n) * time.Millisecond
}

// Fraction returns a number from 0 to 1, or 0 when unset.
func (r *Reader) Fraction(name, example string) float64 {
	v, ok := r.raw(name)
	if !ok {
		return 0
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f >= 0 && f <= 1) { // the negated form also rejects NaN
		r.Fail(name, v, "a number from 0 to 1", example)
		return 0
	}
	return f
}

// Level returns a log level: debug, info, warn or error, in any case.
func (r *Reader) Level(name string, def slog.Level) slog.Level {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil || strings.ContainsAny(v, "+-") {
		r.Fail(name, v, "one of debug, info, warn, error", "debug")
		return def
	}
	return l
}

// Host returns an address to bind to: an IP literal or a host name.
func (r *Reader) Host(name, def string) string {
	v := r.String(name, def)
	if net.ParseIP(v) == nil && !isHostname(v) {
		r.Fail(name, v, "an IP address or host name to listen on", "0.0.0.0")
		return def
	}
	return v
}

func isHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
