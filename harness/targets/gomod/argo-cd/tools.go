//go:build tools

// Package tools builds nothing: this component takes only the Application CRD from Argo CD,
// whose module is pinned (with its checksum) by go.mod and go.sum. The module asks for Go 1.27;
// GOTOOLCHAIN=auto fetches that toolchain from the module proxy to download it.
package tools
