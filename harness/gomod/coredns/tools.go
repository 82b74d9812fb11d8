//go:build tools

// Package tools pins CoreDNS, the cluster DNS kubeadm deploys (its image tag is the release).
package tools

import (
	_ "github.com/coredns/coredns"
)
