// Command pause holds a pod's namespaces open, as registry.k8s.io/pause does: it sleeps until
// SIGINT or SIGTERM, and reaps the zombies of a shared PID namespace on SIGCHLD. Built here
// because no image can be pulled; the node's containerd runs it as the sandbox image.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
