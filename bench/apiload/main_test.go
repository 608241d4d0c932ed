package main

import (
	"testing"
	"time"
)

// The percentiles are the benchmark's headline numbers, so their rank
// arithmetic is pinned down here; no test measures speed.
func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	cases := []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{[]time.Duration{7}, 0.99, 7},
		{hundred, 0.50, 50 * time.Millisecond},
		{hundred, 0.99, 99 * time.Millisecond},
		{hundred, 1, 100 * time.Millisecond},
		{hundred[:10], 0.99, 10 * time.Millisecond},
		{hundred[:3], 0.50, 2 * time.Millisecond},
	}
	for _, c := range cases {
		if got := percentile(c.in, c.p); got != c.want {
			t.Errorf("percentile(len %d, %v) = %v, want %v", len(c.in), c.p, got, c.want)
		}
	}
}

func TestIsWrite(t *testing.T) {
	for _, c := range []struct {
		mix  string
		want int
	}{{mixWrite, 1000}, {mixRead, 0}, {mixMixed, 200}} {
		writes := 0
		for i := range 1000 {
			if isWrite(c.mix, i) {
				writes++
			}
		}
		if writes != c.want {
			t.Errorf("%s: %d writes in 1000 requests, want %d", c.mix, writes, c.want)
		}
	}
}
