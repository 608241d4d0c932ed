// Command serveload drives one model-scoring URL at a fixed concurrency for
// a fixed time and prints one JSON line of throughput and latency.
// bench/serving.sh runs it against Wharf's online endpoints and against
// `mlflow models serve`.
//
//	serveload -url URL -key KEY -format azureml -concurrency 8 -duration 10s -want 12
//	serveload -url http://127.0.0.1:PORT/invocations -format mlflow -concurrency 8
//
// Every request scores the same one-row frame (distance 3, hour 10) in the
// body the server expects (-format azureml: Azure ML's `input_data`;
// -format mlflow: MLflow's `dataframe_split`). An answer counts only when
// it is a 200 whose first number is -want (within -tolerance); anything
// else, a transport failure included, is an error, with its kind on stderr
// and in the JSON line.
//
// With -metrics (the server's Prometheus /metrics URL) the histogram
// -histogram is read just before and just after the measured run, and the
// difference over the series whose labels contain -labels gives the
// server's own count, mean and bucket-interpolated p50 and p99 of the
// measured requests.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wharfml/wharf/bench/internal/loadstat"
)

// Request body formats accepted by -format.
const (
	formatAzureML = "azureml"
	formatMLflow  = "mlflow"
)

// Bodies of the one-row scoring request, distance 3 and hour 10.
const (
	bodyAzureML = `{"input_data": {"columns": ["distance", "hour"], "index": [0], "data": [[3.0, 10.0]]}}`
	bodyMLflow  = `{"dataframe_split": {"columns": ["distance", "hour"], "data": [[3.0, 10.0]]}}`
)

type options struct {
	url         string
	key         string
	format      string
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	want        float64
	tolerance   float64
	timeout     time.Duration
	metrics     string
	token       string
	histogram   string
	labels      string
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "", "scoring URL (required)")
	flag.StringVar(&o.key, "key", "", "endpoint key, sent as `Authorization: Bearer KEY` (none when empty)")
	flag.StringVar(&o.format, "format", formatAzureML, "request body: azureml (input_data) or mlflow (dataframe_split)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured run time")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before the run, to open connections and warm the server")
	flag.IntVar(&o.concurrency, "concurrency", 1, "concurrent workers, each with at most one request in flight")
	flag.Float64Var(&o.want, "want", 12, "the prediction every answer must carry")
	flag.Float64Var(&o.tolerance, "tolerance", 1e-9, "how far an answer may be from -want")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Second, "per-request timeout")
	flag.StringVar(&o.metrics, "metrics", "", "the server's Prometheus /metrics URL (optional)")
	flag.StringVar(&o.token, "metrics-token", "", "bearer token for -metrics: the server shows endpoint series only to a caller allowed to read metrics")
	flag.StringVar(&o.histogram, "histogram", "wharf_endpoint_request_duration_seconds", "histogram to read from -metrics")
	flag.StringVar(&o.labels, "labels", "", `only series whose labels contain this text, e.g. endpoint="ep-native"`)
	flag.Parse()

	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "serveload:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	var body []byte
	switch {
	case o.url == "":
		return errors.New("-url is required")
	case o.concurrency < 1:
		return errors.New("-concurrency must be at least 1")
	case o.duration <= 0:
		return errors.New("-duration must be positive")
	case o.format == formatAzureML:
		body = []byte(bodyAzureML)
	case o.format == formatMLflow:
		body = []byte(bodyMLflow)
	default:
		return fmt.Errorf("-format %q: want azureml or mlflow", o.format)
	}

	// One transport with an idle pool larger than the worker count, so
	// that every worker keeps its connection and no run measures TCP
	// handshakes.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = o.concurrency * 2
	tr.MaxIdleConnsPerHost = o.concurrency * 2
	tr.DisableCompression = true
	client := &http.Client{Transport: tr, Timeout: o.timeout}
	defer tr.CloseIdleConnections()

	ctx := context.Background()
	l := &loader{client: client, url: o.url, key: o.key, body: body, want: o.want, tolerance: o.tolerance}
	// One request first: a server that cannot answer is a failed run, not
	// a column of errors.
	if oc := l.do(ctx); oc.err != nil {
		return fmt.Errorf("first request: %w", oc.err)
	}
	if o.warmup > 0 {
		l.drive(ctx, o.concurrency, o.warmup)
	}
	var before histogram
	if o.metrics != "" {
		h, err := scrape(ctx, client, o.metrics, o.token, o.histogram, o.labels)
		if err != nil {
			return err
		}
		before = h
	}
	res := l.drive(ctx, o.concurrency, o.duration)
	rep := res.report(o.concurrency)
	if o.metrics != "" {
		after, err := scrape(ctx, client, o.metrics, o.token, o.histogram, o.labels)
		if err != nil {
			return err
		}
		d := after.minus(before)
		if d.count == 0 {
			return fmt.Errorf("%s: no %s observations with labels %q during the run", o.metrics, o.histogram, o.labels)
		}
		rep.ServerRequests = int(d.count)
		rep.ServerMeanMs = loadstat.Round(d.sum/d.count*1000, 4)
		rep.ServerP50Ms = loadstat.Round(d.quantile(0.50)*1000, 4)
		rep.ServerP99Ms = loadstat.Round(d.quantile(0.99)*1000, 4)
	}
	for _, k := range loadstat.SortedKeys(rep.ErrorKinds) {
		fmt.Fprintf(os.Stderr, "serveload: %d x %s (first: %s)\n", rep.ErrorKinds[k], k, res.errorSample[k])
	}
	line, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	fmt.Println(string(line))
	return nil
}

// loader issues the benchmark's requests.
type loader struct {
	client    *http.Client
	url       string
	key       string
	body      []byte
	want      float64
	tolerance float64
}

// outcome is what one request came to: err is nil for a right answer; kind
// groups failures for the report.
type outcome struct {
	err  error
	kind string
}

// do sends one scoring request and checks the answer.
func (l *loader) do(ctx context.Context) outcome {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, bytes.NewReader(l.body))
	if err != nil {
		return outcome{err: err, kind: "request"}
	}
	req.Header.Set("Content-Type", "application/json")
	if l.key != "" {
		req.Header.Set("Authorization", "Bearer "+l.key)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return outcome{err: err, kind: "transport"}
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return outcome{err: err, kind: "read body"}
	}
	if resp.StatusCode != http.StatusOK {
		return outcome{
			err:  fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(answer[:min(len(answer), 512)]))),
			kind: "status " + strconv.Itoa(resp.StatusCode),
		}
	}
	if err := checkAnswer(answer, l.want, l.tolerance); err != nil {
		return outcome{err: err, kind: "wrong answer"}
	}
	return outcome{}
}

// checkAnswer says whether a scoring answer's first number is want.
func checkAnswer(answer []byte, want, tolerance float64) error {
	var v any
	if err := json.Unmarshal(answer, &v); err != nil {
		return fmt.Errorf("answer %.200q: %w", answer, err)
	}
	got, ok := firstNumber(v)
	if !ok || math.Abs(got-want) > tolerance {
		return fmt.Errorf("answer %.200q, want %v", answer, want)
	}
	return nil
}

// firstNumber finds the prediction in the answers scoring servers give: a
// bare list (`[12.0]`), a list of rows, or MLflow's `{"predictions": ...}`.
func firstNumber(v any) (float64, bool) {
	switch t := v.(type) {
	case float64:
		return t, true
	case []any:
		if len(t) > 0 {
			return firstNumber(t[0])
		}
	case map[string]any:
		if p, ok := t["predictions"]; ok {
			return firstNumber(p)
		}
	}
	return 0, false
}

// workerResult is one worker's tally; workers never share one, so the hot
// path takes no lock.
type workerResult struct {
	latencies   []time.Duration // right answers only
	errors      int
	errorKinds  map[string]int
	errorSample map[string]string
}

// drive runs concurrency workers until d has passed and merges their
// tallies. A worker starts no request after the deadline; the elapsed time
// runs until the last in-flight request has finished, so rps is honest.
func (l *loader) drive(ctx context.Context, concurrency int, d time.Duration) *runResult {
	results := make([]workerResult, concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[w] = l.work(ctx, deadline)
		}()
	}
	wg.Wait()
	out := &runResult{elapsed: time.Since(start), errorKinds: map[string]int{}, errorSample: map[string]string{}}
	for _, r := range results {
		out.latencies = append(out.latencies, r.latencies...)
		out.errors += r.errors
		for k, c := range r.errorKinds {
			out.errorKinds[k] += c
			if _, ok := out.errorSample[k]; !ok {
				out.errorSample[k] = r.errorSample[k]
			}
		}
	}
	return out
}

func (l *loader) work(ctx context.Context, deadline time.Time) workerResult {
	r := workerResult{latencies: make([]time.Duration, 0, 8192)}
	for {
		t0 := time.Now()
		if !t0.Before(deadline) {
			return r
		}
		o := l.do(ctx)
		lat := time.Since(t0)
		if o.err == nil {
			r.latencies = append(r.latencies, lat)
			continue
		}
		r.errors++
		if r.errorKinds == nil {
			r.errorKinds, r.errorSample = map[string]int{}, map[string]string{}
		}
		if r.errorKinds[o.kind] == 0 {
			r.errorSample[o.kind] = o.err.Error()
		}
		r.errorKinds[o.kind]++
	}
}

// runResult is the merged tally of one timed run.
type runResult struct {
	elapsed     time.Duration
	latencies   []time.Duration
	errors      int
	errorKinds  map[string]int
	errorSample map[string]string
}

// report is the JSON line serveload prints. The server_ fields come from
// the server's histogram and are present only with -metrics.
type report struct {
	Concurrency    int            `json:"concurrency"`
	Requests       int            `json:"requests"`
	Errors         int            `json:"errors"`
	Seconds        float64        `json:"seconds"`
	RPS            float64        `json:"rps"`
	P50ms          float64        `json:"p50_ms"`
	P99ms          float64        `json:"p99_ms"`
	ServerRequests int            `json:"server_requests,omitempty"`
	ServerMeanMs   float64        `json:"server_mean_ms,omitempty"`
	ServerP50Ms    float64        `json:"server_p50_ms,omitempty"`
	ServerP99Ms    float64        `json:"server_p99_ms,omitempty"`
	ErrorKinds     map[string]int `json:"error_kinds,omitempty"`
}

// report summarises the run. Requests counts right answers and errors
// alike; percentiles are over right answers only, so a burst of fast
// failures cannot flatter them.
func (r *runResult) report(concurrency int) *report {
	sort.Slice(r.latencies, func(i, j int) bool { return r.latencies[i] < r.latencies[j] })
	total := len(r.latencies) + r.errors
	secs := r.elapsed.Seconds()
	rep := &report{
		Concurrency: concurrency,
		Requests:    total,
		Errors:      r.errors,
		Seconds:     loadstat.Round(secs, 3),
		P50ms:       loadstat.Round(loadstat.Ms(loadstat.Percentile(r.latencies, 0.50)), 3),
		P99ms:       loadstat.Round(loadstat.Ms(loadstat.Percentile(r.latencies, 0.99)), 3),
	}
	if secs > 0 {
		rep.RPS = loadstat.Round(float64(total)/secs, 1)
	}
	if r.errors > 0 {
		rep.ErrorKinds = r.errorKinds
	}
	return rep
}

// histogram is a Prometheus histogram summed over the series read: the
// cumulative count at or below each finite upper bound, the total count
// (the +Inf bucket) and the sum of the observations.
type histogram struct {
	bounds []float64 // ascending
	counts []float64 // cumulative, one per bound
	count  float64
	sum    float64
}

// scrape reads name's histogram from a Prometheus text exposition at url,
// with token as the bearer credential when it is not empty.
func scrape(ctx context.Context, client *http.Client, url, token, name, labels string) (histogram, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return histogram{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return histogram{}, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return histogram{}, fmt.Errorf("metrics: %s", resp.Status)
	}
	return parseHistogram(resp.Body, name, labels)
}

// parseHistogram sums name's _bucket, _sum and _count samples over the
// series whose label text contains labels.
func parseHistogram(r io.Reader, name, labels string) (histogram, error) {
	byBound := map[float64]float64{}
	var h histogram
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"_") {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		metric, lbl, _ := strings.Cut(series, "{")
		if !strings.Contains(lbl, labels) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return histogram{}, fmt.Errorf("metrics: %q: %w", line, err)
		}
		switch strings.TrimPrefix(metric, name) {
		case "_sum":
			h.sum += v
		case "_count":
			h.count += v
		case "_bucket":
			le, err := labelValue(lbl, "le")
			if err != nil {
				return histogram{}, fmt.Errorf("metrics: %q: %w", line, err)
			}
			if b, err := strconv.ParseFloat(le, 64); err == nil && !math.IsInf(b, 1) {
				byBound[b] += v
			}
		}
	}
	if err := sc.Err(); err != nil {
		return histogram{}, fmt.Errorf("metrics: %w", err)
	}
	for b := range byBound {
		h.bounds = append(h.bounds, b)
	}
	sort.Float64s(h.bounds)
	for _, b := range h.bounds {
		h.counts = append(h.counts, byBound[b])
	}
	return h, nil
}

// labelValue finds label name's value in a series' label text, e.g.
// `endpoint="x",le="0.5"}` (values without commas, as Wharf's are).
func labelValue(lbl, name string) (string, error) {
	for _, part := range strings.Split(strings.TrimSuffix(lbl, "}"), ",") {
		if v, ok := strings.CutPrefix(part, name+`="`); ok {
			return strings.TrimSuffix(v, `"`), nil
		}
	}
	return "", fmt.Errorf("no label %s", name)
}

// minus is h less an earlier reading of the same histogram: what was
// observed in between. A bound the earlier reading lacks counts from 0.
func (h histogram) minus(earlier histogram) histogram {
	d := histogram{count: h.count - earlier.count, sum: h.sum - earlier.sum}
	prev := map[float64]float64{}
	for i, b := range earlier.bounds {
		prev[b] = earlier.counts[i]
	}
	for i, b := range h.bounds {
		d.bounds = append(d.bounds, b)
		d.counts = append(d.counts, h.counts[i]-prev[b])
	}
	return d
}

// quantile estimates the q-quantile as Prometheus' histogram_quantile
// does: find the bucket the rank q*count falls in and interpolate linearly
// between its lower and upper bound (the first bucket starts at 0). A rank
// beyond the last finite bound gives that bound.
func (h histogram) quantile(q float64) float64 {
	if h.count <= 0 || len(h.bounds) == 0 {
		return math.NaN()
	}
	rank := q * h.count
	lower, below := 0.0, 0.0
	for i, b := range h.bounds {
		if h.counts[i] >= rank {
			in := h.counts[i] - below
			if in <= 0 {
				return b
			}
			return lower + (b-lower)*(rank-below)/in
		}
		lower, below = b, h.counts[i]
	}
	return h.bounds[len(h.bounds)-1]
}
