package svc

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// WriteJSON writes v with the given status code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client hung up; nothing useful to do
}

// NewServer returns an http.Server with timeouts, so that a slow or silent
// client cannot hold a connection forever.
func NewServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       90 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// OpsMux returns a mux serving /healthz, /readyz and /metrics.
// ready returns nil when the service can take traffic, or why it cannot.
// These endpoints are not instrumented: kubelet probes and scrapes would
// otherwise dilute the request metrics the analysis judges a release by.
func (b *Base) OpsMux(ready func() error) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
			return
		}
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", b.Metrics.Handler())
	return mux
}

// OpsListener serves /healthz, /readyz, /metrics and a plain /version on
// METRICS_PORT. Every service has it, so Prometheus and the kubelet find all
// three in the same place whatever protocol their traffic port speaks.
func (b *Base) OpsListener(ready func() error) Listener {
	mux := b.OpsMux(ready)
	mux.Handle("GET /version", b.VersionHandler())
	return Listener{Name: "metrics", Port: b.MetricsPort, Server: NewServer(mux, b.Log)}
}

// VersionHandler answers GET /version. A and B also serve it instrumented on
// their traffic port (it is what the gateway and the probes call); on
// METRICS_PORT it is plain.
func (b *Base) VersionHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, b.VersionInfo())
	})
}

// Instrument wraps an application handler: it applies the fault knobs,
// counts and times the request, and logs one line for it.
func (b *Base) Instrument(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		if b.Fault.Apply(r.Context()) {
			WriteJSON(rec, http.StatusInternalServerError, map[string]string{"error": "injected fault"})
		} else {
			h.ServeHTTP(rec, r)
		}
		elapsed := time.Since(start)
		b.Metrics.Requests.WithLabelValues(strconv.Itoa(rec.code)).Inc()
		b.Metrics.Duration.Observe(elapsed.Seconds())
		b.Log.Info("request", "method", r.Method, "path", r.URL.Path, "code", rec.code,
			"duration_ms", Millis(elapsed))
	})
}

// Millis renders a duration as fractional milliseconds for log lines.
func Millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
