package gateway

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"strings"
	"sync"
	"time"

	"bluegreen-harness/services/internal/metrics"
	"bluegreen-harness/services/internal/svc"
)

// Gateway serves A's endpoints.
type Gateway struct {
	base     *svc.Base
	timeout  time.Duration
	greeting string
	problem  error // why A is not ready, nil when both addresses are valid
	askB     upstreamCall
	askC     upstreamCall
	upstream *metrics.Upstream
}

// upstreamCall calls one upstream: what it answered and the connection it answered on.
type upstreamCall func(context.Context) (svc.VersionInfo, Conn, error)

// New builds the gateway; an invalid address makes it not ready rather than
// failing (see Config).
func New(b *svc.Base, cfg Config) *Gateway {
	g := &Gateway{base: b, timeout: cfg.Timeout, greeting: cfg.PageGreeting(), upstream: b.Metrics.NewUpstream(upstreams, reasons)}
	// The wiring, for "which B and C does this pod reach?" (LOG_LEVEL=debug).
	b.Log.Debug("configuration", "service_b_url", cfg.BURL, "service_c_addr", cfg.CAddr,
		"upstream_timeout_ms", cfg.Timeout.Milliseconds(), "image_greeting", cfg.ImageGreeting,
		"greeting", cfg.Greeting, "page_greeting", g.greeting)
	bURL, bErr := checkBURL(cfg.BURL)
	if bErr != nil {
		g.askB = notConfigured(bErr)
	} else {
		g.askB = newBClient(bURL).version
	}
	cErr := checkCAddr(cfg.CAddr)
	if cErr != nil {
		g.askC = notConfigured(cErr)
	} else {
		g.askC = newCClient(cfg.CAddr).version
	}
	if g.problem = joinProblems(bErr, cErr); g.problem != nil {
		b.Log.Warn("not ready: bad upstream configuration", "reason", g.problem.Error())
	}
	return g
}

// joinProblems keeps the reason on one line, as kubectl describe shows it.
func joinProblems(errs ...error) error {
	var msgs []string
	for _, err := range errs {
		if err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	if msgs == nil {
		return nil
	}
	return errors.New(strings.Join(msgs, "; "))
}

func notConfigured(err error) upstreamCall {
	return func(context.Context) (svc.VersionInfo, Conn, error) {
		return svc.VersionInfo{}, Conn{}, &callError{reasonConfig, "not configured: " + err.Error()}
	}
}

// Ready returns nil when A can take traffic, or why it cannot.
func (g *Gateway) Ready() error { return g.problem }

// Handler serves /, /versions, /version and the ops endpoints.
func (g *Gateway) Handler() http.Handler {
	mux := g.base.OpsMux(g.Ready)
	mux.Handle("GET /version", g.base.Instrument(g.base.VersionHandler()))
	mux.Handle("GET /versions", g.base.Instrument(http.HandlerFunc(g.serveVersions)))
	mux.Handle("GET /{$}", g.base.Instrument(http.HandlerFunc(g.servePage)))
	return mux
}

// Outcome is what one upstream answered.
type Outcome struct {
	Version string
	Pod     string
	Conn    Conn // zero when no connection was made
	Err     error
}

// MarshalJSON writes the version as a string, or {"error": "..."}.
func (o Outcome) MarshalJSON() ([]byte, error) {
	if o.Err != nil {
		return json.Marshal(map[string]string{"error": o.Err.Error()})
	}
	return json.Marshal(o.Version)
}

// Versions is the body of GET /versions. The top-level keys a, b and c are
// a contract with the probes; pods lists only the pods that are known, and
// conns the connection each of them answered on.
type Versions struct {
	A     string            `json:"a"`
	B     Outcome           `json:"b"`
	C     Outcome           `json:"c"`
	Pods  map[string]string `json:"pods,omitempty"`
	Conns map[string]Conn   `json:"conns,omitempty"`
}

// OK reports whether every upstream answered.
func (v Versions) OK() bool { return v.B.Err == nil && v.C.Err == nil }

// Collect asks B and C at the same time, each within the configured timeout.
func (g *Gateway) Collect(ctx context.Context) Versions {
	v := Versions{A: g.base.Version}
	var wg sync.WaitGroup
	wg.Go(func() { v.B = g.call(ctx, "b", g.askB) })
	wg.Go(func() { v.C = g.call(ctx, "c", g.askC) })
	wg.Wait()
	for name, pod := range map[string]string{"a": g.base.Pod, "b": v.B.Pod, "c": v.C.Pod} {
		if pod != "" {
			if v.Pods == nil {
				v.Pods = map[string]string{}
			}
			v.Pods[name] = pod
		}
	}
	for name, o := range map[string]Outcome{"b": v.B, "c": v.C} {
		if o.Err == nil && o.Conn.ID != "" {
			if v.Conns == nil {
				v.Conns = map[string]Conn{}
			}
			v.Conns[name] = o.Conn
		}
	}
	return v
}

// call makes one upstream call and records its duration, errors and a log line.
func (g *Gateway) call(ctx context.Context, name string, ask upstreamCall) Outcome {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	info, conn, err := ask(ctx)
	elapsed := time.Since(start)

	g.upstream.Duration.WithLabelValues(name).Observe(elapsed.Seconds())
	attrs := []any{"upstream", name, "duration_ms", svc.Millis(elapsed)}
	if err != nil {
		ce := classify(err, g.timeout)
		g.upstream.Errors.WithLabelValues(name, ce.reason).Inc()
		g.base.Log.Warn("upstream call", append(attrs, "reason", ce.reason, "error", ce.msg)...)
		return Outcome{Err: ce}
	}
	g.base.Log.Info("upstream call", append(attrs, "upstream_version", info.Version, "upstream_pod", info.Pod)...)
	return Outcome{Version: info.Version, Pod: info.Pod, Conn: conn}
}

func status(v Versions) int {
	if v.OK() {
		return http.StatusOK
	}
	return http.StatusBadGateway
}

func (g *Gateway) serveVersions(w http.ResponseWriter, r *http.Request) {
	v := g.Collect(r.Context())
	svc.WriteJSON(w, status(v), v)
}

//go:embed page.html
var pageHTML string

var page = template.Must(template.New("page").Parse(pageHTML))

type pageRow struct {
	Service, Version, Pod string
	Err                   error
}

func (g *Gateway) servePage(w http.ResponseWriter, r *http.Request) {
	v := g.Collect(r.Context())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status(v))
	err := page.Execute(w, map[string]any{
		"Greeting": g.greeting,
		"Rows": []pageRow{
			{Service: "gateway-a", Version: v.A, Pod: g.base.Pod},
			{Service: "service-b", Version: v.B.Version, Pod: v.B.Pod, Err: v.B.Err},
			{Service: "service-c", Version: v.C.Version, Pod: v.C.Pod, Err: v.C.Err},
		},
	})
	if err != nil {
		g.base.Log.Warn("page not written", "error", err.Error())
	}
}
