package http_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/mlflow"
)

// studioRuns logs n runs in experiment "taxi" of ws-a, run i with param
// alpha (i%3) and metric rmse i/n; it returns the experiment and runs.
func studioRuns(t *testing.T, f *fixture, n int) (*wharf.Experiment, []*wharf.Run) {
	t.Helper()
	ctx := context.Background()
	exp := &wharf.Experiment{Workspace: "ws-a", Name: "taxi"}
	if err := f.db.CreateExperiment(ctx, exp); err != nil {
		t.Fatal(err)
	}
	var runs []*wharf.Run
	for i := range n {
		r := &wharf.Run{Workspace: "ws-a", ExperimentID: exp.ID, Name: fmt.Sprintf("run-%03d", i), StartTime: 1_700_000_000_000 + int64(i)}
		if err := f.db.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := f.db.LogBatch(ctx, "ws-a", r.ID, []*wharf.Metric{{Key: "rmse", Value: float64(i) / float64(n), Timestamp: 1}},
			[]*wharf.Param{{Key: "alpha", Value: fmt.Sprint(i % 3)}}, nil); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	return exp, runs
}

var runLinkRE = regexp.MustCompile(`href="/workspaces/ws-a/runs/([0-9a-f]{32})"`)

// TestStudioRunsTable checks the runs table: MLflow's filter syntax,
// ordering by a metric column, and pages that cover every run once.
func TestStudioRunsTable(t *testing.T) {
	f, _ := userFixture(t)
	users := studioUsers(t, f)
	exp, runs := studioRuns(t, f, 130)
	base := "/workspaces/ws-a/experiments/" + exp.ID
	_, page := users["reader"].do("GET", "/workspaces/ws-a/experiments", nil, nil)
	if !strings.Contains(page, `href="`+base+`"`) {
		t.Fatal("experiments page does not link the experiment")
	}
	seen := map[string]bool{}
	next := base
	for pages := 0; next != ""; pages++ {
		resp, page := users["reader"].do("GET", next, nil, nil)
		if resp.StatusCode != 200 || pages > 2 {
			t.Fatalf("GET %s: %d\n%s", next, resp.StatusCode, page)
		}
		for _, m := range runLinkRE.FindAllStringSubmatch(page, -1) {
			seen[m[1]] = true
		}
		next = ""
		if m := regexp.MustCompile(`href="([^"]+)" rel="next"`).FindStringSubmatch(page); m != nil {
			next = base + strings.ReplaceAll(m[1], "&amp;", "&")
		}
	}
	if len(seen) != len(runs) {
		t.Errorf("pages list %d runs, want %d", len(seen), len(runs))
	}
	q := url.Values{"filter": {"metrics.rmse < 0.1 and params.alpha = '0'"}, "order": {"metrics.`rmse` DESC"}}
	_, page = users["reader"].do("GET", base+"?"+q.Encode(), nil, nil)
	got := runLinkRE.FindAllStringSubmatch(page, -1)
	// rmse = i/130 < 0.1 for i < 13; alpha 0 for i in {0, 3, 6, 9, 12}.
	if len(got) != 5 || got[0][1] != runs[12].ID || got[4][1] != runs[0].ID {
		t.Errorf("filtered and ordered table lists %d runs, first %v", len(got), got)
	}
	if !strings.Contains(page, `aria-sort="descending"><a href="?filter=`) {
		t.Error("the ordered column is not marked, or its link does not keep the filter")
	}
	_, page = users["reader"].do("GET", base+"?filter="+url.QueryEscape("metrics.rmse <<< 1"), nil, nil)
	if !strings.Contains(page, `class="error" role="alert"`) {
		t.Error("a bad filter is not said back")
	}
	if resp, _ := users["outsider"].do("GET", base, nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("outsider: %d", resp.StatusCode)
	}
}

// TestStudioMetricCharts checks the run page's charts: the vendored
// uPlot is loaded, and the history route sends a short history whole and
// a long one thinned to at most 1,000 values with its first and last.
func TestStudioMetricCharts(t *testing.T) {
	f, _ := userFixture(t)
	users := studioUsers(t, f)
	_, runs := studioRuns(t, f, 2)
	ctx := context.Background()
	var ms []*wharf.Metric
	for step := range 20000 {
		ms = append(ms, &wharf.Metric{Key: "loss", Value: 1 / float64(step+1), Step: int64(step), Timestamp: int64(step)})
	}
	for i := 0; i < len(ms); i += 1000 {
		if err := f.db.LogBatch(ctx, "ws-a", runs[0].ID, ms[i:i+1000], nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.db.LogBatch(ctx, "ws-a", runs[1].ID, ms[:500], nil, nil); err != nil {
		t.Fatal(err)
	}
	resp, page := users["reader"].do("GET", "/workspaces/ws-a/runs/"+runs[0].ID, nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("run page: %d\n%s", resp.StatusCode, page)
	}
	for _, want := range []string{`src="/static/uplot/uPlot.iife.min.js?v=`, `href="/static/uplot/uPlot.min.css?v=`, `src="/static/charts.js?v=`,
		`data-src="/workspaces/ws-a/metric-history?key=loss&amp;run=` + runs[0].ID + `"`} {
		if !strings.Contains(page, want) {
			t.Errorf("run page lacks %s", want)
		}
	}
	type history struct {
		Runs []struct {
			Run     string
			Sampled bool
			Steps   []int64
			Values  []*float64
		}
	}
	get := func(q string) history {
		resp, body := users["reader"].do("GET", "/workspaces/ws-a/metric-history?"+q, nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("history %s: %d %s", q, resp.StatusCode, body)
		}
		var h history
		if err := json.Unmarshal([]byte(body), &h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	h := get("key=loss&run=" + runs[0].ID + "&run=" + runs[1].ID)
	long, short := h.Runs[0], h.Runs[1]
	if len(long.Steps) > 1000 || long.Steps[0] != 0 || long.Steps[len(long.Steps)-1] != 19999 || !long.Sampled {
		t.Errorf("long history: %d points from %d to %d, sampled %v", len(long.Steps), long.Steps[0], long.Steps[len(long.Steps)-1], long.Sampled)
	}
	if *long.Values[0] != 1 {
		t.Errorf("the first value is %v, want 1 (the largest)", *long.Values[0])
	}
	if len(short.Steps) != 500 || short.Sampled {
		t.Errorf("short history: %d points, sampled %v; want all 500", len(short.Steps), short.Sampled)
	}
	if resp, _ := users["outsider"].do("GET", "/workspaces/ws-a/metric-history?key=loss&run="+runs[0].ID, nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("outsider reads a history: %d", resp.StatusCode)
	}
	// Compare overlays both runs in each shared chart.
	_, page = users["reader"].do("GET", "/workspaces/ws-a/compare?run="+runs[0].ID+"&run="+runs[1].ID, nil, nil)
	if !strings.Contains(page, "metric-history?run="+runs[0].ID+"&amp;run="+runs[1].ID+"&amp;key=loss") {
		t.Errorf("compare page does not chart loss for both runs:\n%s", page)
	}
}

// TestDownsampleKeepsEndsAndExtremes checks the M4 thinning: the first
// and last values and the smallest and largest survive, in order.
func TestDownsampleKeepsEndsAndExtremes(t *testing.T) {
	var ps []*wharf.Metric
	for i := range 100000 {
		v := math.Sin(float64(i) / 500)
		switch i {
		case 31337:
			v = 40
		case 77777:
			v = -40
		case 5000:
			v = math.NaN()
		}
		ps = append(ps, &wharf.Metric{Step: int64(i), Value: v})
	}
	out := wharfhttp.DownsampleM4(ps, 1000)
	if len(out) > 1000 || len(out) < 500 {
		t.Fatalf("%d points, want at most 1000", len(out))
	}
	if out[0] != ps[0] || out[len(out)-1] != ps[len(ps)-1] {
		t.Error("first or last point dropped")
	}
	var hasMax, hasMin bool
	for i, p := range out {
		hasMax = hasMax || p.Value == 40
		hasMin = hasMin || p.Value == -40
		if i > 0 && p.Step <= out[i-1].Step {
			t.Fatalf("out of order at %d", i)
		}
	}
	if !hasMax || !hasMin {
		t.Errorf("extremes dropped: max %v, min %v", hasMax, hasMin)
	}
	if short := wharfhttp.DownsampleM4(ps[:10], 1000); len(short) != 10 {
		t.Errorf("a short history was thinned to %d", len(short))
	}
}

// TestStudioArtifactPreviews checks the artifact browser: folders list,
// and text, JSON, CSV and SVG files preview, an SVG served so that no
// script in it can run.
func TestStudioArtifactPreviews(t *testing.T) {
	f, _ := userFixture(t)
	users := studioUsers(t, f)
	_, runs := studioRuns(t, f, 1)
	run := runs[0]
	root, ok := mlflow.ArtifactRoot(run.ArtifactURI)
	if !ok {
		t.Fatalf("artifact URI %q has no root", run.ArtifactURI)
	}
	ctx := context.Background()
	for name, body := range map[string]string{
		"notes.txt":         "hello <b>world</b>",
		"eval/metrics.json": `{"r2":0.9,"rmse":1.5}`,
		"eval/pred.csv":     "a,b\n1,2\n3,4\n",
		"plot.svg":          `<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script><circle r="4"/></svg>`,
	} {
		digest, size, err := f.ts.Blobs.Put(ctx, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.db.PutArtifact(ctx, &wharf.Artifact{Workspace: "ws-a", Path: root + "/" + name, Digest: digest, Size: size}); err != nil {
			t.Fatal(err)
		}
	}
	base := "/workspaces/ws-a/runs/" + run.ID
	_, page := users["reader"].do("GET", base, nil, nil)
	for _, want := range []string{`?path=eval#artifacts">eval/</a>`, `?path=notes.txt#artifacts">notes.txt</a>`} {
		if !strings.Contains(page, want) {
			t.Errorf("listing lacks %s", want)
		}
	}
	_, page = users["reader"].do("GET", base+"?path=notes.txt", nil, nil)
	if !strings.Contains(page, "hello &lt;b&gt;world&lt;/b&gt;") {
		t.Error("text preview missing or not escaped")
	}
	_, page = users["reader"].do("GET", base+"?path=eval/metrics.json", nil, nil)
	if !strings.Contains(page, "&#34;r2&#34;: 0.9,\n") {
		t.Error("JSON preview is not indented")
	}
	_, page = users["reader"].do("GET", base+"?path=eval/pred.csv", nil, nil)
	if !strings.Contains(page, `<th scope="col">a</th>`) || !strings.Contains(page, "<td>3</td>") {
		t.Error("CSV preview is not a table")
	}
	_, page = users["reader"].do("GET", base+"?path=plot.svg", nil, nil)
	if !strings.Contains(page, `<img src="`+base+`/artifact?path=plot.svg"`) {
		t.Error("SVG preview is not an image")
	}
	resp, body := users["reader"].do("GET", base+"/artifact?path=plot.svg", nil, nil)
	if resp.Header.Get("Content-Type") != "image/svg+xml" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "sandbox") || !strings.Contains(body, "<circle") {
		t.Errorf("SVG served as %q with CSP %q", resp.Header.Get("Content-Type"), resp.Header.Get("Content-Security-Policy"))
	}
	resp, _ = users["reader"].do("GET", base+"/artifact?path=notes.txt", nil, nil)
	if !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Error("a text file is not sent as a download")
	}
	if resp, _ := users["reader"].do("GET", base+"/artifact?path=../../x", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a path with ..: %d", resp.StatusCode)
	}
}

// TestStudioPageWeight checks that the heaviest page, a run with charts,
// weighs under 300 KB with everything it loads.
func TestStudioPageWeight(t *testing.T) {
	f, _ := userFixture(t)
	users := studioUsers(t, f)
	_, runs := studioRuns(t, f, 1)
	_, page := users["reader"].do("GET", "/workspaces/ws-a/runs/"+runs[0].ID, nil, nil)
	total := len(page)
	for _, m := range regexp.MustCompile(`(?:src|href)="(/static/[^"]+)"`).FindAllStringSubmatch(page, -1) {
		_, body := users["reader"].do("GET", strings.ReplaceAll(m[1], "&amp;", "&"), nil, nil)
		total += len(body)
	}
	if total > 300<<10 {
		t.Errorf("run page weighs %d bytes with its scripts and styles, want under 300 KB", total)
	}
}

// TestVendoredUPlotMatchesItsREADME checks the vendored files against the
// checksums their README records.
func TestVendoredUPlotMatchesItsREADME(t *testing.T) {
	readme, err := os.ReadFile("studio/static/uplot/README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile("\\| `([^`]+)` \\| `[^`]+` \\| `([0-9a-f]{64})` \\|").FindAllStringSubmatch(string(readme), -1)
	if len(rows) != 3 {
		t.Fatalf("README lists %d files, want 3", len(rows))
	}
	for _, r := range rows {
		data, err := os.ReadFile("studio/static/uplot/" + r[1])
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != r[2] {
			t.Errorf("%s does not match the checksum in the README", r[1])
		}
	}
}
