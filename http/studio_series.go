package http

import (
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The online endpoint page charts each endpoint's own Prometheus series
// (wharf_endpoint_requests_total and wharf_endpoint_request_duration_seconds,
// which the router keeps): from the first view of a monitoring tab on, a
// sampler reads them every seriesEvery, and again at each view, and keeps
// the last seriesKeep samples per endpoint in memory. A chart point is the change
// between two samples: requests per second, the share that failed, and
// latency quantiles estimated from the histogram buckets as Prometheus's
// histogram_quantile estimates them.

const (
	seriesEvery   = 15 * time.Second
	seriesKeep    = 240 // an hour at seriesEvery
	seriesMinStep = time.Second
)

// endpointSample is an endpoint's counters at one time, summed over its
// deployments.
type endpointSample struct {
	At       time.Time
	Requests float64
	Errors   float64
	// Bounds are the latency histogram's upper bounds in seconds and
	// Counts its cumulative counts.
	Bounds []float64
	Counts []float64
}

// endpointSeriesStore holds the samples. Its zero value is ready.
type endpointSeriesStore struct {
	mu      sync.Mutex
	last    time.Time
	samples map[string][]endpointSample
	once    sync.Once
	stop    chan struct{}
}

// start samples reg every seriesEvery until close; later calls do nothing.
func (st *endpointSeriesStore) start(reg prometheus.Gatherer, now func() time.Time) {
	st.once.Do(func() {
		st.mu.Lock()
		st.stop = make(chan struct{})
		stop := st.stop
		st.mu.Unlock()
		go func() {
			t := time.NewTicker(seriesEvery)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					st.sample(reg, now())
				}
			}
		}()
	})
}

// close stops the sampler.
func (st *endpointSeriesStore) close() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stop != nil {
		close(st.stop)
		st.stop = nil
	}
}

// sample records every endpoint's counters, unless the last sample is
// younger than seriesMinStep.
func (st *endpointSeriesStore) sample(reg prometheus.Gatherer, now time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if now.Sub(st.last) < seriesMinStep {
		return
	}
	families, err := reg.Gather()
	if err != nil && len(families) == 0 {
		return
	}
	st.last = now
	cur := map[string]*endpointSample{}
	get := func(m *dto.Metric) *endpointSample {
		var ws, ep string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "workspace":
				ws = l.GetValue()
			case "endpoint":
				ep = l.GetValue()
			}
		}
		k := ws + "/" + ep
		if cur[k] == nil {
			cur[k] = &endpointSample{At: now}
		}
		return cur[k]
	}
	for _, f := range families {
		switch f.GetName() {
		case "wharf_endpoint_requests_total":
			for _, m := range f.Metric {
				es := get(m)
				v := m.GetCounter().GetValue()
				es.Requests += v
				for _, l := range m.GetLabel() {
					if l.GetName() == "code" {
						if code, _ := strconv.Atoi(l.GetValue()); code >= 400 {
							es.Errors += v
						}
					}
				}
			}
		case "wharf_endpoint_request_duration_seconds":
			for _, m := range f.Metric {
				es := get(m)
				bs := m.GetHistogram().GetBucket()
				if es.Bounds == nil {
					es.Bounds, es.Counts = make([]float64, len(bs)), make([]float64, len(bs))
					for i, b := range bs {
						es.Bounds[i] = b.GetUpperBound()
					}
				}
				for i, b := range bs {
					if i < len(es.Counts) {
						es.Counts[i] += float64(b.GetCumulativeCount())
					}
				}
			}
		}
	}
	if st.samples == nil {
		st.samples = map[string][]endpointSample{}
	}
	for k, es := range cur {
		ss := append(st.samples[k], *es)
		if len(ss) > seriesKeep {
			ss = ss[len(ss)-seriesKeep:]
		}
		st.samples[k] = ss
	}
}

// endpointTotals are an endpoint's counts since its deployments started.
type endpointTotals struct {
	Requests, Errors float64
	P50, P90, P99    string
}

// endpointCharts names the endpoint page's charts, in order.
var endpointCharts = []struct{ Key, Title string }{
	{"requests", "Requests per second"},
	{"latency", "Latency (ms)"},
	{"errors", "Errors (share of requests)"},
}

// totals samples now and returns the endpoint's counts since its
// deployments started.
func (st *endpointSeriesStore) totals(reg prometheus.Gatherer, ws, ep string, now time.Time) endpointTotals {
	st.sample(reg, now)
	st.start(reg, time.Now)
	st.mu.Lock()
	defer st.mu.Unlock()
	var tot endpointTotals
	if ss := st.samples[ws+"/"+ep]; len(ss) > 0 {
		last := ss[len(ss)-1]
		tot.Requests, tot.Errors = last.Requests, last.Errors
		tot.P50 = formatSeconds(quantile(0.5, last.Bounds, last.Counts))
		tot.P90 = formatSeconds(quantile(0.9, last.Bounds, last.Counts))
		tot.P99 = formatSeconds(quantile(0.99, last.Bounds, last.Counts))
	}
	return tot
}

// chart returns one of endpointCharts as the studio's charts draw a
// history: one line per series, a point per interval between samples,
// stepped by interval and timed at its end.
func (st *endpointSeriesStore) chart(reg prometheus.Gatherer, ws, ep, key string, now time.Time) (historyJSON, bool) {
	st.sample(reg, now)
	st.start(reg, time.Now)
	st.mu.Lock()
	ss := append([]endpointSample(nil), st.samples[ws+"/"+ep]...)
	st.mu.Unlock()
	names := map[string][]string{"requests": {"requests/s"}, "latency": {"p50", "p90", "p99"}, "errors": {"error share"}}[key]
	if names == nil {
		return historyJSON{}, false
	}
	out := historyJSON{Key: key}
	for _, n := range names {
		out.Runs = append(out.Runs, runHistoryJSON{Run: n, Name: n, Steps: []int64{}, Times: []int64{}, Values: []*float64{}})
	}
	for i := 1; i < len(ss); i++ {
		a, b := ss[i-1], ss[i]
		dt := b.At.Sub(a.At).Seconds()
		dn := b.Requests - a.Requests
		if dt <= 0 || dn < 0 { // a restart reset the counters
			continue
		}
		var vals []float64
		switch key {
		case "requests":
			vals = []float64{dn / dt}
		case "errors":
			share := 0.0
			if dn > 0 {
				share = (b.Errors - a.Errors) / dn
			}
			vals = []float64{share}
		case "latency":
			delta := make([]float64, len(b.Counts))
			for j := range b.Counts {
				delta[j] = b.Counts[j]
				if j < len(a.Counts) {
					delta[j] -= a.Counts[j]
				}
			}
			for _, q := range []float64{0.5, 0.9, 0.99} {
				vals = append(vals, quantile(q, b.Bounds, delta)*1000)
			}
		}
		for k, v := range vals {
			r := &out.Runs[k]
			r.Steps = append(r.Steps, int64(i))
			r.Times = append(r.Times, b.At.UnixMilli())
			if math.IsNaN(v) {
				r.Values = append(r.Values, nil)
			} else {
				r.Values = append(r.Values, &v)
			}
		}
	}
	return out, true
}

// quantile estimates the q-quantile of a cumulative histogram by linear
// interpolation within the bucket that holds it; NaN without
// observations.
func quantile(q float64, bounds, counts []float64) float64 {
	if len(counts) == 0 {
		return math.NaN()
	}
	total := counts[len(counts)-1]
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	prevBound, prevCount := 0.0, 0.0
	for i, c := range counts {
		if c >= rank {
			if c == prevCount {
				return bounds[i]
			}
			return prevBound + (bounds[i]-prevBound)*(rank-prevCount)/(c-prevCount)
		}
		prevBound, prevCount = bounds[i], c
	}
	// Beyond the last finite bucket: its bound is the best estimate.
	return bounds[len(bounds)-1]
}

func formatSeconds(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case v < 0.001:
		return fmt.Sprintf("%.0f µs", v*1e6)
	case v < 1:
		return fmt.Sprintf("%.1f ms", v*1e3)
	}
	return fmt.Sprintf("%.2f s", v)
}
