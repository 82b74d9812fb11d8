package servicec

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"bluegreen-harness/services/internal/fault"
	"bluegreen-harness/services/internal/svc"
)

const testIdle = 150 * time.Millisecond

// startServer serves the protocol on a real loopback listener.
func startServer(t *testing.T, f fault.Injector) (addr string, s *Server) {
	t.Helper()
	b := svc.New(svc.Config{Identity: Identity, Version: "1.0.0", Pod: "c-pod", Fault: f}, io.Discard)
	s = NewServer(b, Config{IdleTimeout: testIdle})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown = %v", err)
		}
		if err := <-served; !errors.Is(err, net.ErrClosed) {
			t.Errorf("Serve = %v, want net.ErrClosed", err)
		}
	})
	return ln.Addr().String(), s
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second)) // a hung test fails instead of blocking
	return conn
}

const greeting = "c 1.0.0 c-pod\n"

// readGreeting reads the line C writes as soon as it accepts.
func readGreeting(t *testing.T, r *bufio.Reader) {
	t.Helper()
	if line, err := r.ReadString('\n'); line != greeting || err != nil {
		t.Fatalf("greeting = %q, %v; want %q", line, err, greeting)
	}
}

func TestServerGreetsAClientThatOnlyReads(t *testing.T) {
	addr, _ := startServer(t, fault.Injector{})
	conn := dial(t, addr)
	// As `nc service-c 3000` does: connect, send nothing, read.
	readGreeting(t, bufio.NewReader(conn))
}

func TestServerAnswersAndKeepsTheConnection(t *testing.T) {
	addr, _ := startServer(t, fault.Injector{})
	cases := []struct {
		name, send string
		answers    int
	}{
		{"one request", "VERSION\n", 1},
		{"CRLF line ending", "VERSION\r\n", 1},
		{"pipelined requests", "VERSION\nVERSION\nVERSION\n", 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn := dial(t, addr)
			r := bufio.NewReader(conn)
			readGreeting(t, r)
			// Twice on the same connection: an answer must not close it.
			for range 2 {
				io.WriteString(conn, tc.send)
				for range tc.answers {
					line, err := r.ReadString('\n')
					if line != "c 1.0.0 c-pod\n" || err != nil {
						t.Fatalf("answer = %q, %v; want \"c 1.0.0 c-pod\\n\"", line, err)
					}
				}
			}
		})
	}
}

func TestServerRefusesWithOneErrLineAndCloses(t *testing.T) {
	addr, _ := startServer(t, fault.Injector{})
	cases := []struct {
		name, send, want string
	}{
		{"garbage", "HELLO\n", `ERR unknown command "HELLO"`},
		{"HTTP request", "GET / HTTP/1.1\r\nHost: c\r\n\r\n", `ERR unknown command "GET / HTTP/1.1"`},
		{"binary", "\x00\xff\xfe\n", `ERR unknown command "\x00\xff\xfe"`},
		{"empty line", "\n", "ERR empty command"},
		{"lower case", "version\n", `ERR unknown command "version"`},
		{"good then bad", "VERSION\nNOPE\n", "c 1.0.0 c-pod\nERR unknown command \"NOPE\""},
		{"257 bytes", strings.Repeat("x", 257) + "\n", "ERR line too long: over 256 bytes"},
		// Far more than the server reads: it must still deliver the ERR line
		// rather than reset the connection over unread input.
		{"64 KiB without LF", strings.Repeat("x", 64<<10), "ERR line too long: over 256 bytes"},
		{"silent client", "", "ERR idle timeout: no command within 150ms"},
		{"half a line, then silence", "VERS", "ERR idle timeout: no command within 150ms"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn := dial(t, addr)
			go io.WriteString(conn, tc.send) // may block on 64 KiB until the server drains it
			all, err := io.ReadAll(conn)     // returns at EOF: the server closed
			if err != nil {
				t.Fatalf("read = %q, %v; want the ERR line then EOF", all, err)
			}
			if got := string(all); got != greeting+tc.want+"\n" {
				t.Fatalf("got %q, want the greeting, %q, then EOF", got, tc.want+"\n")
			}
		})
	}
}

func TestServerInjectsFaultsAsErrLines(t *testing.T) {
	addr, _ := startServer(t, fault.Injector{ErrorRate: 1})
	conn := dial(t, addr)
	// The greeting is an answer like any other: it fails, and the connection ends.
	all, err := io.ReadAll(conn)
	if string(all) != "ERR injected fault\n" || err != nil {
		t.Fatalf("got %q, %v; want \"ERR injected fault\\n\" then EOF", all, err)
	}
}

func TestServerServesManyClientsAtOnce(t *testing.T) {
	addr, _ := startServer(t, fault.Injector{})
	const clients, requests = 300, 5
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Go(func() {
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(conn)
			if line, err := r.ReadString('\n'); line != greeting {
				errs <- fmt.Errorf("client %d greeting: %q, %v", i, line, err)
				return
			}
			for j := range requests {
				io.WriteString(conn, "VERSION\n")
				if line, err := r.ReadString('\n'); line != "c 1.0.0 c-pod\n" {
					errs <- fmt.Errorf("client %d request %d: %q, %v", i, j, line, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestShutdownEndsIdleConnectionsWithErrLine(t *testing.T) {
	addr, s := startServer(t, fault.Injector{})
	conn := dial(t, addr)
	r := bufio.NewReader(conn)
	readGreeting(t, r)
	io.WriteString(conn, "VERSION\n")
	if line, _ := r.ReadString('\n'); line != greeting {
		t.Fatalf("answer = %q", line)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	rest, err := io.ReadAll(r)
	if string(rest) != "ERR shutting down\n" || err != nil {
		t.Fatalf("after shutdown got %q, %v; want \"ERR shutting down\\n\" then EOF", rest, err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("listener still accepts after Shutdown")
	}
}

func TestShutdownCutsInjectedLatencyShort(t *testing.T) {
	addr, s := startServer(t, fault.Injector{Latency: time.Hour})
	conn := dial(t, addr)
	io.WriteString(conn, "VERSION\n")
	// A connection still in the listen backlog is reset when Shutdown
	// closes the listener: that is the kernel's doing, not this test's.
	waitForConnections(t, s, 1)
	start := time.Now()
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Shutdown took %v with a request in an hour-long stall", d)
	}
	// Whether the request was read before the shutdown or not, the last line
	// is the shutdown notice and then EOF.
	all, err := io.ReadAll(conn)
	if !strings.HasSuffix(string(all), "ERR shutting down\n") || err != nil {
		t.Fatalf("got %q, %v; want it to end with \"ERR shutting down\\n\" then EOF", all, err)
	}
}

// TestNoGoroutineOutlivesItsConnection runs every kind of client, then
// checks that the goroutine count settles back: first to the running
// server's own, then, after Shutdown, to what it was before the server.
func TestNoGoroutineOutlivesItsConnection(t *testing.T) {
	before := runtime.NumGoroutine()
	b := svc.New(svc.Config{Identity: Identity, Version: "1.0.0"}, io.Discard)
	s := NewServer(b, Config{IdleTimeout: testIdle})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	addr := ln.Addr().String()
	serving := before + 1 // the accept loop

	var wg sync.WaitGroup
	for i := range 200 {
		send := []string{
			"VERSION\nVERSION\n", "garbage\n", strings.Repeat("y", 1000), "", "VERS",
		}[i%5]
		wg.Go(func() {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(conn, send)
			if i%10 == 3 {
				return // hang up without reading: the server must notice
			}
			io.ReadAll(conn)
		})
	}
	wg.Wait()
	waitForGoroutines(t, serving, "after every client left")

	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	<-served
	waitForGoroutines(t, before, "after Shutdown")
}

// waitForConnections waits until the server has accepted n connections;
// nothing signals an accept, so this is an eventual check.
func waitForConnections(t *testing.T, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		got := len(s.conns)
		s.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server accepted %d connections within 5s, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitForGoroutines is an eventual check: a goroutine that has closed its
// connection still needs a moment to return, and nothing signals that.
func waitForGoroutines(t *testing.T, want int, when string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%s: %d goroutines, want at most %d; stacks:\n%s",
				when, runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
