package svc

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"bluegreen-harness/services/internal/fault"
)

func testBase(f fault.Injector) *Base {
	return New(Config{Identity: Identity{Name: "service-t", Short: "t"}, Version: "1.2.3", Pod: "t-pod", Fault: f}, io.Discard)
}

func TestServeDrainsInFlightRequestThenReturns(t *testing.T) {
	b := testBase(fault.Injector{})
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "done")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- b.serveOn(ctx, []Listener{{Name: "http", Server: NewServer(h, b.Log)}}, []net.Listener{ln})
	}()

	type result struct {
		code int
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		got <- result{resp.StatusCode, string(body), err}
	}()
	<-entered
	stop() // what SIGTERM does in Run

	// Shutdown has begun once the listener refuses new connections.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still accepting 5s after the stop signal")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-served:
		t.Fatalf("serve returned (%v) while a request was in flight", err)
	default:
	}

	close(release)
	if r := <-got; r.err != nil || r.code != http.StatusOK || r.body != "done" {
		t.Fatalf("in-flight request = %d %q %v, want 200 \"done\"", r.code, r.body, r.err)
	}
	if err := <-served; err != nil {
		t.Fatalf("serve = %v, want nil after a clean drain", err)
	}
}

func TestInstrumentCountsFaultsAsServerErrors(t *testing.T) {
	cases := []struct {
		rate     float64
		wantCode int
	}{
		{0, http.StatusOK},
		{1, http.StatusInternalServerError},
	}
	for _, tc := range cases {
		b := testBase(fault.Injector{ErrorRate: tc.rate})
		h := b.Instrument(b.VersionHandler())
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/version", nil))
		if rec.Code != tc.wantCode {
			t.Errorf("rate %v: code = %d, want %d", tc.rate, rec.Code, tc.wantCode)
		}
		metrics := httptest.NewRecorder()
		b.Metrics.Handler().ServeHTTP(metrics, httptest.NewRequest("GET", "/metrics", nil))
		want := `bgh_requests_total{code="` + strconv.Itoa(tc.wantCode) + `",service="service-t",version="1.2.3"} 1`
		if !strings.Contains(metrics.Body.String(), want) {
			t.Errorf("rate %v: /metrics lacks %s", tc.rate, want)
		}
	}
}
