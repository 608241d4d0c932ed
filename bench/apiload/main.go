// Command apiload drives a running Wharf server's compute API at a fixed
// concurrency for a fixed time and prints one JSON line of throughput and
// latency. bench/api-store.sh runs it against each metadata store.
//
//	apiload -creds DIR/owner-credentials.json -mix read -concurrency 16 -duration 10s
//
// Mixes:
//
//	write  PUT of a compute (one write transaction, plus the audit record)
//	read   GET of one of the pre-created computes
//	mixed  four reads to every write, interleaved in each worker
//
// Every request goes over one shared keep-alive client, so the figures
// measure the server and its store rather than TCP set-up. Any response that
// is not 2xx, and any transport failure, counts as an error; their kinds are
// printed on stderr and in the JSON line.
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
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wharfml/wharf/bench/internal/loadstat"
)

// Mix names accepted by -mix.
const (
	mixWrite = "write"
	mixRead  = "read"
	mixMixed = "mixed"
)

// writeEvery makes every writeEvery-th request of a mixed worker a write,
// so the mixed load is exactly 20% writes without a random source shared
// between workers.
const writeEvery = 5

// writeNames bounds the computes each worker rewrites, so the table stays
// small however long the run: after the first pass every write is an
// update of an existing row.
const writeNames = 32

type options struct {
	url         string
	creds       string
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	mix         string
	workspace   string
	computes    int
	timeout     time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "", "server base URL (default: serverUrl from -creds)")
	flag.StringVar(&o.creds, "creds", "", "owner-credentials.json written by `wharf server` (required)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured run time")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load before the run, to open connections and warm caches")
	flag.IntVar(&o.concurrency, "concurrency", 1, "concurrent workers, each with at most one request in flight")
	flag.StringVar(&o.mix, "mix", mixRead, "write, read or mixed")
	flag.StringVar(&o.workspace, "workspace", "bench", "workspace to create and load")
	flag.IntVar(&o.computes, "computes", 100, "computes created before the run for reads to fetch")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Second, "per-request timeout")
	flag.Parse()

	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "apiload:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	switch {
	case o.creds == "":
		return errors.New("-creds is required")
	case o.concurrency < 1:
		return errors.New("-concurrency must be at least 1")
	case o.duration <= 0:
		return errors.New("-duration must be positive")
	case o.computes < 1:
		return errors.New("-computes must be at least 1")
	case o.mix != mixWrite && o.mix != mixRead && o.mix != mixMixed:
		return fmt.Errorf("-mix %q: want write, read or mixed", o.mix)
	}
	creds, err := readCreds(o.creds)
	if err != nil {
		return err
	}
	base := o.url
	if base == "" {
		base = creds.ServerURL
	}
	if base == "" {
		return errors.New("no -url and no serverUrl in the credentials")
	}
	base = strings.TrimRight(base, "/")

	// One transport for everything, with an idle pool larger than the
	// worker count: a smaller pool would close and reopen connections
	// between requests and the run would measure TCP handshakes.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = o.concurrency * 2
	tr.MaxIdleConnsPerHost = o.concurrency * 2
	tr.DisableCompression = true
	client := &http.Client{Transport: tr, Timeout: o.timeout}
	defer tr.CloseIdleConnections()

	ctx := context.Background()
	token, err := fetchToken(ctx, client, base, creds)
	if err != nil {
		return err
	}
	l := &loader{client: client, base: base, token: token, workspace: o.workspace}
	if err := l.setup(ctx, o.computes); err != nil {
		return err
	}
	l.readNames = o.computes

	if o.warmup > 0 {
		l.drive(ctx, o.mix, o.concurrency, o.warmup)
	}
	res := l.drive(ctx, o.mix, o.concurrency, o.duration)
	rep := res.report(o.mix, o.concurrency)
	for _, k := range rep.sortedErrorKinds() {
		fmt.Fprintf(os.Stderr, "apiload: %d x %s (first: %s)\n", rep.ErrorKinds[k], k, res.errorSample[k])
	}
	line, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	fmt.Println(string(line))
	return nil
}

// credentials is the part of owner-credentials.json the load needs.
type credentials struct {
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
	TenantID     string `json:"tenantId"`
	ServerURL    string `json:"serverUrl"`
}

func readCreds(path string) (*credentials, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c credentials
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		return nil, fmt.Errorf("%s: no clientId or clientSecret", path)
	}
	return &c, nil
}

// fetchToken runs the client-credentials grant once; a token lives an hour,
// far longer than any run.
func fetchToken(ctx context.Context, client *http.Client, base string, c *credentials) (string, error) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {c.ClientID},
		"client_secret": {c.ClientSecret},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return "", fmt.Errorf("token: no access_token in %q", body)
	}
	return tr.AccessToken, nil
}

// loader issues the benchmark's requests.
type loader struct {
	client    *http.Client
	base      string
	token     string
	workspace string
	readNames int
}

func readName(i int) string { return "bench-r" + strconv.Itoa(i) }

func writeName(worker, i int) string {
	return "bench-w" + strconv.Itoa(worker) + "-" + strconv.Itoa(i%writeNames)
}

// computeBody is a valid compute whose max_instances varies, so that an
// update really changes the row.
func computeBody(i int) []byte {
	return []byte(`{"type":"amlcompute","max_instances":` + strconv.Itoa(1+i%8) + `}`)
}

// setup creates the workspace and the computes that reads fetch. Both are
// idempotent PUTs, so rerunning against the same server is harmless.
func (l *loader) setup(ctx context.Context, n int) error {
	if o := l.do(ctx, http.MethodPut, "/api/v1/workspaces/"+l.workspace, []byte(`{}`)); o.err != nil {
		return fmt.Errorf("create workspace: %w", o.err)
	}
	for i := range n {
		p := "/api/v1/workspaces/" + l.workspace + "/computes/" + readName(i)
		if o := l.do(ctx, http.MethodPut, p, computeBody(i)); o.err != nil {
			return fmt.Errorf("create compute: %w", o.err)
		}
	}
	return nil
}

// outcome is what one request came to: err is nil for a 2xx; kind groups
// failures for the report.
type outcome struct {
	err  error
	kind string
}

// do sends one request and drains the body, which the transport needs to
// reuse the connection.
func (l *loader) do(ctx context.Context, method, path string, body []byte) outcome {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, l.base+path, rd)
	if err != nil {
		return outcome{err: err, kind: method + " request"}
	}
	req.Header.Set("Authorization", "Bearer "+l.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return outcome{err: err, kind: method + " transport"}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, err = io.Copy(io.Discard, resp.Body)
		if err != nil {
			return outcome{err: err, kind: method + " read body"}
		}
		return outcome{}
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return outcome{
		err:  fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(msg))),
		kind: method + " " + strconv.Itoa(resp.StatusCode),
	}
}

// workerResult is one worker's tally; workers never share one, so the hot
// path takes no lock.
type workerResult struct {
	latencies   []time.Duration // successful requests only
	errors      int
	errorKinds  map[string]int
	errorSample map[string]string
}

// drive runs concurrency workers until d has passed and merges their
// tallies. A worker starts no request after the deadline; the elapsed time
// runs until the last in-flight request has finished, so rps is honest.
func (l *loader) drive(ctx context.Context, mix string, concurrency int, d time.Duration) *runResult {
	results := make([]workerResult, concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[w] = l.work(ctx, mix, w, concurrency, deadline)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	out := &runResult{elapsed: elapsed, errorKinds: map[string]int{}, errorSample: map[string]string{}}
	n := 0
	for _, r := range results {
		n += len(r.latencies)
	}
	out.latencies = make([]time.Duration, 0, n)
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

func (l *loader) work(ctx context.Context, mix string, w, concurrency int, deadline time.Time) workerResult {
	r := workerResult{latencies: make([]time.Duration, 0, 4096)}
	computes := "/api/v1/workspaces/" + l.workspace + "/computes/"
	// Workers start at different computes so that they do not all read
	// the same row in lockstep.
	next := w * l.readNames / concurrency
	for i := 0; ; i++ {
		t0 := time.Now()
		if !t0.Before(deadline) {
			return r
		}
		var o outcome
		if isWrite(mix, i) {
			o = l.do(ctx, http.MethodPut, computes+writeName(w, i), computeBody(i))
		} else {
			o = l.do(ctx, http.MethodGet, computes+readName(next), nil)
			next = (next + 1) % l.readNames
		}
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

// isWrite says whether a worker's i-th request is a write.
func isWrite(mix string, i int) bool {
	return mix == mixWrite || (mix == mixMixed && i%writeEvery == writeEvery-1)
}

// runResult is the merged tally of one timed run.
type runResult struct {
	elapsed     time.Duration
	latencies   []time.Duration
	errors      int
	errorKinds  map[string]int
	errorSample map[string]string
}

// report is the JSON line apiload prints.
type report struct {
	Mix         string         `json:"mix"`
	Concurrency int            `json:"concurrency"`
	Requests    int            `json:"requests"`
	Errors      int            `json:"errors"`
	Seconds     float64        `json:"seconds"`
	RPS         float64        `json:"rps"`
	P50ms       float64        `json:"p50_ms"`
	P99ms       float64        `json:"p99_ms"`
	ErrorKinds  map[string]int `json:"error_kinds,omitempty"`
}

func (rep *report) sortedErrorKinds() []string { return loadstat.SortedKeys(rep.ErrorKinds) }

// report summarises the run. Requests counts successes and errors alike;
// percentiles are over successful requests only, so a burst of fast
// failures cannot flatter them.
func (r *runResult) report(mix string, concurrency int) *report {
	sort.Slice(r.latencies, func(i, j int) bool { return r.latencies[i] < r.latencies[j] })
	total := len(r.latencies) + r.errors
	secs := r.elapsed.Seconds()
	rep := &report{
		Mix:         mix,
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
