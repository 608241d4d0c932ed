package http

import (
	"math"
	"slices"

	"github.com/wharfml/wharf"
)

// A chart gets at most chartPoints values per run. The store reads a
// history whole when it holds at most chartExactPoints values, and the
// server then thins it with downsampleM4; a longer history is sampled by
// the store (MetricHistorySample) at chartPoints positions spread over
// its steps, at a cost that does not depend on its length.
const (
	chartPoints      = 1000
	chartExactPoints = 8 * chartPoints
)

// downsampleM4 thins points, in history order, to at most about max
// values by cutting them into max/4 buckets of consecutive values and
// keeping, of each bucket, its first, last, smallest and largest value
// (the M4 method): a line drawn through what is kept has the same first
// and last points and the same extremes as the whole history. NaN values
// are kept only as a bucket's first or last.
func downsampleM4(points []*wharf.Metric, max int) []*wharf.Metric {
	if len(points) <= max || max < 4 {
		return points
	}
	buckets := max / 4
	out := make([]*wharf.Metric, 0, 4*buckets)
	for b := range buckets {
		lo, hi := b*len(points)/buckets, (b+1)*len(points)/buckets
		if lo >= hi {
			continue
		}
		first, last := lo, hi-1
		minI, maxI := -1, -1
		for i := lo; i < hi; i++ {
			v := points[i].Value
			if math.IsNaN(v) {
				continue
			}
			if minI < 0 || v < points[minI].Value {
				minI = i
			}
			if maxI < 0 || v > points[maxI].Value {
				maxI = i
			}
		}
		keep := []int{first, last}
		if minI >= 0 {
			keep = append(keep, minI, maxI)
		}
		// In history order, each once.
		slices.Sort(keep)
		for _, k := range slices.Compact(keep) {
			out = append(out, points[k])
		}
	}
	return out
}
