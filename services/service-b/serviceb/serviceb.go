// Package serviceb is service B: an HTTP service whose one business endpoint,
// GET /version, tells gateway A which version (and pod) answered.
package serviceb

import (
	"net/http"

	"bluegreen-harness/services/internal/svc"
)

// Identity names service B in metrics, logs and version answers.
var Identity = svc.Identity{Name: "service-b", Short: "b"}

// Handler serves /version (instrumented, subject to the fault knobs) and the
// ops endpoints.
func Handler(b *svc.Base) http.Handler {
	mux := b.OpsMux(func() error { return nil })
	mux.Handle("GET /version", b.Instrument(b.VersionHandler()))
	return mux
}
