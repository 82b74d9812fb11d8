//go:build tools

// Package tools pins the Kubernetes binaries a kind node image carries: the kubelet, kubeadm and
// kube-proxy beside the control plane, all from the one k8s.io/kubernetes release the local
// target builds (same replace directives, so Go's build cache is shared between the two).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubeadm"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubectl/pkg/cmd"
)
