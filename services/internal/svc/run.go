package svc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// DrainTimeout bounds graceful shutdown. It stays below Kubernetes' default
// terminationGracePeriodSeconds (30s) so we exit before the SIGKILL.
const DrainTimeout = 20 * time.Second

// Server is what Run serves and drains; *http.Server and the line-protocol
// server of service C both fit.
type Server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

// Listener is one port a service listens on.
type Listener struct {
	Name   string // for log lines: "http", "tcp", "metrics"
	Port   int
	Server Server
}

// Run listens on every port, serves until SIGTERM or SIGINT, then drains
// in-flight requests and returns the process exit code.
func (b *Base) Run(ls ...Listener) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// Once draining, a second signal kills at once: an operator pressing
	// Ctrl-C twice means it.
	context.AfterFunc(ctx, stop)
	if err := b.serve(ctx, ls); err != nil {
		b.Log.Error("stopped", "error", err.Error())
		return ExitRuntime
	}
	b.Log.Info("stopped")
	return ExitOK
}

func (b *Base) serve(ctx context.Context, ls []Listener) error {
	nls := make([]net.Listener, 0, len(ls))
	for _, l := range ls {
		nl, err := net.Listen("tcp", net.JoinHostPort(b.Host, strconv.Itoa(l.Port)))
		if err != nil {
			for _, open := range nls {
				open.Close()
			}
			return fmt.Errorf("%s listener: %w", l.Name, err)
		}
		nls = append(nls, nl)
		b.Log.Info("listening", "listener", l.Name, "addr", nl.Addr().String())
	}
	return b.serveOn(ctx, ls, nls)
}

// serveOn serves ls[i].Server on nls[i] until ctx is done or one fails,
// then shuts every server down within DrainTimeout.
func (b *Base) serveOn(ctx context.Context, ls []Listener, nls []net.Listener) error {
	failed := make(chan error, len(ls))
	for i, l := range ls {
		go func() {
			if err := l.Server.Serve(nls[i]); !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				failed <- fmt.Errorf("%s listener: %w", l.Name, err)
			}
		}()
	}

	var err error
	select {
	case <-ctx.Done():
		b.Log.Info("draining", "timeout_ms", DrainTimeout.Milliseconds())
	case err = <-failed:
	}
	drainCtx, cancel := context.WithTimeout(context.Background(), DrainTimeout)
	defer cancel()
	errs := make(chan error, len(ls))
	for _, l := range ls {
		go func() { errs <- l.Server.Shutdown(drainCtx) }()
	}
	for range ls {
		if e := <-errs; e != nil {
			err = errors.Join(err, fmt.Errorf("drain: %w", e))
		}
	}
	return err
}
