package http

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The online endpoint page charts each endpoint's own Prometheus series
// (wharf_endpoint_requests_total and wharf_endpoint_request_duration_seconds,
// which the router keeps): a sampler reads them every seriesEvery while
// the server serves, and on each page view, and keeps the last
// seriesKeep samples per endpoint in memory. A chart point is the change
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

// seriesChart is one chart, drawn as SVG by the page.
type seriesChart struct {
	Title string
	// YMax labels the top of the chart; the bottom is zero.
	YMax  string
	Lines []seriesLine
	// From and To label the x axis.
	From, To string
	Empty    bool
}

// seriesLine is a polyline in the chart's 600×150 box.
type seriesLine struct {
	Name, Colour string
	Points       string
	Last         string
}

// charts samples now and returns the endpoint's charts and totals.
func (st *endpointSeriesStore) charts(reg prometheus.Gatherer, ws, ep string, now time.Time) ([]seriesChart, endpointTotals) {
	st.sample(reg, now)
	st.start(reg, time.Now)
	st.mu.Lock()
	ss := append([]endpointSample(nil), st.samples[ws+"/"+ep]...)
	st.mu.Unlock()
	var tot endpointTotals
	if n := len(ss); n > 0 {
		last := ss[n-1]
		tot.Requests, tot.Errors = last.Requests, last.Errors
		tot.P50 = formatSeconds(quantile(0.5, last.Bounds, last.Counts))
		tot.P90 = formatSeconds(quantile(0.9, last.Bounds, last.Counts))
		tot.P99 = formatSeconds(quantile(0.99, last.Bounds, last.Counts))
	}
	var rate, errs, p50, p90, p99 []float64
	for i := 1; i < len(ss); i++ {
		a, b := ss[i-1], ss[i]
		dt := b.At.Sub(a.At).Seconds()
		dn := b.Requests - a.Requests
		if dt <= 0 || dn < 0 { // a restart reset the counters
			continue
		}
		rate = append(rate, dn/dt)
		share := 0.0
		if dn > 0 {
			share = (b.Errors - a.Errors) / dn
		}
		errs = append(errs, share)
		delta := make([]float64, len(b.Counts))
		for j := range b.Counts {
			if j < len(a.Counts) {
				delta[j] = b.Counts[j] - a.Counts[j]
			} else {
				delta[j] = b.Counts[j]
			}
		}
		p50 = append(p50, quantile(0.5, b.Bounds, delta))
		p90 = append(p90, quantile(0.9, b.Bounds, delta))
		p99 = append(p99, quantile(0.99, b.Bounds, delta))
	}
	from, to := "", ""
	if len(ss) > 1 {
		from, to = ss[0].At.UTC().Format("15:04:05"), ss[len(ss)-1].At.UTC().Format("15:04:05")
	}
	charts := []seriesChart{
		drawChart("Requests per second", from, to, formatRate, []string{"requests/s"}, []string{"#1f6feb"}, rate),
		drawChart("Latency", from, to, formatSeconds, []string{"p50", "p90", "p99"}, []string{"#2da44e", "#bf8700", "#cf222e"}, p50, p90, p99),
		drawChart("Errors (share of requests)", from, to, formatShare, []string{"errors"}, []string{"#cf222e"}, errs),
	}
	return charts, tot
}

// drawChart scales series into the chart box: x by index, y from zero to
// the largest value.
func drawChart(title, from, to string, format func(float64) string, names, colours []string, series ...[]float64) seriesChart {
	c := seriesChart{Title: title, From: from, To: to}
	top := 0.0
	n := 0
	for _, s := range series {
		n = max(n, len(s))
		for _, v := range s {
			if !math.IsNaN(v) {
				top = max(top, v)
			}
		}
	}
	if n == 0 {
		c.Empty = true
		return c
	}
	if top == 0 {
		top = 1
	}
	c.YMax = format(top)
	for i, s := range series {
		var b strings.Builder
		for j, v := range s {
			if math.IsNaN(v) {
				continue
			}
			x := 600.0
			if n > 1 {
				x = float64(j) * 600 / float64(n-1)
			}
			fmt.Fprintf(&b, "%.1f,%.1f ", x, 150-v/top*145)
		}
		line := seriesLine{Name: names[i], Colour: colours[i], Points: strings.TrimSpace(b.String())}
		if len(s) > 0 {
			line.Last = format(s[len(s)-1])
		}
		c.Lines = append(c.Lines, line)
	}
	return c
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

func formatRate(v float64) string  { return fmt.Sprintf("%.2f/s", v) }
func formatShare(v float64) string { return fmt.Sprintf("%.1f%%", v*100) }
