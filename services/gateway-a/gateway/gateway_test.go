package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"bluegreen-harness/services/gateway-a/gateway"
	"bluegreen-harness/services/internal/fault"
	"bluegreen-harness/services/internal/svc"
	"bluegreen-harness/services/service-b/serviceb"
	"bluegreen-harness/services/service-c/servicec"
)

const timeout = 100 * time.Millisecond

// The upstreams below are real servers on loopback listeners.

func startB(t *testing.T, f fault.Injector) string {
	b := svc.New(svc.Config{Identity: serviceb.Identity, Version: "1.1.0", Pod: "b-pod", Fault: f}, io.Discard)
	srv := httptest.NewServer(serviceb.Handler(b))
	t.Cleanup(srv.Close)
	return srv.URL
}

func startC(t *testing.T, f fault.Injector, idle time.Duration, logOut io.Writer) string {
	b := svc.New(svc.Config{Identity: servicec.Identity, Version: "1.2.0", Pod: "c-pod", Fault: f}, logOut)
	s := servicec.NewServer(b, servicec.Config{IdleTimeout: idle})
	ln := listen(t)
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return ln.Addr().String()
}

// hangingC accepts connections and never answers: a C that is stuck.
func hangingC(t *testing.T) string {
	ln := listen(t)
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// closingC accepts connections and closes them at once: a C that crashes
// on every request.
func closingC(t *testing.T) string {
	ln := listen(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// stoppedAddr is an address where something listened and no longer does.
func stoppedAddr(t *testing.T) string {
	ln := listen(t)
	ln.Close()
	return ln.Addr().String()
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func newGateway(cfg gateway.Config, logOut io.Writer) (*svc.Base, http.Handler) {
	cfg.Timeout = timeout
	b := svc.New(svc.Config{Identity: gateway.Identity, Version: "1.0.0", Pod: "a-pod"}, logOut)
	return b, gateway.New(b, cfg).Handler()
}

func get(h http.Handler, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec
}

type versions struct {
	A    string            `json:"a"`
	B    json.RawMessage   `json:"b"`
	C    json.RawMessage   `json:"c"`
	Pods map[string]string `json:"pods"`
}

func TestVersions(t *testing.T) {
	cases := []struct {
		name       string
		b, c       func(t *testing.T) string
		wantCode   int
		wantB      string // exact JSON, or the start of the error message
		wantC      string
		wantPodsOf string // which upstream pods appear besides a
	}{
		{
			name: "all answer", wantCode: 200,
			b:     func(t *testing.T) string { return startB(t, fault.Injector{}) },
			c:     func(t *testing.T) string { return startC(t, fault.Injector{}, time.Minute, io.Discard) },
			wantB: `"1.1.0"`, wantC: `"1.2.0"`, wantPodsOf: "abc",
		},
		{
			name: "B stopped", wantCode: 502,
			b:     func(t *testing.T) string { return "http://" + stoppedAddr(t) },
			c:     func(t *testing.T) string { return startC(t, fault.Injector{}, time.Minute, io.Discard) },
			wantB: "cannot connect: dial tcp ", wantC: `"1.2.0"`, wantPodsOf: "ac",
		},
		{
			name: "C hangs", wantCode: 502,
			b:     func(t *testing.T) string { return startB(t, fault.Injector{}) },
			c:     hangingC,
			wantB: `"1.1.0"`, wantC: "timeout after 100ms", wantPodsOf: "ab",
		},
		{
			name: "C hangs up", wantCode: 502,
			b:     func(t *testing.T) string { return startB(t, fault.Injector{}) },
			c:     closingC,
			wantB: `"1.1.0"`, wantC: "connection closed without an answer: ", wantPodsOf: "ab",
		},
		{
			name: "B fails", wantCode: 502,
			b:     func(t *testing.T) string { return startB(t, fault.Injector{ErrorRate: 1}) },
			c:     func(t *testing.T) string { return startC(t, fault.Injector{}, time.Minute, io.Discard) },
			wantB: "HTTP 500 from http://", wantC: `"1.2.0"`, wantPodsOf: "ac",
		},
		{
			name: "C fails", wantCode: 502,
			b:     func(t *testing.T) string { return startB(t, fault.Injector{}) },
			c:     func(t *testing.T) string { return startC(t, fault.Injector{ErrorRate: 1}, time.Minute, io.Discard) },
			wantB: `"1.1.0"`, wantC: "answered ERR injected fault", wantPodsOf: "ab",
		},
		{
			name: "C stopped, B slow", wantCode: 502,
			b:     func(t *testing.T) string { return startB(t, fault.Injector{Latency: time.Second}) },
			c:     func(t *testing.T) string { return stoppedAddr(t) },
			wantB: "timeout after 100ms", wantC: "cannot connect: dial tcp ", wantPodsOf: "a",
		},
		{
			name: "not configured", wantCode: 502,
			b:     func(*testing.T) string { return "" },
			c:     func(*testing.T) string { return "" },
			wantB: "not configured: SERVICE_B_URL is not set", wantC: "not configured: SERVICE_C_ADDR is not set", wantPodsOf: "a",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, h := newGateway(gateway.Config{BURL: tc.b(t), CAddr: tc.c(t)}, io.Discard)
			rec := get(h, "/versions")
			var v versions
			if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || rec.Code != tc.wantCode {
				t.Fatalf("GET /versions = %d %s (%v), want %d", rec.Code, rec.Body, err, tc.wantCode)
			}
			if v.A != "1.0.0" {
				t.Errorf("a = %q, want 1.0.0", v.A)
			}
			checkOutcome(t, "b", v.B, tc.wantB)
			checkOutcome(t, "c", v.C, tc.wantC)
			for _, name := range []string{"a", "b", "c"} {
				_, has := v.Pods[name]
				if want := strings.Contains(tc.wantPodsOf, name); has != want {
					t.Errorf("pods = %v: has %s = %v, want %v", v.Pods, name, has, want)
				}
			}
		})
	}
}

// checkOutcome compares a version string exactly, or an error by prefix.
func checkOutcome(t *testing.T, name string, got json.RawMessage, want string) {
	t.Helper()
	if strings.HasPrefix(want, `"`) {
		if string(got) != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
		return
	}
	var e struct{ Error string }
	if err := json.Unmarshal(got, &e); err != nil || !strings.HasPrefix(e.Error, want) {
		t.Errorf(`%s = %s, want {"error": "%s..."}`, name, got, want)
	}
}

func TestVersionsAsksBothUpstreamsAtOnce(t *testing.T) {
	_, h := newGateway(gateway.Config{BURL: "http://" + hangingC(t), CAddr: hangingC(t)}, io.Discard)
	start := time.Now()
	rec := get(h, "/versions")
	// One after the other would take two timeouts.
	if d := time.Since(start); rec.Code != 502 || d > timeout*3/2 {
		t.Fatalf("two hanging upstreams: %d after %v, want 502 within %v", rec.Code, d, timeout*3/2)
	}
}

func TestReadiness(t *testing.T) {
	cases := []struct {
		bURL, cAddr string
		wantCode    int
		wantReason  string
	}{
		{"http://service-b:8081", "service-c:8082", 200, ""},
		{"http://127.0.0.1:8081/", "127.0.0.1:8082", 200, ""},
		{"", "service-c:8082", 503, "SERVICE_B_URL is not set"},
		{"service-b:8081", "service-c:8082", 503, `SERVICE_B_URL="service-b:8081" is not an http(s) URL`},
		{"ftp://service-b", "service-c:8082", 503, `SERVICE_B_URL="ftp://service-b" is not an http(s) URL`},
		{"http://service-b:8081", "", 503, "SERVICE_C_ADDR is not set"},
		{"http://service-b:8081", "service-c", 503, `SERVICE_C_ADDR="service-c" is not host:port`},
		{"http://service-b:8081", "service-c:http", 503, `SERVICE_C_ADDR="service-c:http" is not host:port`},
		{"http://service-b:8081", ":8082", 503, `SERVICE_C_ADDR=":8082" is not host:port`},
		{"", "", 503, "SERVICE_B_URL is not set; want e.g. http://service-b:3000; SERVICE_C_ADDR is not set"},
	}
	for _, tc := range cases {
		_, h := newGateway(gateway.Config{BURL: tc.bURL, CAddr: tc.cAddr}, io.Discard)
		rec := get(h, "/readyz")
		var body struct{ Status, Reason string }
		json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != tc.wantCode || !strings.Contains(body.Reason, tc.wantReason) {
			t.Errorf("B=%q C=%q: /readyz = %d %s, want %d with reason %q", tc.bURL, tc.cAddr, rec.Code, rec.Body, tc.wantCode, tc.wantReason)
		}
	}
}

func TestPageShowsVersionsAndEscapedGreeting(t *testing.T) {
	greeting := `<script>alert("hi")</script> Grüße 🎉`
	_, h := newGateway(gateway.Config{
		BURL: startB(t, fault.Injector{}), CAddr: hangingC(t), ImageGreeting: "Merry Christmas", Greeting: greeting,
	}, io.Discard)
	rec := get(h, "/")
	body := rec.Body.String()
	if rec.Code != 502 || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET / = %d %s, want 502 text/html", rec.Code, rec.Header().Get("Content-Type"))
	}
	for _, want := range []string{
		`&lt;script&gt;alert(&#34;hi&#34;)&lt;/script&gt; Grüße 🎉`,
		"<td>service-b</td><td>1.1.0</td><td>b-pod</td>",
		"<td>gateway-a</td><td>1.0.0</td><td>a-pod</td>",
		`<td>service-c</td><td class="error" colspan="2">timeout after 100ms</td>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s\n%s", want, body)
		}
	}
	if strings.Contains(body, "<script>") {
		t.Error("greeting was not escaped")
	}
}

func TestGreetingIsTheBuildsAndGreetingOnlyOverridesItsText(t *testing.T) {
	cases := []struct{ image, config, want string }{
		{"", "", ""},
		{"", "Hello from QA", ""}, // an older build has no greeting, whatever the config says
		{"Merry Christmas 🎄", "", "Merry Christmas 🎄"},
		{"Merry Christmas 🎄", "Hello from QA", "Hello from QA"},
	}
	for _, tc := range cases {
		_, h := newGateway(gateway.Config{
			BURL: startB(t, fault.Injector{}), CAddr: startC(t, fault.Injector{}, time.Minute, io.Discard),
			ImageGreeting: tc.image, Greeting: tc.config,
		}, io.Discard)
		body := get(h, "/").Body.String()
		hasGreeting := strings.Contains(body, `<p class="greeting">`)
		if tc.want == "" && hasGreeting || tc.want != "" && !strings.Contains(body, `<p class="greeting">`+tc.want+"</p>") {
			t.Errorf("IMAGE_GREETING=%q GREETING=%q: page greeting wrong, want %q\n%s", tc.image, tc.config, tc.want, body)
		}
	}
}

func TestConfigurationIsLoggedAtDebugLevel(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
		var logs syncBuffer
		b := svc.New(svc.Config{Identity: gateway.Identity, Version: "1.0.0", LogLevel: level}, &logs)
		gateway.New(b, gateway.Config{BURL: "http://service-b:3000", CAddr: "service-c:3000", Timeout: 250 * time.Millisecond})
		logged := strings.Contains(string(logs.Bytes()), `"msg":"configuration"`)
		if logged != (level == slog.LevelDebug) {
			t.Fatalf("LOG_LEVEL=%s: configuration logged = %v\n%s", level, logged, string(logs.Bytes()))
		}
		if !logged {
			continue
		}
		for _, want := range []string{`"level":"DEBUG"`, `"service_b_url":"http://service-b:3000"`,
			`"service_c_addr":"service-c:3000"`, `"upstream_timeout_ms":250`} {
			if !strings.Contains(string(logs.Bytes()), want) {
				t.Errorf("configuration line lacks %s\n%s", want, string(logs.Bytes()))
			}
		}
	}
}

func TestUpstreamMetricsAndLogs(t *testing.T) {
	var logs syncBuffer
	b, h := newGateway(gateway.Config{BURL: startB(t, fault.Injector{}), CAddr: hangingC(t)}, &logs)
	get(h, "/versions")
	rec := httptest.NewRecorder()
	b.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`bgh_requests_total{code="502",service="gateway-a",version="1.0.0"} 1`,
		`bgh_upstream_errors_total{reason="timeout",service="gateway-a",upstream="c",version="1.0.0"} 1`,
		`bgh_upstream_request_duration_seconds_count{service="gateway-a",upstream="b",version="1.0.0"} 1`,
		`bgh_upstream_request_duration_seconds_count{service="gateway-a",upstream="c",version="1.0.0"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// One JSON line per upstream call and one for the request, each timed.
	var msgs []string
	for _, line := range bytes.Split(bytes.TrimSpace(logs.Bytes()), []byte("\n")) {
		var entry struct {
			Msg        string   `json:"msg"`
			DurationMs *float64 `json:"duration_ms"`
		}
		if err := json.Unmarshal(line, &entry); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if entry.Msg == "request" || entry.Msg == "upstream call" {
			if entry.DurationMs == nil {
				t.Errorf("log line %s has no duration_ms", line)
			}
			msgs = append(msgs, entry.Msg)
		}
	}
	if strings.Join(msgs, ",") != "upstream call,upstream call,request" {
		t.Errorf("log messages = %v, want two upstream calls then the request", msgs)
	}
}

// TestPooledConnectionClosedByCIsRedialled covers C closing a connection
// that A keeps idle: the next request must not fail because of it.
func TestPooledConnectionClosedByCIsRedialled(t *testing.T) {
	var cLogs syncBuffer
	idle := 50 * time.Millisecond
	_, h := newGateway(gateway.Config{
		BURL: startB(t, fault.Injector{}), CAddr: startC(t, fault.Injector{}, idle, &cLogs),
	}, io.Discard)
	if rec := get(h, "/versions"); rec.Code != 200 {
		t.Fatalf("first GET /versions = %d %s", rec.Code, rec.Body)
	}
	// C logs when it ends an idle connection; that is the event to wait for.
	deadline := time.Now().Add(5 * time.Second)
	for !bytes.Contains(cLogs.Bytes(), []byte(`"msg":"idle timeout"`)) {
		if time.Now().After(deadline) {
			t.Fatal("C did not end the idle connection within 5s")
		}
		time.Sleep(idle / 5)
	}
	if rec := get(h, "/versions"); rec.Code != 200 {
		t.Fatalf("GET /versions after C closed the pooled connection = %d %s, want 200", rec.Code, rec.Body)
	}
}

func TestClientGoneCancelsUpstreamCalls(t *testing.T) {
	_, h := newGateway(gateway.Config{BURL: startB(t, fault.Injector{}), CAddr: hangingC(t)}, io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/versions", nil).WithContext(ctx))
	if !strings.Contains(rec.Body.String(), "canceled") {
		t.Fatalf("body = %s, want the calls reported as canceled", rec.Body)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// switchingC plays a Service in front of two C pods: each new connection goes
// to the pod that is current when it is accepted, as kube-proxy routes it.
func switchingC(t *testing.T, pods ...string) (addr string, switchTo func(int)) {
	var current sync.Mutex
	turn := 0
	backends := make([]string, len(pods))
	for i, pod := range pods {
		b := svc.New(svc.Config{Identity: servicec.Identity, Version: "1.2.0", Pod: pod}, io.Discard)
		s := servicec.NewServer(b, servicec.Config{IdleTimeout: time.Minute})
		ln := listen(t)
		go s.Serve(ln)
		t.Cleanup(func() { s.Shutdown(context.Background()) })
		backends[i] = ln.Addr().String()
	}
	front := listen(t)
	t.Cleanup(func() { front.Close() })
	go func() {
		for {
			in, err := front.Accept()
			if err != nil {
				return
			}
			current.Lock()
			to := backends[turn]
			current.Unlock()
			out, err := net.Dial("tcp", to)
			if err != nil {
				in.Close()
				continue
			}
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
	return front.Addr().String(), func(i int) { current.Lock(); turn = i; current.Unlock() }
}

func TestAnIdleConnectionToCOlderThanItsMaxAgeIsNotUsedAgain(t *testing.T) {
	addr, switchTo := switchingC(t, "c-old", "c-new")
	_, h := newGateway(gateway.Config{BURL: startB(t, fault.Injector{}), CAddr: addr}, io.Discard)
	podOfC := func() string {
		rec := get(h, "/versions")
		var v versions
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || rec.Code != 200 {
			t.Fatalf("GET /versions = %d %s", rec.Code, rec.Body)
		}
		return v.Pods["c"]
	}
	if pod := podOfC(); pod != "c-old" {
		t.Fatalf("first answer from %q, want c-old", pod)
	}
	switchTo(1)
	// The pooled connection's age is what is under test: let it pass one second.
	time.Sleep(1100 * time.Millisecond)
	if pod := podOfC(); pod != "c-new" {
		t.Fatalf("after the switch and a second idle, C answered from %q, want c-new", pod)
	}
}

// TestEachAnswerNamesTheConnectionItCameOn: the harness tells a connection
// opened before a blue-green switch from one opened after it by these.
func TestEachAnswerNamesTheConnectionItCameOn(t *testing.T) {
	_, h := newGateway(gateway.Config{BURL: startB(t, fault.Injector{}), CAddr: startC(t, fault.Injector{}, time.Minute, io.Discard)}, io.Discard)
	type conn struct {
		ID     string  `json:"id"`
		Opened float64 `json:"opened"`
	}
	conns := func() map[string]conn {
		rec := get(h, "/versions")
		var v struct {
			Conns map[string]conn `json:"conns"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || rec.Code != 200 {
			t.Fatalf("GET /versions = %d %s", rec.Code, rec.Body)
		}
		return v.Conns
	}
	before := float64(time.Now().UnixMicro()) / 1e6
	first := conns()
	after := float64(time.Now().UnixMicro()) / 1e6
	second := conns()
	for _, name := range []string{"b", "c"} {
		c, ok := first[name]
		if !ok || c.ID == "" {
			t.Fatalf("conns = %v: no connection named for %s", first, name)
		}
		if c.Opened < before || c.Opened > after {
			t.Errorf("%s's connection opened at %f, want within the first request [%f, %f]", name, c.Opened, before, after)
		}
		// Reused (within connMaxAge): the same connection, opened at the same time.
		if second[name] != c {
			t.Errorf("%s: second answer on %+v, want the reused %+v", name, second[name], c)
		}
	}
}
