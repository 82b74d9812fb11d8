//go:build tools

// Package tools pins Argo CD's multi-call binary (cmd/main.go picks the component from
// ARGOCD_BINARY_NAME, as upstream's Procfile runs it), and with it the CRDs and the base config
// the local target applies. The module asks for Go 1.27; GOTOOLCHAIN=auto fetches that toolchain
// from the module proxy.
package tools

import _ "github.com/argoproj/argo-cd/v3/cmd"
