//go:build tools

// Package tools builds nothing: this component takes only the CRDs from istio.io/api, whose
// module is pinned (with its checksum) by go.mod and go.sum.
package tools
