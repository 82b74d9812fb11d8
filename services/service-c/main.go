// Command service-c runs service C; see package servicec and services/README.md.
package main

import (
	"os"

	"bluegreen-harness/services/internal/env"
	"bluegreen-harness/services/internal/svc"
	"bluegreen-harness/services/service-c/servicec"
)

func main() {
	r := env.OS()
	cfg := svc.LoadConfig(r, servicec.Identity)
	c := servicec.LoadConfig(r)
	svc.ExitOnBadConfig(cfg.Name, r)

	b := svc.New(cfg, os.Stdout)
	os.Exit(b.Run(
		svc.Listener{Name: "tcp", Port: cfg.Port, Server: servicec.NewServer(b, c)},
		b.OpsListener(func() error { return nil }),
	))
}
