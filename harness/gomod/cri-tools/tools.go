//go:build tools

// Package tools pins crictl, which kind's node image carries for debugging the CRI.
package tools

import (
	_ "sigs.k8s.io/cri-tools/cmd/crictl"
)
