package main

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestCheckAnswer(t *testing.T) {
	for answer, ok := range map[string]bool{
		`[12.0]`:                         true,
		`[[12.000000000000002]]`:         true,
		`{"predictions": [12.0]}`:        true,
		`{"predictions": [{"0": 12.0}]}`: false,
		`[12.5]`:                         false,
		`[]`:                             false,
		`{"error": "boom"}`:              false,
		`not json`:                       false,
	} {
		if err := checkAnswer([]byte(answer), 12, 1e-9); (err == nil) != ok {
			t.Errorf("checkAnswer(%s) = %v, want ok %v", answer, err, ok)
		}
	}
}

const exposition = `# HELP wharf_endpoint_request_duration_seconds Scoring latency as the router saw it.
# TYPE wharf_endpoint_request_duration_seconds histogram
wharf_endpoint_request_duration_seconds_bucket{deployment="blue",endpoint="ep-native",workspace="bench",le="0.0001"} %d
wharf_endpoint_request_duration_seconds_bucket{deployment="blue",endpoint="ep-native",workspace="bench",le="0.00025"} %d
wharf_endpoint_request_duration_seconds_bucket{deployment="blue",endpoint="ep-native",workspace="bench",le="0.0005"} %d
wharf_endpoint_request_duration_seconds_bucket{deployment="blue",endpoint="ep-native",workspace="bench",le="+Inf"} %d
wharf_endpoint_request_duration_seconds_sum{deployment="blue",endpoint="ep-native",workspace="bench"} %s
wharf_endpoint_request_duration_seconds_count{deployment="blue",endpoint="ep-native",workspace="bench"} %d
wharf_endpoint_request_duration_seconds_bucket{deployment="blue",endpoint="ep-pyfunc",workspace="bench",le="0.0001"} 0
wharf_endpoint_request_duration_seconds_bucket{deployment="blue",endpoint="ep-pyfunc",workspace="bench",le="+Inf"} 999
wharf_endpoint_request_duration_seconds_sum{deployment="blue",endpoint="ep-pyfunc",workspace="bench"} 99
wharf_endpoint_request_duration_seconds_count{deployment="blue",endpoint="ep-pyfunc",workspace="bench"} 999
wharf_endpoint_requests_total{code="200",deployment="blue",endpoint="ep-native",workspace="bench"} 7
`

// reading parses the exposition above with ep-native's buckets (at or
// below 0.1, 0.25 and 0.5 ms), count and sum filled in.
func reading(t *testing.T, b1, b2, b3, count int, sum string) histogram {
	t.Helper()
	text := fmt.Sprintf(exposition, b1, b2, b3, count, sum, count)
	h, err := parseHistogram(strings.NewReader(text), "wharf_endpoint_request_duration_seconds", `endpoint="ep-native"`)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHistogram(t *testing.T) {
	before := reading(t, 10, 20, 30, 40, "0.01")
	if before.count != 40 || before.sum != 0.01 || len(before.bounds) != 3 || before.counts[2] != 30 {
		t.Fatalf("parsed %+v; only ep-native's series should count, +Inf as the count", before)
	}
	// Between the readings: 100 requests, 40 at or below 0.1 ms, 90 at or
	// below 0.25 ms, all at or below 0.5 ms, 0.015 s in all.
	after := reading(t, 50, 110, 130, 140, "0.025")
	d := after.minus(before)
	if d.count != 100 || math.Abs(d.sum-0.015) > 1e-12 {
		t.Fatalf("difference %+v", d)
	}
	for _, c := range []struct{ q, want float64 }{
		{0.40, 0.0001},  // exactly the first bound
		{0.20, 0.00005}, // half-way into the first bucket, which starts at 0
		{0.50, 0.0001 + 0.00015*10/50},
		{0.99, 0.00025 + 0.00025*9/10},
		{1, 0.0005},
	} {
		if got := d.quantile(c.q); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	// A rank past the last finite bound gives that bound.
	past := histogram{bounds: []float64{0.001}, counts: []float64{5}, count: 10}
	if got := past.quantile(0.99); got != 0.001 {
		t.Errorf("quantile past the last bound = %v", got)
	}
	if got := (histogram{}).quantile(0.5); !math.IsNaN(got) {
		t.Errorf("quantile of nothing = %v, want NaN", got)
	}
}
