package serviceb_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"bluegreen-harness/services/internal/fault"
	"bluegreen-harness/services/internal/svc"
	"bluegreen-harness/services/service-b/serviceb"
)

func TestHandler(t *testing.T) {
	cases := []struct {
		name     string
		pod      string
		fault    fault.Injector
		path     string
		wantCode int
		wantBody string
	}{
		{"version names the pod", "b-7d9f", fault.Injector{}, "/version", 200, `{"service":"b","version":"1.1.0","pod":"b-7d9f"}`},
		{"version omits an unknown pod", "", fault.Injector{}, "/version", 200, `{"service":"b","version":"1.1.0"}`},
		{"a faulty release answers 500", "", fault.Injector{ErrorRate: 1}, "/version", 500, `{"error":"injected fault"}`},
		{"faults spare the probes", "", fault.Injector{ErrorRate: 1}, "/healthz", 200, `{"status":"ok"}`},
		{"ready once serving", "", fault.Injector{}, "/readyz", 200, `{"status":"ready"}`},
		{"unknown path", "", fault.Injector{}, "/nope", 404, "404 page not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := svc.Config{Identity: serviceb.Identity, Version: "1.1.0", Pod: tc.pod, Fault: tc.fault}
			h := serviceb.Handler(svc.New(cfg, io.Discard))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
			if body := strings.TrimSpace(rec.Body.String()); rec.Code != tc.wantCode || body != tc.wantBody {
				t.Fatalf("GET %s = %d %s, want %d %s", tc.path, rec.Code, body, tc.wantCode, tc.wantBody)
			}
		})
	}
}

func TestMetricsCountVersionRequestsButNotProbes(t *testing.T) {
	h := serviceb.Handler(svc.New(svc.Config{Identity: serviceb.Identity, Version: "1.1.0"}, io.Discard))
	for _, path := range []string{"/version", "/version", "/healthz", "/readyz"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`bgh_requests_total{code="200",service="service-b",version="1.1.0"} 2`,
		`bgh_request_duration_seconds_count{service="service-b",version="1.1.0"} 2`,
		`bgh_request_duration_seconds_bucket{service="service-b",version="1.1.0",le="0.0001"}`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if rec.Code != http.StatusOK {
		t.Errorf("/metrics code = %d", rec.Code)
	}
}
