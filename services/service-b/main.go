// Command service-b runs service B; see package serviceb and services/README.md.
package main

import (
	"os"

	"bluegreen-harness/services/internal/env"
	"bluegreen-harness/services/internal/svc"
	"bluegreen-harness/services/service-b/serviceb"
)

func main() {
	r := env.OS()
	cfg := svc.LoadConfig(r, serviceb.Identity)
	svc.ExitOnBadConfig(cfg.Name, r)

	b := svc.New(cfg, os.Stdout)
	os.Exit(b.Run(
		svc.Listener{Name: "http", Port: cfg.Port, Server: svc.NewServer(serviceb.Handler(b), b.Log)},
		b.OpsListener(func() error { return nil }),
	))
}
