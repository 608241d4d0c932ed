// Command trackload drives a server that speaks the MLflow tracking REST API
// (Wharf, MLflow's own tracking server, FastTrackML) and prints one JSON line
// per scenario. bench/tracking.sh runs it against each server in turn.
//
//	trackload -url http://127.0.0.1:5000 -scenario ingest -duration 15s
//	trackload -url http://127.0.0.1:8080/mlflow/v1.0/workspaces/bench -token T -scenario search
//
// -url is the prefix that /api/2.0/mlflow/... is appended to; -token, when
// set, goes out as `Authorization: Bearer`.
//
// Scenarios:
//
//	ingest     -concurrency workers, each with its own run, send runs/log-batch
//	           requests of -batch metrics (-keys keys x batch/keys steps, the
//	           steps advancing with every request) for -duration
//	logmetric  one worker sends single runs/log-metric calls for -duration
//	search     seeds -runs runs into one experiment (runs/create, then one
//	           runs/log-batch with param alpha and metric rmse), at most
//	           -seed-max long, then times -reps runs/search calls with
//	           `metrics.rmse < 0.5 and params.alpha = '0.1'`, max_results 100,
//	           order_by metrics.rmse ASC, checking every answer
//	traces     -concurrency workers log traces as the mlflow 3.x client does
//	           for a finished trace: POST /api/3.0/mlflow/traces (the trace's
//	           info), then PUT traces.json (its spans) below the artifact
//	           location the answer names, through the artifact proxy; one
//	           trace is both requests, for -duration
//
// Every request goes over one keep-alive client; each worker has one
// request in flight at a time (closed loop). Any non-2xx answer, transport
// failure or (for search) wrong answer is an error; error kinds go to stderr
// and into the JSON line.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wharfml/wharf/bench/internal/loadstat"
)

// Scenario names accepted by -scenario.
const (
	scIngest    = "ingest"
	scLogMetric = "logmetric"
	scSearch    = "search"
	scTraces    = "traces"
)

type options struct {
	url         string
	token       string
	scenario    string
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	batch       int
	keys        int
	runs        int
	seedMax     time.Duration
	seedWorkers int
	reps        int
	timeout     time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "", "prefix of /api/2.0/mlflow (required), e.g. http://127.0.0.1:5000")
	flag.StringVar(&o.token, "token", "", "bearer token sent with every request (optional)")
	flag.StringVar(&o.scenario, "scenario", scIngest, "ingest, logmetric, search or traces")
	flag.DurationVar(&o.duration, "duration", 15*time.Second, "measured run time (ingest, logmetric, traces)")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before the measured run (ingest, logmetric, traces)")
	flag.IntVar(&o.concurrency, "concurrency", 4, "ingest workers, each with its own run; traces workers")
	flag.IntVar(&o.batch, "batch", 1000, "metrics per log-batch request (ingest)")
	flag.IntVar(&o.keys, "keys", 10, "distinct metric keys per log-batch request; the rest are steps (ingest)")
	flag.IntVar(&o.runs, "runs", 100000, "runs to seed (search)")
	flag.DurationVar(&o.seedMax, "seed-max", 10*time.Minute, "stop seeding after this long and search what was seeded (search)")
	flag.IntVar(&o.seedWorkers, "seed-workers", 8, "concurrent seeding workers (search)")
	flag.IntVar(&o.reps, "reps", 20, "timed searches (search)")
	flag.DurationVar(&o.timeout, "timeout", 2*time.Minute, "per-request timeout")
	flag.Parse()

	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "trackload:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	switch {
	case o.url == "":
		return errors.New("-url is required")
	case o.duration <= 0 && o.scenario != scSearch:
		return errors.New("-duration must be positive")
	case o.concurrency < 1:
		return errors.New("-concurrency must be at least 1")
	case o.batch < 1 || o.keys < 1 || o.batch%o.keys != 0:
		return errors.New("-batch and -keys must be positive and -keys must divide -batch")
	case o.runs < 1 || o.reps < 1 || o.seedWorkers < 1:
		return errors.New("-runs, -reps and -seed-workers must be at least 1")
	}
	workers := o.concurrency
	if o.scenario == scSearch {
		workers = o.seedWorkers
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = workers * 2
	tr.MaxIdleConnsPerHost = workers * 2
	tr.DisableCompression = true
	defer tr.CloseIdleConnections()
	c := &client{
		http:  &http.Client{Transport: tr, Timeout: o.timeout},
		base:  strings.TrimRight(o.url, "/") + "/api/2.0/mlflow/",
		root:  strings.TrimRight(o.url, "/"),
		token: o.token,
	}
	ctx := context.Background()

	var rep any
	var err error
	switch o.scenario {
	case scIngest:
		rep, err = ingest(ctx, c, o)
	case scLogMetric:
		rep, err = logMetric(ctx, c, o)
	case scSearch:
		rep, err = search(ctx, c, o)
	case scTraces:
		rep, err = traces(ctx, c, o)
	default:
		return fmt.Errorf("-scenario %q: want ingest, logmetric, search or traces", o.scenario)
	}
	if err != nil {
		return err
	}
	line, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	fmt.Println(string(line))
	return nil
}

// client sends MLflow RPCs.
type client struct {
	http  *http.Client
	base  string // ends in /api/2.0/mlflow/
	root  string // the -url, without a trailing slash
	token string
}

// outcome is what one request came to: err is nil for a 2xx; kind groups
// failures for the report.
type outcome struct {
	err  error
	kind string
}

// post sends one JSON RPC. With out non-nil the answer is decoded into it;
// otherwise the body is drained so the connection can be reused.
func (c *client) post(ctx context.Context, rpc string, body []byte, out any) outcome {
	return c.send(ctx, http.MethodPost, c.base+rpc, rpc, "application/json", body, out)
}

// send sends one request to url; what names it in error kinds.
func (c *client) send(ctx context.Context, method, url, what, contentType string, body []byte, out any) outcome {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return outcome{err: err, kind: what + " request"}
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return outcome{err: err, kind: what + " transport"}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return outcome{
			err:  fmt.Errorf("%s %s: %s: %s", method, what, resp.Status, strings.TrimSpace(string(msg))),
			kind: what + " " + strconv.Itoa(resp.StatusCode),
		}
	}
	if out == nil {
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return outcome{err: err, kind: what + " read body"}
		}
		return outcome{}
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return outcome{err: fmt.Errorf("%s %s: decoding the answer: %w", method, what, err), kind: what + " bad body"}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return outcome{}
}

// createExperiment creates an experiment with a name unique to this
// process, so reruns against one server never collide.
func (c *client) createExperiment(ctx context.Context, prefix string) (string, error) {
	name := fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), time.Now().UnixNano())
	body, _ := json.Marshal(map[string]string{"name": name})
	var out struct {
		ExperimentID json.RawMessage `json:"experiment_id"`
	}
	if o := c.post(ctx, "experiments/create", body, &out); o.err != nil {
		return "", fmt.Errorf("create experiment: %w", o.err)
	}
	id := jsonScalar(out.ExperimentID)
	if id == "" {
		return "", errors.New("create experiment: no experiment_id in the answer")
	}
	return id, nil
}

// createRun creates a run and returns its ID.
func (c *client) createRun(ctx context.Context, expID, name string, startMS int64) (string, outcome) {
	body := appendCreateRun(nil, expID, name, startMS)
	var out struct {
		Run struct {
			Info struct {
				RunID   string `json:"run_id"`
				RunUUID string `json:"run_uuid"`
			} `json:"info"`
		} `json:"run"`
	}
	if o := c.post(ctx, "runs/create", body, &out); o.err != nil {
		return "", o
	}
	id := out.Run.Info.RunID
	if id == "" {
		id = out.Run.Info.RunUUID
	}
	if id == "" {
		return "", outcome{err: errors.New("runs/create: no run_id in the answer"), kind: "runs/create bad body"}
	}
	return id, outcome{}
}

// jsonScalar turns a JSON string or number into its text.
func jsonScalar(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// tally is one worker's count; workers never share one, so the hot path
// takes no lock.
type tally struct {
	latencies   []time.Duration // successful requests only
	errors      int
	errorKinds  map[string]int
	errorSample map[string]string
}

func (t *tally) add(lat time.Duration, o outcome) {
	if o.err == nil {
		t.latencies = append(t.latencies, lat)
		return
	}
	t.errors++
	if t.errorKinds == nil {
		t.errorKinds, t.errorSample = map[string]int{}, map[string]string{}
	}
	if t.errorKinds[o.kind] == 0 {
		t.errorSample[o.kind] = o.err.Error()
	}
	t.errorKinds[o.kind]++
}

func merge(ts []tally) tally {
	var m tally
	n := 0
	for _, t := range ts {
		n += len(t.latencies)
	}
	m.latencies = make([]time.Duration, 0, n)
	for _, t := range ts {
		m.latencies = append(m.latencies, t.latencies...)
		m.errors += t.errors
		for k, c := range t.errorKinds {
			if m.errorKinds == nil {
				m.errorKinds, m.errorSample = map[string]int{}, map[string]string{}
			}
			m.errorKinds[k] += c
			if _, ok := m.errorSample[k]; !ok {
				m.errorSample[k] = t.errorSample[k]
			}
		}
	}
	return m
}

// printErrors writes one stderr line per error kind with its first message.
func printErrors(t tally) {
	for _, k := range loadstat.SortedKeys(t.errorKinds) {
		fmt.Fprintf(os.Stderr, "trackload: %d x %s (first: %s)\n", t.errorKinds[k], k, t.errorSample[k])
	}
}

// loadReport is the JSON line of the ingest and logmetric scenarios.
type loadReport struct {
	Scenario    string         `json:"scenario"`
	Concurrency int            `json:"concurrency"`
	Batch       int            `json:"batch"`
	Requests    int            `json:"requests"`
	Errors      int            `json:"errors"`
	Seconds     float64        `json:"seconds"`
	RPS         float64        `json:"rps"`
	MetricsPS   float64        `json:"metrics_per_s"`
	P50ms       float64        `json:"p50_ms"`
	P99ms       float64        `json:"p99_ms"`
	ErrorKinds  map[string]int `json:"error_kinds,omitempty"`
}

// newLoadReport summarises a timed run: requests count successes and errors
// alike, metrics/s counts only metrics the server accepted, and the
// percentiles are over successful requests, so fast failures flatter
// nothing.
func newLoadReport(scenario string, concurrency, batch int, t tally, elapsed time.Duration) *loadReport {
	sortDurations(t.latencies)
	secs := elapsed.Seconds()
	rep := &loadReport{
		Scenario:    scenario,
		Concurrency: concurrency,
		Batch:       batch,
		Requests:    len(t.latencies) + t.errors,
		Errors:      t.errors,
		Seconds:     loadstat.Round(secs, 3),
		P50ms:       loadstat.Round(loadstat.Ms(loadstat.Percentile(t.latencies, 0.50)), 3),
		P99ms:       loadstat.Round(loadstat.Ms(loadstat.Percentile(t.latencies, 0.99)), 3),
	}
	if secs > 0 {
		rep.RPS = loadstat.Round(float64(rep.Requests)/secs, 1)
		rep.MetricsPS = loadstat.Round(float64(len(t.latencies)*batch)/secs, 0)
	}
	if t.errors > 0 {
		rep.ErrorKinds = t.errorKinds
	}
	return rep
}

// ingest: each worker logs batches of metrics into its own run.
func ingest(ctx context.Context, c *client, o options) (*loadReport, error) {
	exp, err := c.createExperiment(ctx, "trackload-ingest")
	if err != nil {
		return nil, err
	}
	start := time.Now().UnixMilli()
	runs := make([]string, o.concurrency)
	for w := range runs {
		id, oc := c.createRun(ctx, exp, "ingest-"+strconv.Itoa(w), start)
		if oc.err != nil {
			return nil, fmt.Errorf("create run: %w", oc.err)
		}
		runs[w] = id
	}
	// Each worker's request counter carries over from the warm-up, so the
	// measured requests log new steps rather than repeat the warm-up's.
	seq := make([]int, o.concurrency)
	drive := func(d time.Duration) (tally, time.Duration) {
		ts := make([]tally, o.concurrency)
		var wg sync.WaitGroup
		t0 := time.Now()
		deadline := t0.Add(d)
		for w := range o.concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t := tally{latencies: make([]time.Duration, 0, 1024)}
				var buf []byte
				for {
					now := time.Now()
					if !now.Before(deadline) {
						break
					}
					buf = appendMetricBatch(buf[:0], runs[w], o.keys, o.batch, seq[w], start)
					seq[w]++
					r0 := time.Now()
					oc := c.post(ctx, "runs/log-batch", buf, nil)
					t.add(time.Since(r0), oc)
				}
				ts[w] = t
			}()
		}
		wg.Wait()
		return merge(ts), time.Since(t0)
	}
	if o.warmup > 0 {
		if t, _ := drive(o.warmup); t.errors > 0 {
			printErrors(t)
			return nil, fmt.Errorf("warm-up: %d errors", t.errors)
		}
	}
	t, elapsed := drive(o.duration)
	printErrors(t)
	return newLoadReport(scIngest, o.concurrency, o.batch, t, elapsed), nil
}

// logMetric: one worker, one metric per request.
func logMetric(ctx context.Context, c *client, o options) (*loadReport, error) {
	exp, err := c.createExperiment(ctx, "trackload-logmetric")
	if err != nil {
		return nil, err
	}
	start := time.Now().UnixMilli()
	id, oc := c.createRun(ctx, exp, "log-metric", start)
	if oc.err != nil {
		return nil, fmt.Errorf("create run: %w", oc.err)
	}
	step := 0
	drive := func(d time.Duration) (tally, time.Duration) {
		t := tally{latencies: make([]time.Duration, 0, 4096)}
		var buf []byte
		t0 := time.Now()
		deadline := t0.Add(d)
		for time.Now().Before(deadline) {
			buf = appendLogMetric(buf[:0], id, "loss", metricValue(0, step), start+int64(step), step)
			step++
			r0 := time.Now()
			oc := c.post(ctx, "runs/log-metric", buf, nil)
			t.add(time.Since(r0), oc)
		}
		return t, time.Since(t0)
	}
	if o.warmup > 0 {
		if t, _ := drive(o.warmup); t.errors > 0 {
			printErrors(t)
			return nil, fmt.Errorf("warm-up: %d errors", t.errors)
		}
	}
	t, elapsed := drive(o.duration)
	printErrors(t)
	return newLoadReport(scLogMetric, 1, 1, t, elapsed), nil
}

// searchReport is the JSON line of the search scenario.
type searchReport struct {
	Scenario      string         `json:"scenario"`
	RunsWanted    int            `json:"runs_wanted"`
	RunsSeeded    int            `json:"runs_seeded"`
	SeedCapped    bool           `json:"seed_capped"`
	SeedSeconds   float64        `json:"seed_seconds"`
	SeedRunsPS    float64        `json:"seed_runs_per_s"`
	SeedErrors    int            `json:"seed_errors"`
	Matching      int            `json:"matching"` // seeded runs the filter matches
	Returned      int            `json:"returned"` // runs per answer (max_results caps it)
	Reps          int            `json:"reps"`
	Errors        int            `json:"errors"`
	P50ms         float64        `json:"p50_ms"`
	P99ms         float64        `json:"p99_ms"`
	MinMS         float64        `json:"min_ms"`
	SeedErrorKind map[string]int `json:"seed_error_kinds,omitempty"`
	ErrorKinds    map[string]int `json:"error_kinds,omitempty"`
}

const (
	searchFilter     = "metrics.rmse < 0.5 and params.alpha = '0.1'"
	searchMaxResults = 100
)

// search seeds the experiment, then times the filtered, ordered search.
func search(ctx context.Context, c *client, o options) (*searchReport, error) {
	exp, err := c.createExperiment(ctx, "trackload-search")
	if err != nil {
		return nil, err
	}
	rep := &searchReport{Scenario: scSearch, RunsWanted: o.runs, Reps: o.reps}
	seeded, seedT, capped, secs := seed(ctx, c, exp, o)
	rep.RunsSeeded, rep.SeedCapped, rep.SeedErrors = len(seeded), capped, seedT.errors
	rep.SeedSeconds = loadstat.Round(secs, 1)
	if secs > 0 {
		rep.SeedRunsPS = loadstat.Round(float64(len(seeded))/secs, 1)
	}
	if seedT.errors > 0 {
		rep.SeedErrorKind = seedT.errorKinds
		printErrors(seedT)
	}
	fmt.Fprintf(os.Stderr, "trackload: seeded %d runs in %.1f s%s\n", len(seeded), secs,
		map[bool]string{true: " (stopped at -seed-max)", false: ""}[capped])
	if len(seeded) == 0 {
		return nil, errors.New("no run was seeded")
	}
	want := expectedSearch(seeded, searchMaxResults)
	rep.Matching = countMatching(seeded)

	body, _ := json.Marshal(map[string]any{
		"experiment_ids": []string{exp},
		"filter":         searchFilter,
		"max_results":    searchMaxResults,
		"order_by":       []string{"metrics.rmse ASC"},
		"run_view_type":  "ACTIVE_ONLY",
	})
	// One unmeasured search first, as a user's first page load would open
	// the database files and warm the server's caches.
	var t tally
	for i := -1; i < o.reps; i++ {
		var out searchAnswer
		r0 := time.Now()
		oc := c.post(ctx, "runs/search", body, &out)
		lat := time.Since(r0)
		if oc.err == nil {
			oc = checkSearch(&out, seeded, want)
		}
		if i < 0 {
			if oc.err != nil {
				fmt.Fprintf(os.Stderr, "trackload: warm-up search: %v\n", oc.err)
			}
			continue
		}
		if oc.err == nil {
			rep.Returned = len(out.Runs)
		}
		t.add(lat, oc)
	}
	printErrors(t)
	sortDurations(t.latencies)
	rep.Errors = t.errors
	rep.P50ms = loadstat.Round(loadstat.Ms(loadstat.Percentile(t.latencies, 0.50)), 3)
	rep.P99ms = loadstat.Round(loadstat.Ms(loadstat.Percentile(t.latencies, 0.99)), 3)
	if len(t.latencies) > 0 {
		rep.MinMS = loadstat.Round(loadstat.Ms(t.latencies[0]), 3)
	}
	if t.errors > 0 {
		rep.ErrorKinds = t.errorKinds
	}
	return rep, nil
}

// seed creates up to o.runs runs, each with param alpha and metric rmse,
// from o.seedWorkers workers until done or o.seedMax has passed. It
// returns the seeded runs by run ID with the index their values derive
// from.
func seed(ctx context.Context, c *client, exp string, o options) (map[string]int, tally, bool, float64) {
	var next atomic.Int64
	var capped atomic.Bool
	t0 := time.Now()
	deadline := t0.Add(o.seedMax)
	base := t0.UnixMilli()
	ids := make([]map[string]int, o.seedWorkers)
	ts := make([]tally, o.seedWorkers)
	var wg sync.WaitGroup
	var done atomic.Int64
	stopProgress := make(chan struct{})
	go func() { // a progress line every 30 s, so a long seeding is visibly alive
		tick := time.NewTicker(30 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-tick.C:
				n := done.Load()
				fmt.Fprintf(os.Stderr, "trackload: seeding: %d runs in %.0f s (%.0f runs/s)\n",
					n, time.Since(t0).Seconds(), float64(n)/time.Since(t0).Seconds())
			}
		}
	}()
	for w := range o.seedWorkers {
		ids[w] = map[string]int{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for {
				if !time.Now().Before(deadline) {
					capped.Store(true)
					return
				}
				i := int(next.Add(1) - 1)
				if i >= o.runs {
					return
				}
				r0 := time.Now()
				id, oc := c.createRun(ctx, exp, "seed-"+strconv.Itoa(i), base+int64(i))
				if oc.err != nil {
					ts[w].add(time.Since(r0), oc)
					continue
				}
				buf = appendSeedBatch(buf[:0], id, i, base+int64(i))
				oc = c.post(ctx, "runs/log-batch", buf, nil)
				ts[w].add(time.Since(r0), oc)
				if oc.err == nil {
					ids[w][id] = i
					done.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(stopProgress)
	secs := time.Since(t0).Seconds()
	all := make(map[string]int, o.runs)
	for _, m := range ids {
		for id, i := range m {
			all[id] = i
		}
	}
	return all, merge(ts), capped.Load(), secs
}

// searchAnswer is the part of a runs/search answer the check reads.
type searchAnswer struct {
	Runs []struct {
		Info struct {
			RunID   string `json:"run_id"`
			RunUUID string `json:"run_uuid"`
		} `json:"info"`
	} `json:"runs"`
}

// checkSearch compares an answer with the runs the filter must return, in
// order. Runs with equal rmse may come in either order, so the check is
// on the sequence of values and the set of run IDs per value.
func checkSearch(a *searchAnswer, seeded map[string]int, want []int) outcome {
	bad := func(format string, args ...any) outcome {
		return outcome{err: fmt.Errorf("runs/search: "+format, args...), kind: "runs/search wrong answer"}
	}
	if len(a.Runs) != len(want) {
		return bad("%d runs, want %d", len(a.Runs), len(want))
	}
	for k, r := range a.Runs {
		id := r.Info.RunID
		if id == "" {
			id = r.Info.RunUUID
		}
		i, ok := seeded[id]
		if !ok {
			return bad("run %q at position %d was not seeded", id, k)
		}
		if !matches(i) {
			return bad("run %q at position %d does not match the filter", id, k)
		}
		if rmse(i) != rmse(want[k]) {
			return bad("position %d has rmse %v, want %v (order)", k, rmse(i), rmse(want[k]))
		}
	}
	return outcome{}
}
