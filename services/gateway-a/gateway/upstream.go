package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"bluegreen-harness/services/internal/svc"
)

// connMaxAge bounds how long A keeps using one connection to an upstream.
// Kubernetes routes a TCP connection once, at connect time: after a
// blue-green switch, a connection kept busy would go on reaching the old
// ReplicaSet until its pods die. Re-dialling this often makes A follow the
// switch within about a second at a negligible cost.
const connMaxAge = time.Second

// Conn is the connection an upstream call was answered on, as A saw it: A's
// end of it (its local address, unique among A's open connections) and the
// time A began to dial it, in Unix seconds. Kubernetes routes a connection
// once, when it is opened (kube-proxy's DNAT, kept in conntrack): an answer
// from a ReplicaSet the active Service no longer selects is a connection
// opened before the switch only if Opened says so.
type Conn struct {
	ID     string  `json:"id"`
	Opened float64 `json:"opened"`
}

func connOf(c net.Conn, opened time.Time) Conn {
	return Conn{ID: c.LocalAddr().String(), Opened: float64(opened.UnixMicro()) / 1e6}
}

// dialer dials a connection that remembers when its dial began.
func dialer(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	start := time.Now()
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &datedConn{Conn: c, opened: start}, nil
}

type datedConn struct {
	net.Conn
	opened time.Time
}

// Reasons, the values of the reason label of bgh_upstream_errors_total.
const (
	reasonConfig   = "config"   // address unset or unparseable
	reasonTimeout  = "timeout"  // no answer within UPSTREAM_TIMEOUT_MS
	reasonConnect  = "connect"  // refused, unreachable, DNS
	reasonStatus   = "status"   // answered with an error: HTTP non-200, ERR line
	reasonProtocol = "protocol" // answered something unreadable
	reasonCanceled = "canceled" // A's own client went away
)

// upstreams and reasons are every label value of the upstream metrics, set to
// zero at start.
var (
	upstreams = []string{"b", "c"}
	reasons   = []string{reasonConfig, reasonTimeout, reasonConnect, reasonStatus, reasonProtocol, reasonCanceled}
)

// callError is a failed upstream call: a reason for the metric label and a
// message for people.
type callError struct {
	reason string
	msg    string
}

func (e *callError) Error() string { return e.msg }

// classify turns a transport error into a callError. timeout is the
// configured per-call limit, named in the message so the reader knows which
// knob to turn.
func classify(err error, timeout time.Duration) *callError {
	var ce *callError
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &ce):
		return ce
	case errors.Is(err, context.Canceled):
		return &callError{reasonCanceled, "canceled: the client went away"}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return &callError{reasonTimeout, "timeout after " + timeout.String()}
	case errors.As(err, &oe) && oe.Op == "dial":
		return &callError{reasonConnect, "cannot connect: " + oe.Error()}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return &callError{reasonProtocol, "connection closed without an answer: " + err.Error()}
	}
	return &callError{reasonProtocol, "failed: " + err.Error()}
}

// bClient asks service B over HTTP with keep-alive.
type bClient struct {
	url       string
	transport *http.Transport
	client    *http.Client
	flushed   atomic.Int64 // unix nanos of the last CloseIdleConnections
}

func newBClient(base *url.URL) *bClient {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// The default of 2 idle connections per host makes a busy gateway dial
	// (and leave TIME_WAIT behind) for almost every request.
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 512
	t.DialContext = dialer
	return &bClient{
		url:       strings.TrimSuffix(base.String(), "/") + "/version",
		transport: t,
		client:    &http.Client{Transport: t},
	}
}

func (c *bClient) version(ctx context.Context) (svc.VersionInfo, Conn, error) {
	// Dropping idle connections now and then is how net/http lets us bound
	// their age (see connMaxAge); busy ones drop out as they go idle.
	if now, last := time.Now().UnixNano(), c.flushed.Load(); now-last > int64(connMaxAge) && c.flushed.CompareAndSwap(last, now) {
		c.transport.CloseIdleConnections()
	}
	var v svc.VersionInfo
	var used Conn
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if dc, ok := info.Conn.(*datedConn); ok {
			used = connOf(dc, dc.opened)
		}
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, c.url, nil)
	if err != nil {
		return v, used, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return v, used, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return v, used, err
	}
	if resp.StatusCode != http.StatusOK {
		return v, used, &callError{reasonStatus, fmt.Sprintf("HTTP %d from %s: %s", resp.StatusCode, c.url, snippet(body))}
	}
	if err := json.Unmarshal(body, &v); err != nil || v.Version == "" {
		return v, used, &callError{reasonProtocol, fmt.Sprintf("bad answer from %s: %s", c.url, snippet(body))}
	}
	return v, used, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

// cClient asks service C over its line protocol, keeping a small pool of
// connections: the protocol allows many requests per connection, and one
// dial per request would exhaust ephemeral ports under load.
type cClient struct {
	addr string
	idle chan *cConn
}

type cConn struct {
	net.Conn
	r    *bufio.Reader
	born time.Time // when its dial began
	used bool      // false until the greeting line C writes on accept has been read
}

func newCClient(addr string) *cClient {
	return &cClient{addr: addr, idle: make(chan *cConn, 256)}
}

func (c *cClient) dial(ctx context.Context) (*cConn, error) {
	var d net.Dialer
	start := time.Now()
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, err
	}
	return &cConn{Conn: conn, r: bufio.NewReader(conn), born: start}, nil
}

func (c *cClient) version(ctx context.Context) (svc.VersionInfo, Conn, error) {
	conn, reused := (*cConn)(nil), false
	// A connection past connMaxAge is not used again: it would still reach the
	// pod it was routed to when opened, however long it sat idle.
	for conn == nil {
		select {
		case conn = <-c.idle:
			reused = true
			if time.Since(conn.born) > connMaxAge {
				conn.Close()
				conn, reused = nil, false
			}
		default:
			var err error
			if conn, err = c.dial(ctx); err != nil {
				return svc.VersionInfo{}, Conn{}, err
			}
		}
	}
	v, err := conn.ask(ctx)
	if err != nil && reused && isStale(err) {
		// C closed this pooled connection while it sat idle (its idle
		// timeout or a shutdown); that says nothing about C's health now.
		conn.Close()
		if conn, err = c.dial(ctx); err != nil {
			return v, Conn{}, err
		}
		v, err = conn.ask(ctx)
	}
	used := connOf(conn, conn.born)
	// A done ctx may have fired ask's AfterFunc, spoiling the deadline.
	if err != nil || ctx.Err() != nil || time.Since(conn.born) > connMaxAge {
		conn.Close()
		return v, used, err
	}
	select {
	case c.idle <- conn:
	default:
		conn.Close()
	}
	return v, used, nil
}

// ask reads one answer line: on a new connection the one C writes as soon
// as it accepts, on a pooled one the answer to a VERSION request.
func (conn *cConn) ask(ctx context.Context) (svc.VersionInfo, error) {
	v := svc.VersionInfo{Service: "c"}
	dl, _ := ctx.Deadline() // none is the zero time: no deadline
	conn.SetDeadline(dl)
	// A deadline in the past is how a blocked read is interrupted when A's
	// own client goes away before the timeout.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if conn.used {
		if _, err := io.WriteString(conn, "VERSION\n"); err != nil {
			return v, err
		}
	}
	conn.used = true
	line, err := conn.r.ReadString('\n')
	if err != nil {
		if ctx.Err() != nil {
			return v, ctx.Err()
		}
		return v, err
	}
	line = strings.TrimSuffix(line, "\n")
	if reason, ok := strings.CutPrefix(line, "ERR "); ok {
		return v, &callError{reasonStatus, "answered ERR " + reason}
	}
	f := strings.Fields(line)
	if len(f) < 2 || len(f) > 3 || f[0] != "c" {
		return v, &callError{reasonProtocol, fmt.Sprintf("bad answer %q", line)}
	}
	v.Version = f[1]
	if len(f) == 3 {
		v.Pod = f[2]
	}
	return v, nil
}

// isStale tells a connection C had already closed from a failing C.
func isStale(err error) bool {
	var ce *callError
	if errors.As(err, &ce) {
		return strings.HasPrefix(ce.msg, "answered ERR idle timeout") || strings.HasPrefix(ce.msg, "answered ERR shutting down")
	}
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
