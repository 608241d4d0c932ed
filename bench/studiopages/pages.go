package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// call is one request the benchmark times.
type call struct {
	Name, Method, URL, Body string
	// Page marks an HTML page, whose weight counts what it loads.
	Page bool
}

// result is one call's measurement, one JSON line.
type result struct {
	Server string  `json:"server"`
	Call   string  `json:"call"`
	N      int     `json:"n"`
	P50ms  float64 `json:"p50_ms"`
	P95ms  float64 `json:"p95_ms"`
	Bytes  int     `json:"bytes"`
	Weight int     `json:"weight_bytes,omitempty"`
	// TimedOut says a call got no answer within the client's timeout;
	// the call is then measured no further.
	TimedOut float64 `json:"timed_out_s,omitempty"`
}

type timer struct {
	c       *http.Client
	token   string
	n, warm int
	server  string
}

func (t *timer) do(c call) ([]byte, error) {
	var body io.Reader
	if c.Body != "" {
		body = strings.NewReader(c.Body)
	}
	req, err := http.NewRequest(c.Method, c.URL, body)
	if err != nil {
		return nil, err
	}
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	if c.Body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := t.c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s %s: %d %.200s", c.Method, c.URL, resp.StatusCode, data)
	}
	return data, nil
}

var assetRE = regexp.MustCompile(`(?:src|href)="(/static/[^"]+)"`)

// measure times c n times after warm unmeasured calls, one at a time;
// p50 and p95 are nearest-rank over the sorted latencies.
func (t *timer) measure(c call) (*result, error) {
	var last []byte
	for range t.warm {
		if _, err := t.do(c); err != nil {
			return nil, err
		}
	}
	lat := make([]time.Duration, 0, t.n)
	for range t.n {
		start := time.Now()
		data, err := t.do(c)
		if err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(start))
		last = data
	}
	slices.Sort(lat)
	rank := func(p float64) float64 {
		i := int(p*float64(len(lat))+0.999999) - 1
		return float64(lat[max(i, 0)].Microseconds()) / 1000
	}
	r := &result{Server: t.server, Call: c.Name, N: t.n, P50ms: rank(0.50), P95ms: rank(0.95), Bytes: len(last)}
	if c.Page {
		u, _ := url.Parse(c.URL)
		r.Weight = len(last)
		for _, m := range assetRE.FindAllSubmatch(last, -1) {
			data, err := t.do(call{Method: "GET", URL: u.Scheme + "://" + u.Host + strings.ReplaceAll(string(m[1]), "&amp;", "&")})
			if err != nil {
				return nil, err
			}
			r.Weight += len(data)
		}
	}
	return r, nil
}

func (t *timer) run(calls []call) error {
	enc := json.NewEncoder(os.Stdout)
	for _, c := range calls {
		r, err := t.measure(c)
		var ue *url.Error
		if errors.As(err, &ue) && ue.Timeout() {
			r, err = &result{Server: t.server, Call: c.Name, TimedOut: t.c.Timeout.Seconds()}, nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", c.Name, err)
		}
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

func readSeeded(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.NewDecoder(bytes.NewReader(data)).Decode(v)
}

// pages times the studio's pages and data routes on a seeded Wharf.
func pages(args []string) error {
	fs := flag.NewFlagSet("pages", flag.ExitOnError)
	base := fs.String("url", "", "the server's URL")
	token := fs.String("token", "", "an owner's access token")
	seededPath := fs.String("seeded", "", "the seeder's JSON")
	n := fs.Int("n", 50, "measured calls per page")
	warm := fs.Int("warmup", 5, "unmeasured calls first")
	_ = fs.Parse(args)
	var s seeded
	if err := readSeeded(*seededPath, &s); err != nil {
		return err
	}
	ws := *base + "/workspaces/" + s.Workspace
	exp := ws + "/experiments/" + s.ExperimentID
	hist := ws + "/metric-history?key=loss&run="
	filter := url.Values{"filter": {"metrics.rmse < 0.5 and params.alpha = '0.1'"}, "order": {"metrics.`rmse` ASC"}}
	t := &timer{c: &http.Client{Timeout: time.Minute}, token: *token, n: *n, warm: *warm, server: "wharf"}
	return t.run([]call{
		{Name: "home", Method: "GET", URL: ws, Page: true},
		{Name: "jobs list", Method: "GET", URL: ws + "/jobs", Page: true},
		{Name: "jobs list, status=Failed", Method: "GET", URL: ws + "/jobs?status=Failed", Page: true},
		{Name: "pipeline job page", Method: "GET", URL: ws + "/jobs/" + s.Pipeline, Page: true},
		{Name: "experiments", Method: "GET", URL: ws + "/experiments", Page: true},
		{Name: "runs table (100 of 100,000, newest first)", Method: "GET", URL: exp, Page: true},
		{Name: "runs table, filter and order by metric", Method: "GET", URL: exp + "?" + filter.Encode(), Page: true},
		{Name: "run page, 1,000,000-point metric", Method: "GET", URL: ws + "/runs/" + s.LongRun, Page: true},
		{Name: "chart data, 1,000,000-point history", Method: "GET", URL: hist + s.LongRun},
		{Name: "chart data, 1,000-point history", Method: "GET", URL: hist + s.ShortRun},
		{Name: "compare page, 2 runs", Method: "GET", URL: ws + "/compare?run=" + s.LongRun + "&run=" + s.ShortRun, Page: true},
	})
}

// mlflowSeeded is what mlflow_seed.py made.
type mlflowSeeded struct {
	ExperimentID string `json:"experiment_id"`
	LongRun      string `json:"long_run"`
	ShortRun     string `json:"short_run"`
}

// mlflowCalls times the data calls of MLflow UI's experiment page and
// its charts on the same data.
func mlflowCalls(args []string) error {
	fs := flag.NewFlagSet("mlflow", flag.ExitOnError)
	base := fs.String("url", "", "mlflow server's URL")
	seededPath := fs.String("seeded", "", "mlflow_seed.py's JSON")
	n := fs.Int("n", 50, "measured calls per call")
	warm := fs.Int("warmup", 5, "unmeasured calls first")
	timeout := fs.Duration("timeout", 2*time.Minute, "longest wait for one answer")
	_ = fs.Parse(args)
	var s mlflowSeeded
	if err := readSeeded(*seededPath, &s); err != nil {
		return err
	}
	api := *base + "/ajax-api/2.0/mlflow"
	search := func(filter, order string) string {
		b, _ := json.Marshal(map[string]any{"experiment_ids": []string{s.ExperimentID}, "max_results": 100,
			"order_by": []string{order}, "filter": filter, "run_view_type": "ACTIVE_ONLY"})
		return string(b)
	}
	hist := api + "/metrics/get-history-bulk-interval?metric_key=loss&max_results=320&run_ids="
	t := &timer{c: &http.Client{Timeout: *timeout}, n: *n, warm: *warm, server: "mlflow"}
	return t.run([]call{
		{Name: "runs search (100 of 100,000, newest first)", Method: "POST", URL: api + "/runs/search", Body: search("", "attributes.start_time DESC")},
		{Name: "runs search, filter and order by metric", Method: "POST", URL: api + "/runs/search",
			Body: search("metrics.rmse < 0.5 and params.alpha = '0.1'", "metrics.`rmse` ASC")},
		{Name: "chart data, 1,000,000-point history", Method: "GET", URL: hist + s.LongRun},
		{Name: "chart data, 1,000-point history", Method: "GET", URL: hist + s.ShortRun},
	})
}
