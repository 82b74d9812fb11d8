//go:build tools

// Package tools pins the kind CLI the kind target runs (its node image recipe is read from the
// same module version).
package tools

import (
	_ "sigs.k8s.io/kind"
)
