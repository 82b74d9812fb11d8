// Package servicec is service C: a raw TCP service speaking a one-line
// protocol, with its ops endpoints on a separate HTTP port (METRICS_PORT,
// as on the other services).
//
// # Protocol
//
// As soon as C accepts a connection it writes its answer line, as if the
// client had sent VERSION: a client that connects and reads (nc service-c
// 3000) gets the version. A client that keeps the connection may then send
// requests, one line each, and reads one answer line per request before
// sending the next; a connection may carry any number of requests. In ABNF
// (RFC 5234):
//
//	session    = answer *(request answer)  ; the first answer comes unasked
//	request    = command [CR] LF           ; at most 256 bytes before the LF
//	command    = %s"VERSION"               ; case-sensitive
//	answer     = ok / error
//	ok         = %s"c" SP version [SP pod] LF
//	version    = 1*253token-char           ; $VERSION
//	pod        = 1*253token-char           ; $POD_NAME, only when it is set
//	token-char = ALPHA / DIGIT / "." / "_" / "+" / "-"
//	error      = %s"ERR" SP reason LF      ; then the server closes the connection
//	reason     = 1*(%x20-7E)               ; printable ASCII, for people
//
// Every error ends the connection, so a client never has to resynchronise.
// The reasons a client can see are:
//
//	ERR empty command
//	ERR unknown command "<first 32 bytes, Go-quoted>"
//	ERR line too long: over 256 bytes
//	ERR idle timeout: no command within <IDLE_TIMEOUT_MS as a Go duration>
//	ERR injected fault
//	ERR shutting down
//
// The unasked first answer counts as a request in the metrics, and the
// fault knobs apply to it like to any other.
//
// For metrics each request gets an HTTP status code, so one error-rate
// query fits all three services: 200 answered, 400 empty or unknown
// command, 413 line too long, 500 injected fault, 499 client gone before
// the answer. An idle timeout is not a request and is not counted.
package servicec

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
)

// MaxLine is the longest request line accepted, not counting the LF.
const MaxLine = 256

// Command is a parsed request.
type Command string

// Version asks for the version (and pod) of the answering process.
const Version Command = "VERSION"

// RequestError is a request the server refuses.
type RequestError struct {
	Code   int    // HTTP status code used as the metric label
	Reason string // printable ASCII, sent after "ERR "
}

func (e *RequestError) Error() string { return e.Reason }

// ParseLine parses one request line, given without its LF.
func ParseLine(line []byte) (Command, error) {
	if len(line) > MaxLine {
		return "", &RequestError{http.StatusRequestEntityTooLarge, fmt.Sprintf("line too long: over %d bytes", MaxLine)}
	}
	line = bytes.TrimSuffix(line, []byte("\r"))
	switch string(line) {
	case string(Version):
		return Version, nil
	case "":
		return "", &RequestError{http.StatusBadRequest, "empty command"}
	}
	return "", &RequestError{http.StatusBadRequest, "unknown command " + quote(line)}
}

// quote keeps an echo of the client's bytes short and on one printable line,
// whatever they were.
func quote(b []byte) string {
	const keep = 32
	if len(b) > keep {
		return strconv.QuoteToASCII(string(b[:keep])) + "..."
	}
	return strconv.QuoteToASCII(string(b))
}

// Answer is the ok line for a version and an optional pod.
func Answer(version, pod string) string {
	if pod == "" {
		return "c " + version + "\n"
	}
	return "c " + version + " " + pod + "\n"
}
