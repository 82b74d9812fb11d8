// Package fault simulates a bad release: a share of requests fails and every
// request is slowed down. Both knobs are off by default; they exist so the
// analysis gate and the rollback runbooks can be exercised on demand.
package fault

import (
	"context"
	"math/rand/v2"
	"time"

	"bluegreen-harness/services/internal/env"
)

// Injector decides, per request, how long to stall and whether to fail.
// The zero value injects nothing.
type Injector struct {
	ErrorRate float64       // share of requests that fail, 0 to 1
	Latency   time.Duration // added to every request
}

// Load reads FAULT_ERROR_RATE and FAULT_LATENCY_MS.
func Load(r *env.Reader) Injector {
	return Injector{
		ErrorRate: r.Fraction("FAULT_ERROR_RATE", "0.05"),
		Latency:   r.Millis("FAULT_LATENCY_MS", 0, 0, "250"),
	}
}

// On reports whether any fault is configured.
func (f Injector) On() bool { return f.ErrorRate > 0 || f.Latency > 0 }

// Apply waits out the added latency, then reports whether this request
// must fail. A cancelled context (client gone, shutdown) cuts the wait short.
func (f Injector) Apply(ctx context.Context) (fail bool) {
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	// rand.Float64 is in [0, 1): a rate of 0 never fails and 1 always does.
	return f.ErrorRate > 0 && rand.Float64() < f.ErrorRate
}
