package metrics

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// Before any request, every code and every upstream-reason pair is exported at
// zero, so the first error after start is a change rate() can see.
func TestLabelledCountersStartAtZero(t *testing.T) {
	s := New("gateway-a", "1.0.0")
	s.NewUpstream([]string{"b"}, []string{"timeout"})
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`bgh_requests_total{code="500",service="gateway-a",version="1.0.0"} 0`,
		`bgh_requests_total{code="200",service="gateway-a",version="1.0.0"} 0`,
		`bgh_upstream_errors_total{reason="timeout",service="gateway-a",upstream="b",version="1.0.0"} 0`,
		`bgh_upstream_request_duration_seconds_count{service="gateway-a",upstream="b",version="1.0.0"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
