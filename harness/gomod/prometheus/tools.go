//go:build tools

// Package tools pins Prometheus for the kind target's image where none can be pulled. Debian's
// package (the local target's) is built without Kubernetes service discovery, which a
// Prometheus inside the cluster needs; this is the same release (module v0.42.0 is v2.42.0).
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
