// Command loadgen sends requests at a fixed rate and reports latency
// percentiles as JSON, for benchmarks/bench_services.py.
//
// wrk measures throughput with closed loops: each connection waits for an
// answer before sending again, so a slow answer delays the next request
// and hides itself. loadgen is open-loop instead: request i is due at
// start + i/rate and its latency is counted from that due time, so a stall
// shows up in the percentiles (no coordinated omission).
//
//	loadgen -a http://127.0.0.1:3000/versions -b http://127.0.0.2:3000/version -c 127.0.0.3:3000
//
// "gateway" requests go to A; "direct" requests do what A does without A:
// ask B and C at the same time and wait for both, so gateway minus direct
// is A's cost. Given both, each gets -rate requests per second and they
// alternate request by request, so that noise from other processes on the
// machine falls on both alike.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// summary describes the requests sent to one target.
type summary struct {
	Sent     int     `json:"sent"`
	Errors   int     `json:"errors"`
	FirstErr string  `json:"first_error,omitempty"`
	P50ms    float64 `json:"p50_ms"`
	P90ms    float64 `json:"p90_ms"`
	P99ms    float64 `json:"p99_ms"`
	P999ms   float64 `json:"p999_ms"`
	Maxms    float64 `json:"max_ms"`
}

type target struct {
	name string
	send func(context.Context) error
}

func main() {
	aURL := flag.String("a", "", "gateway A URL, e.g. http://127.0.0.1:3000/versions")
	bURL := flag.String("b", "", "service B URL, e.g. http://127.0.0.2:3000/version")
	cAddr := flag.String("c", "", "service C address, e.g. 127.0.0.3:3000")
	rate := flag.Int("rate", 1000, "requests per second to each target")
	duration := flag.Duration("duration", 20*time.Second, "how long to send")
	timeout := flag.Duration("timeout", 2*time.Second, "per-request timeout")
	flag.Parse()

	client := &http.Client{Timeout: *timeout, Transport: &http.Transport{
		MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute,
	}}
	var targets []target
	if *aURL != "" {
		targets = append(targets, target{"gateway", func(ctx context.Context) error { return get(ctx, client, *aURL) }})
	}
	if *bURL != "" && *cAddr != "" {
		c := &cPool{addr: *cAddr, idle: make(chan *cConn, 1024)}
		targets = append(targets, target{"direct", func(ctx context.Context) error {
			var wg sync.WaitGroup
			var bErr, cErr error
			wg.Go(func() { bErr = get(ctx, client, *bURL) })
			wg.Go(func() { cErr = c.ask(ctx) })
			wg.Wait()
			return errors.Join(bErr, cErr)
		}})
	}
	if len(targets) == 0 || *rate < 1 {
		fmt.Fprintln(os.Stderr, "loadgen: want -a URL and/or -b URL -c HOST:PORT, and a -rate of at least 1")
		os.Exit(2)
	}
	json.NewEncoder(os.Stdout).Encode(run(targets, *rate, *duration, *timeout))
}

// run sends rate requests per second to each target for d, taking turns,
// and summarises the latencies per target.
func run(targets []target, rate int, d, timeout time.Duration) map[string]summary {
	n := int(d.Seconds()*float64(rate)) * len(targets)
	interval := time.Second / time.Duration(rate*len(targets))
	latencies := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		send := targets[i%len(targets)].send
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			errs[i] = send(ctx)
			latencies[i] = time.Since(due)
		})
	}
	wg.Wait()

	out := map[string]summary{}
	for t, tg := range targets {
		var s summary
		var lat []time.Duration
		for i := range n {
			if i%len(targets) != t {
				continue
			}
			s.Sent++
			lat = append(lat, latencies[i])
			if errs[i] != nil {
				if s.Errors == 0 {
					s.FirstErr = errs[i].Error()
				}
				s.Errors++
			}
		}
		slices.Sort(lat)
		pct := func(p float64) float64 {
			if len(lat) == 0 {
				return 0
			}
			i := int(math.Ceil(p/100*float64(len(lat)))) - 1
			return float64(lat[max(i, 0)].Microseconds()) / 1000
		}
		s.P50ms, s.P90ms, s.P99ms, s.P999ms, s.Maxms = pct(50), pct(90), pct(99), pct(99.9), pct(100)
		out[tg.name] = s
	}
	return out
}

func get(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return nil
}

// cPool keeps connections to C open, as gateway A does.
type cPool struct {
	addr string
	idle chan *cConn
}

type cConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *cPool) ask(ctx context.Context) error {
	var conn *cConn
	fresh := false // C writes its version line on accept: a new connection's answer comes unasked
	select {
	case conn = <-p.idle:
	default:
		fresh = true
		var d net.Dialer
		nc, err := d.DialContext(ctx, "tcp", p.addr)
		if err != nil {
			return err
		}
		conn = &cConn{nc, bufio.NewReader(nc)}
	}
	dl, _ := ctx.Deadline()
	conn.SetDeadline(dl)
	line, err := "", error(nil)
	if !fresh {
		_, err = io.WriteString(conn, "VERSION\n")
	}
	if err == nil {
		line, err = conn.r.ReadString('\n')
	}
	if err == nil && !strings.HasPrefix(line, "c ") {
		err = fmt.Errorf("C answered %q", line)
	}
	if err != nil {
		conn.Close()
		return err
	}
	select {
	case p.idle <- conn:
	default:
		conn.Close()
	}
	return nil
}
