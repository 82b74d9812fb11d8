package servicec

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"bluegreen-harness/services/internal/env"
	"bluegreen-harness/services/internal/svc"
)

// Identity names service C in metrics, logs and version answers.
var Identity = svc.Identity{Name: "service-c", Short: "c"}

// Config holds C's own settings.
type Config struct {
	IdleTimeout time.Duration // how long a connection may stay silent
}

// LoadConfig reads IDLE_TIMEOUT_MS.
func LoadConfig(r *env.Reader) Config {
	return Config{
		IdleTimeout: r.Millis("IDLE_TIMEOUT_MS", 5*time.Second, 1, "5000"),
	}
}

// Server serves the line protocol, one goroutine per connection. Its
// Serve and Shutdown mirror http.Server so svc.Run drains both alike.
type Server struct {
	base   *svc.Base
	idle   time.Duration
	answer []byte

	ctx    context.Context // cancelled at shutdown, to cut injected latency short
	cancel context.CancelFunc

	mu      sync.Mutex
	closing atomic.Bool // set under mu; read without it on every line
	lns     map[net.Listener]struct{}
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

// NewServer returns a server answering for b.
func NewServer(b *svc.Base, cfg Config) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		base:   b,
		idle:   cfg.IdleTimeout,
		answer: []byte(Answer(b.Version, b.Pod)),
		ctx:    ctx,
		cancel: cancel,
		lns:    map[net.Listener]struct{}{},
		conns:  map[net.Conn]struct{}{},
	}
}

// Serve accepts connections on ln until Shutdown, then returns net.ErrClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()

	backoff := 5 * time.Millisecond
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return net.ErrClosed
			}
			// EMFILE and friends pass once connections close; stopping would
			// turn a burst of clients into an outage.
			s.base.Log.Warn("accept failed; retrying", "error", err.Error(), "backoff_ms", backoff.Milliseconds())
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		if !s.track(conn) {
			conn.Close()
			continue
		}
		go s.handle(conn)
	}
}

// track registers conn unless shutdown has begun. Adding to the WaitGroup
// under mu, after checking closing, keeps Add from racing Shutdown's Wait.
func (s *Server) track(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[conn] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) forget(conn net.Conn) {
	s.mu.Lock()
	delete(s.conns, conn)
	s.mu.Unlock()
	conn.Close()
	s.wg.Done()
}

// Shutdown stops accepting, lets every connection finish the request it is
// serving, then ends idle ones with "ERR shutting down". If ctx expires
// first the remaining connections are closed and ctx's error returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	for ln := range s.lns {
		ln.Close()
	}
	// A reader blocked on a silent client wakes up now; a handler busy with
	// a request sees closing before its next read (see handle).
	for c := range s.conns {
		c.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
	s.cancel()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

func (s *Server) handle(conn net.Conn) {
	defer s.forget(conn)
	// The greeting: a client that only connects and reads (nc service-c 3000)
	// gets the version at once, as if it had sent VERSION.
	if s.closing.Load() {
		s.refuse(conn, "shutting down")
		return
	}
	if !s.serveLine(conn, []byte(Version)) {
		return
	}
	r := bufio.NewReaderSize(conn, MaxLine+1)
	for {
		conn.SetReadDeadline(time.Now().Add(s.idle))
		// Checked after setting the deadline: Shutdown sets closing before
		// it resets deadlines, so either we see closing here or our read is
		// interrupted by Shutdown's deadline.
		if s.closing.Load() {
			s.refuse(conn, "shutting down")
			return
		}
		line, err := r.ReadSlice('\n')
		switch {
		case err == nil:
			line = line[:len(line)-1]
		case errors.Is(err, bufio.ErrBufferFull):
			// Over MaxLine bytes without an LF: ParseLine refuses it.
		case errors.Is(err, os.ErrDeadlineExceeded):
			if s.closing.Load() {
				s.refuse(conn, "shutting down")
				return
			}
			s.base.Log.Info("idle timeout", "remote", conn.RemoteAddr().String(), "idle_ms", s.idle.Milliseconds())
			s.refuse(conn, "idle timeout: no command within "+s.idle.String())
			return
		default:
			return // EOF or reset: the client has gone, mid-line or not
		}
		if !s.serveLine(conn, line) {
			return
		}
	}
}

// serveLine answers one request line and reports whether the connection
// stays open.
func (s *Server) serveLine(conn net.Conn, line []byte) bool {
	start := time.Now()
	code, reason := http.StatusOK, ""
	if _, err := ParseLine(line); err != nil {
		var re *RequestError
		errors.As(err, &re)
		code, reason = re.Code, re.Reason
	} else if s.base.Fault.Apply(s.ctx) {
		code, reason = http.StatusInternalServerError, "injected fault"
	}

	if code == http.StatusOK {
		conn.SetWriteDeadline(time.Now().Add(s.idle))
		if _, err := conn.Write(s.answer); err != nil {
			code, reason = 499, "client gone: "+err.Error() // nginx's code for a client that left
		}
	} else {
		s.refuse(conn, reason)
	}

	elapsed := time.Since(start)
	s.base.Metrics.Requests.WithLabelValues(strconv.Itoa(code)).Inc()
	s.base.Metrics.Duration.Observe(elapsed.Seconds())
	attrs := []any{"code", code, "duration_ms", svc.Millis(elapsed)}
	if reason != "" {
		attrs = append(attrs, "error", reason)
	}
	s.base.Log.Info("request", attrs...)
	return code == http.StatusOK
}

// lingerTimeout bounds how long refuse waits for the client to hang up.
const lingerTimeout = 250 * time.Millisecond

// refuse sends one ERR line, then half-closes and discards what the client
// still sends until it hangs up or lingerTimeout passes. Closing a socket
// with unread input makes the kernel send RST, and the client could lose
// the ERR line to "connection reset" before reading it; garbage rarely
// comes alone, and a shutdown can catch a request not yet read.
func (s *Server) refuse(conn net.Conn, reason string) {
	conn.SetWriteDeadline(time.Now().Add(s.idle))
	if _, err := io.WriteString(conn, "ERR "+reason+"\n"); err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	conn.SetReadDeadline(time.Now().Add(lingerTimeout))
	io.Copy(io.Discard, io.LimitReader(conn, 64<<10))
}
