package fault_test

import (
	"context"
	"testing"
	"time"

	"bluegreen-harness/services/internal/env"
	"bluegreen-harness/services/internal/fault"
)

func TestApplyFailsExactlyTheConfiguredShareAtTheEnds(t *testing.T) {
	for _, tc := range []struct {
		rate float64
		want bool
	}{{0, false}, {1, true}} {
		f := fault.Injector{ErrorRate: tc.rate}
		for range 1000 {
			if got := f.Apply(context.Background()); got != tc.want {
				t.Fatalf("rate %v: Apply = %v, want %v every time", tc.rate, got, tc.want)
			}
		}
	}
}

func TestApplyWaitsTheLatencyUnlessCancelled(t *testing.T) {
	start := time.Now()
	fault.Injector{Latency: 30 * time.Millisecond}.Apply(context.Background())
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("Apply returned after %v, want at least the 30ms latency", d)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start = time.Now()
	fault.Injector{Latency: time.Hour}.Apply(ctx)
	if d := time.Since(start); d > time.Second {
		t.Errorf("Apply with a cancelled context took %v, want it cut short", d)
	}
}

func TestLoadIsOffByDefault(t *testing.T) {
	r := env.Map(nil)
	if f := fault.Load(r); f.On() || r.Err() != nil {
		t.Fatalf("Load of an empty environment = %+v (err %v), want faults off", f, r.Err())
	}
	r = env.Map(map[string]string{"FAULT_ERROR_RATE": "0.5", "FAULT_LATENCY_MS": "20"})
	if f := fault.Load(r); f.ErrorRate != 0.5 || f.Latency != 20*time.Millisecond || !f.On() {
		t.Fatalf("Load = %+v, want rate 0.5 and 20ms", f)
	}
}
