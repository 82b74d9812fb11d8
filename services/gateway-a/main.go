// Command gateway-a runs gateway A; see package gateway and services/README.md.
package main

import (
	"os"

	"bluegreen-harness/services/gateway-a/gateway"
	"bluegreen-harness/services/internal/env"
	"bluegreen-harness/services/internal/svc"
)

func main() {
	r := env.OS()
	cfg := svc.LoadConfig(r, gateway.Identity)
	gw := gateway.LoadConfig(r)
	svc.ExitOnBadConfig(cfg.Name, r)

	b := svc.New(cfg, os.Stdout)
	g := gateway.New(b, gw)
	os.Exit(b.Run(
		svc.Listener{Name: "http", Port: cfg.Port, Server: svc.NewServer(g.Handler(), b.Log)},
		b.OpsListener(g.Ready),
	))
}
