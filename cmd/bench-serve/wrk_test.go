package main

import (
	"errors"
	"testing"
	"time"
)

// wrk 4.1.0's --latency output, as parsed by parseWrk.
const wrkOutput = `Running 10s test @ http://127.0.0.1:40783/invocations
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   707.62ms  142.22ms   1.19s    71.30%
    Req/Sec     6.02      3.71    20.00     82.35%
  Latency Distribution
     50%  719.25ms
     75%  782.11ms
     90%  855.02ms
     99%    1.41s
  108 requests in 10.05s, 216.71KB read
  Socket errors: connect 0, read 0, write 0, timeout 2
  Non-2xx or 3xx responses: 3
Requests/sec:     10.75
Transfer/sec:     21.56KB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkOutput)
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{requests: 108, seconds: 10.05, rps: 10.75, p50: 719250 * time.Microsecond, p99: 1410 * time.Millisecond,
		non2xx: 3, socketErrors: "connect 0, read 0, write 0, timeout 2", transferPerS: "21.56KB", latencyLine: "707.62ms 142.22ms 1.19s"}
	if *r != want {
		t.Fatalf("parseWrk:\n got %+v\nwant %+v", *r, want)
	}
}

func TestParseWrkNoRequest(t *testing.T) {
	out := "  Latency Distribution\n     50%    0.00us\n     99%    0.00us\n  0 requests in 1.06s, 0.00B read\nRequests/sec:      0.00\n"
	if _, err := parseWrk(out); !errors.Is(err, errWrkNoRequest) {
		t.Fatalf("parseWrk with no request: err = %v, want errWrkNoRequest", err)
	}
	if _, err := parseWrk("wrk: connection refused\n"); err == nil {
		t.Fatal("parseWrk accepted output without figures")
	}
}
