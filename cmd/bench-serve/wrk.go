package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// errWrkNoRequest: no request completed within the run.
var errWrkNoRequest = errors.New("wrk completed no request")

// wrkResult is what one wrk run reports.
type wrkResult struct {
	requests     int
	seconds      float64
	rps          float64
	p50, p99     time.Duration
	non2xx       int
	socketErrors string // wrk's "Socket errors" line, empty when none
	transferPerS string
	latencyLine  string // wrk's "Latency avg stdev max" line, for the log
}

// wrkRun is one wrk invocation: cfg's threads, connections and timeout,
// the body file POSTed by scripts/bench_serve_wrk.lua.
func wrkRun(ctx context.Context, cfg config, url, body string, d time.Duration) (*wrkResult, error) {
	args := []string{
		"-t", strconv.Itoa(cfg.threads), "-c", strconv.Itoa(cfg.conns), "-d", fmt.Sprintf("%ds", int(d.Seconds())),
		"--timeout", fmt.Sprintf("%ds", int(cfg.wrkTimeout.Seconds())), "--latency",
		"-s", cfg.lua, url, "--", body,
	}
	cmd := exec.CommandContext(ctx, cfg.wrk, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("wrk %s: %w: %s%s", strings.Join(args, " "), err, errb.String(), out.String())
	}
	r, err := parseWrk(out.String())
	if err != nil {
		return nil, fmt.Errorf("wrk %s: %w\n%s", url, err, out.String())
	}
	return r, nil
}

var (
	wrkPercentile = regexp.MustCompile(`(?m)^\s*(50|99)(?:\.0+)?%\s+([0-9.]+)(us|ms|s|m|h)\s*$`)
	wrkRequests   = regexp.MustCompile(`(?m)^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m|h),`)
	wrkRPS        = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)\s*$`)
	wrkNon2xx     = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses:\s+(\d+)\s*$`)
	wrkSocket     = regexp.MustCompile(`(?m)^\s*Socket errors:(.*)$`)
	wrkTransfer   = regexp.MustCompile(`(?m)^Transfer/sec:\s+(\S+)\s*$`)
	wrkLatency    = regexp.MustCompile(`(?m)^\s*Latency\s+(\S+\s+\S+\s+\S+)`)
)

// parseWrk reads wrk --latency output: Requests/sec and the 50% and 99%
// lines of the Latency Distribution.
func parseWrk(out string) (*wrkResult, error) {
	r := &wrkResult{}
	for _, m := range wrkPercentile.FindAllStringSubmatch(out, -1) {
		d, err := wrkDuration(m[2], m[3])
		if err != nil {
			return nil, err
		}
		if m[1] == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	m := wrkRequests.FindStringSubmatch(out)
	rps := wrkRPS.FindStringSubmatch(out)
	if m != nil && m[1] == "0" {
		return nil, errWrkNoRequest
	}
	if m == nil || rps == nil || r.p50 == 0 || r.p99 == 0 {
		return nil, fmt.Errorf("no latency distribution, request count or Requests/sec in wrk's output")
	}
	r.requests, _ = strconv.Atoi(m[1])
	el, err := wrkDuration(m[2], m[3])
	if err != nil {
		return nil, err
	}
	r.seconds = el.Seconds()
	if r.rps, err = strconv.ParseFloat(rps[1], 64); err != nil {
		return nil, fmt.Errorf("Requests/sec %q: %w", rps[1], err)
	}
	if n := wrkNon2xx.FindStringSubmatch(out); n != nil {
		r.non2xx, _ = strconv.Atoi(n[1])
	}
	if s := wrkSocket.FindStringSubmatch(out); s != nil {
		r.socketErrors = strings.TrimSpace(s[1])
	}
	if t := wrkTransfer.FindStringSubmatch(out); t != nil {
		r.transferPerS = t[1]
	}
	if l := wrkLatency.FindStringSubmatch(out); l != nil {
		r.latencyLine = strings.Join(strings.Fields(l[1]), " ")
	}
	if r.requests == 0 {
		return nil, errWrkNoRequest
	}
	return r, nil
}

// wrkDuration parses wrk's time format (format_time: us, ms, s, m, h).
func wrkDuration(v, unit string) (time.Duration, error) {
	x, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("wrk time %q: %w", v+unit, err)
	}
	scale := map[string]float64{"us": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}[unit]
	return time.Duration(x * scale), nil
}
