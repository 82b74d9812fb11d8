// Package metrics defines the metric names every service exports.
//
// All three services use the same names with constant labels service and
// version, so the analysis compares preview with active by label alone. The
// pod is deliberately not a label: Prometheus adds it as a target label, and
// putting it here too would duplicate it under a clashing name.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Buckets reach from 100µs to 10s: loopback answers take well under a
// millisecond, and an injected-latency release takes seconds.
var Buckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// Codes are the status codes the services answer with. Each is set to zero at
// start: rate() and increase() need a sample before the first event, or the
// first 5xx of every pod is never counted and a new version looks healthier
// than it is.
var Codes = []string{"200", "400", "413", "500", "502", "503"}

// Set is one service's registry and its request metrics.
type Set struct {
	Registry *prometheus.Registry
	labels   prometheus.Labels
	// Requests counts answered requests by code; service C uses HTTP codes
	// for its line protocol too, so one error-rate query fits all three.
	Requests *prometheus.CounterVec
	Duration prometheus.Histogram
}

// New registers bgh_requests_total and bgh_request_duration_seconds plus the
// Go and process collectors on a fresh registry.
func New(service, version string) *Set {
	labels := prometheus.Labels{"service": service, "version": version}
	s := &Set{
		Registry: prometheus.NewRegistry(),
		labels:   labels,
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "bgh_requests_total",
			Help:        "Requests answered, by status code.",
			ConstLabels: labels,
		}, []string{"code"}),
		Duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "bgh_request_duration_seconds",
			Help:        "Time from request read to answer written.",
			ConstLabels: labels,
			Buckets:     Buckets,
		}),
	}
	s.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		s.Requests, s.Duration,
	)
	for _, code := range Codes {
		s.Requests.WithLabelValues(code)
	}
	return s
}

// Handler serves the registry in the Prometheus exposition format.
func (s *Set) Handler() http.Handler {
	return promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{Registry: s.Registry})
}

// Upstream holds the gateway's metrics about its calls to B and C.
type Upstream struct {
	Duration *prometheus.HistogramVec // by upstream
	Errors   *prometheus.CounterVec   // by upstream and reason
}

// NewUpstream registers bgh_upstream_request_duration_seconds and
// bgh_upstream_errors_total on s, with the same constant labels, and sets
// every upstream and upstream-reason pair to zero (see Codes for why).
func (s *Set) NewUpstream(upstreams, reasons []string) *Upstream {
	u := &Upstream{
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        "bgh_upstream_request_duration_seconds",
			Help:        "Duration of calls to an upstream, failed ones included.",
			ConstLabels: s.labels,
			Buckets:     Buckets,
		}, []string{"upstream"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "bgh_upstream_errors_total",
			Help:        "Failed calls to an upstream, by reason.",
			ConstLabels: s.labels,
		}, []string{"upstream", "reason"}),
	}
	s.Registry.MustRegister(u.Duration, u.Errors)
	for _, upstream := range upstreams {
		u.Duration.WithLabelValues(upstream)
		for _, reason := range reasons {
			u.Errors.WithLabelValues(upstream, reason)
		}
	}
	return u
}
