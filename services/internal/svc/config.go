// Package svc is what the three services share: the common settings, the
// JSON logger, the ops endpoints (/healthz, /readyz, /version, /metrics), the
// per-request instrumentation and the run loop with graceful shutdown.
//
// Keeping this in one place is what makes the services symmetric: a metric,
// a log field or an exit code means the same thing whichever one emits it.
package svc

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"bluegreen-harness/services/internal/env"
	"bluegreen-harness/services/internal/fault"
	"bluegreen-harness/services/internal/metrics"
)

// Exit codes shared by the three binaries.
const (
	ExitOK        = 0
	ExitRuntime   = 1 // could not listen, or a server failed while running
	ExitBadConfig = 2 // an environment variable had an invalid value
)

// Identity names a service.
type Identity struct {
	Name  string // metric label and log field, e.g. "gateway-a"
	Short string // name in version answers, e.g. "a"
}

// The same ports for all three: each pod, compose container and local
// data-plane pod has an address of its own, so nothing needs to differ.
const (
	DefaultPort        = 3000 // the traffic: HTTP for A and B, the line protocol for C
	DefaultMetricsPort = 9090 // /metrics, /healthz, /readyz and /version, alike on every service
)

// Config holds the settings every service reads.
type Config struct {
	Identity
	Version     string
	Pod         string // empty outside Kubernetes
	Host        string
	Port        int
	MetricsPort int
	LogLevel    slog.Level
	Fault       fault.Injector
}

// LoadConfig reads VERSION, POD_NAME, HOST, PORT, METRICS_PORT, LOG_LEVEL and
// the fault knobs.
func LoadConfig(r *env.Reader, id Identity) Config {
	return Config{
		Identity:    id,
		Version:     r.Token("VERSION", "dev", "1.2.3"),
		Pod:         r.Token("POD_NAME", "", "gateway-a-7d9f8c6b5-x2x4q"),
		Host:        r.Host("HOST", "0.0.0.0"),
		Port:        r.Port("PORT", DefaultPort),
		MetricsPort: r.Port("METRICS_PORT", DefaultMetricsPort),
		LogLevel:    r.Level("LOG_LEVEL", slog.LevelInfo),
		Fault:       fault.Load(r),
	}
}

// ExitOnBadConfig prints every invalid value to stderr and exits with
// ExitBadConfig; it returns only when the configuration is valid.
func ExitOnBadConfig(service string, r *env.Reader) {
	if err := r.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: bad configuration, not starting:\n%v\n", service, err)
		os.Exit(ExitBadConfig)
	}
}

// VersionInfo is the answer to GET /version.
type VersionInfo struct {
	Service string `json:"service"`
	Version string `json:"version"`
	Pod     string `json:"pod,omitempty"`
}

// Base bundles a service's config, logger and metrics.
type Base struct {
	Config
	Log     *slog.Logger
	Metrics *metrics.Set
}

// New builds the logger and metrics for cfg and logs the start, including
// any fault injection, so a deliberately bad release is obvious in the logs.
func New(cfg Config, logOut io.Writer) *Base {
	attrs := []any{"service", cfg.Name, "version", cfg.Version}
	if cfg.Pod != "" {
		attrs = append(attrs, "pod", cfg.Pod)
	}
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel})).With(attrs...)
	b := &Base{Config: cfg, Log: log, Metrics: metrics.New(cfg.Name, cfg.Version)}
	if cfg.Fault.On() {
		log.Warn("fault injection on", "error_rate", cfg.Fault.ErrorRate,
			"latency_ms", cfg.Fault.Latency.Milliseconds())
	}
	return b
}

// VersionInfo describes this process.
func (b *Base) VersionInfo() VersionInfo {
	return VersionInfo{Service: b.Short, Version: b.Version, Pod: b.Pod}
}
