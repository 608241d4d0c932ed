package loadstat

import (
	"slices"
	"testing"
	"time"
)

// The percentiles are the benchmarks' headline numbers, so their rank
// arithmetic is pinned down here; no test measures speed.
func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, c := range []struct {
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
	} {
		if got := Percentile(c.in, c.p); got != c.want {
			t.Errorf("Percentile(len %d, %v) = %v, want %v", len(c.in), c.p, got, c.want)
		}
	}
}

func TestMsRoundSortedKeys(t *testing.T) {
	if got := Round(Ms(1234567*time.Nanosecond), 3); got != 1.235 {
		t.Errorf("Round(Ms(1.234567 ms), 3) = %v", got)
	}
	if got := SortedKeys(map[string]int{"b": 1, "a": 2}); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("SortedKeys = %v", got)
	}
}
