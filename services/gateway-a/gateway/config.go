// Package gateway is gateway A: it asks service B (HTTP) and service C (TCP)
// for their versions, concurrently and with a timeout each, and shows what it
// collected as JSON (GET /versions) and as a page (GET /).
//
// The answer names the pod behind each version, so a probe through A can
// prove which ReplicaSet of B and C answered after a blue-green switch.
package gateway

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"bluegreen-harness/services/internal/env"
	"bluegreen-harness/services/internal/svc"
)

// Identity names gateway A in metrics, logs and version answers.
var Identity = svc.Identity{Name: "gateway-a", Short: "a"}

// Config holds A's own settings.
//
// Unlike the other settings, bad upstream addresses do not stop the process:
// A starts, reports not ready with the reason on /readyz, and Kubernetes
// keeps it out of the Service, where kubectl describe shows why.
type Config struct {
	BURL    string        // SERVICE_B_URL, e.g. http://service-b:3000
	CAddr   string        // SERVICE_C_ADDR, e.g. service-c:3000
	Timeout time.Duration // per upstream call
	// ImageGreeting is the greeting built into the image (IMAGE_GREETING,
	// set by the Dockerfile from the build argument GREETING): a build
	// without one shows no greeting, whatever the configuration says.
	ImageGreeting string
	// Greeting (GREETING) overrides the built-in greeting's text, on a
	// build that has one.
	Greeting string
}

// LoadConfig reads SERVICE_B_URL, SERVICE_C_ADDR, UPSTREAM_TIMEOUT_MS,
// IMAGE_GREETING and GREETING.
func LoadConfig(r *env.Reader) Config {
	return Config{
		BURL:          r.String("SERVICE_B_URL", ""),
		CAddr:         r.String("SERVICE_C_ADDR", ""),
		Timeout:       r.Millis("UPSTREAM_TIMEOUT_MS", 500*time.Millisecond, 1, "500"),
		ImageGreeting: r.Text("IMAGE_GREETING", "", "Merry Christmas 🎄"),
		Greeting:      r.Text("GREETING", "", "Hello from blue 👋"),
	}
}

// PageGreeting is the greeting the page shows: none on a build without
// one; GREETING's text, when set, on a build with one.
func (c Config) PageGreeting() string {
	if c.ImageGreeting == "" || c.Greeting == "" {
		return c.ImageGreeting
	}
	return c.Greeting
}

// checkBURL says what is wrong with SERVICE_B_URL, or returns its URL.
func checkBURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("SERVICE_B_URL is not set; want e.g. http://service-b:3000")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("SERVICE_B_URL=%q is not an http(s) URL; want e.g. http://service-b:3000", raw)
	}
	return u, nil
}

// checkCAddr says what is wrong with SERVICE_C_ADDR.
func checkCAddr(raw string) error {
	if raw == "" {
		return errors.New("SERVICE_C_ADDR is not set; want e.g. service-c:3000")
	}
	host, port, err := net.SplitHostPort(raw)
	n, perr := strconv.Atoi(port)
	if err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		return fmt.Errorf("SERVICE_C_ADDR=%q is not host:port; want e.g. service-c:3000", raw)
	}
	return nil
}
