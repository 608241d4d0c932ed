// Package loadstat holds the arithmetic the load generators under bench/
// share: nearest-rank percentiles of kept latencies, millisecond
// conversion and rounding for their JSON lines.
package loadstat

import (
	"math"
	"sort"
	"strconv"
	"time"
)

// Percentile returns the nearest-rank p-quantile of sorted: the smallest
// sample with at least a fraction p of the samples at or below it. Every
// latency is kept, so this is exact rather than a bucket's bound. It is 0
// for no samples.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// The epsilon keeps exact multiples (0.99*100) from rounding up a rank.
	rank := int(math.Ceil(p*float64(n) - 1e-9))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// Ms is d in milliseconds.
func Ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Round rounds v to places decimals, as printed.
func Round(v float64, places int) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', places, 64), 64)
	return f
}

// SortedKeys returns m's keys in order, for printing error kinds.
func SortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
