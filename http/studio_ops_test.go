package http_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/snapshot"
	"github.com/wharfml/wharf/tabular"
)

// seedOps fills workspace ws-a with one of everything the operations
// pages show.
func seedOps(t *testing.T, f *fixture) {
	t.Helper()
	ctx := context.Background()
	ep := &wharf.OnlineEndpoint{Workspace: "ws-a", Name: "taxi-ep", AuthMode: wharf.AuthModeKey,
		Traffic: map[string]int{}, MirrorTraffic: map[string]int{}, Tags: map[string]string{}, ProvisioningState: "Succeeded"}
	_, err := f.db.PutOnlineEndpoint(ctx, ep)
	must(t, err)
	for _, d := range []string{"blue", "green"} {
		_, err := f.db.PutOnlineDeployment(ctx, &wharf.OnlineDeployment{Workspace: "ws-a", Endpoint: "taxi-ep", Name: d, Model: "taxi-model:1", Spec: json.RawMessage(`{}`)})
		must(t, err)
	}
	ep.Traffic = map[string]int{"blue": 100}
	_, err = f.db.PutOnlineEndpoint(ctx, ep)
	must(t, err)
	for _, k := range []string{"primary", "secondary"} {
		_, err := f.db.SetSecret(ctx, wharf.WorkspaceScope("ws-a"), wharf.OnlineEndpointKeySecret("taxi-ep", k), []byte("secret-key-"+k), "text/plain")
		must(t, err)
	}
	must(t, f.db.CreateRegisteredModel(ctx, &wharf.RegisteredModel{Workspace: "ws-a", Name: "taxi-model", Description: "fares"}))
	must(t, f.db.CreateModelVersion(ctx, &wharf.ModelVersion{Workspace: "ws-a", Name: "taxi-model", Source: "azureml://datastores/workspaceblobstore/paths/m", Type: wharf.ModelTypeCustom}))
	must(t, f.db.SetModelAlias(ctx, "ws-a", "taxi-model", "champion", 1))
	_, err = f.db.PutCompute(ctx, &wharf.Compute{Workspace: "ws-a", Name: "cpu-cluster", Type: wharf.ComputeTypeAML, Size: "Standard_DS3_v2", MaxInstances: 4, Tier: wharf.TierDedicated, ProvisioningState: "Succeeded", Tags: map[string]string{}})
	must(t, err)
	_, err = f.db.PutBatchEndpoint(ctx, &wharf.BatchEndpoint{Workspace: "ws-a", Name: "taxi-batch", Tags: map[string]string{}})
	must(t, err)
	next := time.Now().Add(time.Hour)
	_, err = f.db.PutSchedule(ctx, &wharf.Schedule{Workspace: "ws-a", Name: "nightly", Enabled: true, Trigger: json.RawMessage(`{"type":"cron","expression":"0 2 * * *"}`),
		Job: json.RawMessage(`{}`), CreatedBy: "owner", CreatedAt: time.Now(), NextRun: &next, Tags: map[string]string{}})
	must(t, err)
	for _, kind := range []string{wharf.AssetEnvironment, wharf.AssetComponent} {
		must(t, f.db.CreateAsset(ctx, &wharf.Asset{Workspace: "ws-a", Kind: kind, Name: "taxi-" + kind, Version: "1",
			Spec: json.RawMessage(`{"type":"command","image":"python:3.11-slim","command":"python train.py"}`), Tags: map[string]string{}, CreatedBy: "owner"}))
	}
}

// putData stores a file as a data asset version of uri_file type.
func putData(t *testing.T, f *fixture, name, file string, content []byte) {
	t.Helper()
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), file)
	must(t, os.WriteFile(p, content, 0o600))
	rd, err := os.Open(p)
	must(t, err)
	defer rd.Close()
	digest, size, err := f.ts.Blobs.Put(ctx, rd)
	must(t, err)
	spec, _ := json.Marshal(map[string]any{"type": "uri_file", "path": "azureml://datastores/workspaceblobstore/paths/" + file, "kind": "file", "file_name": file, "size": size})
	must(t, f.db.CreateAsset(ctx, &wharf.Asset{Workspace: "ws-a", Kind: wharf.AssetData, Name: name, Spec: spec, Digest: digest, Tags: map[string]string{}, CreatedBy: "owner"}))
}

var inlineStyleOrScript = regexp.MustCompile(`<script>|<script [^>]*>[^<]|style="`)

// TestStudioOpsPagesByRole opens every operations page as a Reader and
// checks each renders within the layout without inline styles, then that
// the audit log is the Owner's alone.
func TestStudioOpsPagesByRole(t *testing.T) {
	f, _ := userFixture(t)
	users := studioUsers(t, f)
	seedOps(t, f)
	putData(t, f, "taxi-data", "taxi.csv", []byte("distance,hour,fare\n1.5,8,7.25\n"))
	pages := map[string]string{
		"/workspaces/ws-a/models":                           "taxi-model",
		"/workspaces/ws-a/models/taxi-model":                "@champion",
		"/workspaces/ws-a/endpoints":                        "taxi-ep",
		"/workspaces/ws-a/endpoints/taxi-ep":                "secret-key" + "-never-shown",
		"/workspaces/ws-a/endpoints/taxi-ep?tab=logs":       "Deployment log",
		"/workspaces/ws-a/endpoints/taxi-ep?tab=monitoring": "Requests per second",
		"/workspaces/ws-a/batch-endpoints":                  "taxi-batch",
		"/workspaces/ws-a/batch-endpoints/taxi-batch":       "No jobs yet",
		"/workspaces/ws-a/data":                             "taxi-data",
		"/workspaces/ws-a/environments":                     "python:3.11-slim",
		"/workspaces/ws-a/environments/taxi-environments":   "image: python:3.11-slim",
		"/workspaces/ws-a/components":                       "taxi-components",
		"/workspaces/ws-a/components/taxi-components":       "command: python train.py",
		"/workspaces/ws-a/computes":                         "0 of 4",
		"/workspaces/ws-a/schedules":                        "cron 0 2 * * *",
	}
	for path, want := range pages {
		resp, page := users["reader"].do("GET", path, nil, nil)
		if resp.StatusCode != 200 {
			t.Errorf("GET %s as a Reader: %d\n%s", path, resp.StatusCode, f.logs.String())
			continue
		}
		if strings.HasSuffix(want, "-never-shown") {
			if strings.Contains(page, "secret-key") {
				t.Errorf("GET %s shows an endpoint key to a Reader", path)
			}
		} else if !strings.Contains(page, want) {
			t.Errorf("GET %s lacks %q:\n%s", path, want, page)
		}
		if !strings.Contains(page, `aria-label="Workspace sections"`) || inlineStyleOrScript.MatchString(page) {
			t.Errorf("GET %s is not in the layout, or has inline style or script", path)
		}
	}
	// The audit log: the Owner's, not a Reader's or a Data Scientist's,
	// and its link shows only to the Owner.
	for _, who := range []string{"reader", "datasci"} {
		resp, _ := users[who].do("GET", "/workspaces/ws-a/audit", nil, nil)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("audit log as %s: %d", who, resp.StatusCode)
		}
		if _, home := users[who].do("GET", "/workspaces/ws-a/models", nil, nil); strings.Contains(home, ">Audit</a>") {
			t.Errorf("%s is shown the audit log link", who)
		}
	}
	_, ep := users["reader"].do("GET", "/workspaces/ws-a/endpoints/taxi-ep", nil, nil)
	users["reader"].postForm("/workspaces/ws-a/endpoints/taxi-ep/traffic", url.Values{"csrf_token": {formTokenOrMeta(t, ep)}, "traffic.green": {"100"}})
	resp, page := users["owner"].do("GET", "/workspaces/ws-a/audit", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(page, ">Audit</a>") {
		t.Fatalf("audit log as the Owner: %d\n%s", resp.StatusCode, page)
	}
	// A refused call in ws-a (the Reader's) is listed; the sign-ins, at the
	// server scope, are not a workspace's.
	if !strings.Contains(page, "<td>POST /workspaces/ws-a/endpoints/taxi-ep/traffic</td><td class=\"num\">403</td><td>denied</td>") || strings.Contains(page, "POST /signin") {
		t.Errorf("audit log does not list the workspace's events alone:\n%s", page)
	}
}

// TestStudioOpsEndpointRoles checks the endpoint page hides what a role
// may not do and the server refuses it all the same: a Reader sees the
// traffic read-only and no keys, and its POSTs are refused; a Data
// Scientist changes the traffic, and a split that does not add up is
// refused without changing what is stored.
func TestStudioOpsEndpointRoles(t *testing.T) {
	f, _ := userFixture(t)
	users := studioUsers(t, f)
	seedOps(t, f)
	const page = "/workspaces/ws-a/endpoints/taxi-ep"
	_, reader := users["reader"].do("GET", page, nil, nil)
	if strings.Contains(reader, `name="traffic.blue"`) || strings.Contains(reader, "listKeys") || !strings.Contains(reader, "may not change the traffic") ||
		!strings.Contains(reader, "Keys are hidden: your role may not read them") {
		t.Errorf("Reader's endpoint page offers what a Reader may not do:\n%s", reader)
	}
	csrf := formTokenOrMeta(t, reader)
	post := func(who, path string, v url.Values, token string) (*http.Response, string) {
		v.Set("csrf_token", token)
		return users[who].postForm(path, v)
	}
	if resp, _ := post("reader", page+"/traffic", url.Values{"traffic.blue": {"0"}, "traffic.green": {"100"}}, csrf); resp.StatusCode != http.StatusForbidden {
		t.Errorf("Reader's traffic change: %d, want 403", resp.StatusCode)
	}
	if resp, body := post("reader", page+"/test", url.Values{"request": {`{}`}}, csrf); resp.StatusCode != http.StatusForbidden || strings.Contains(body, "secret-key") {
		t.Errorf("Reader's test request: %d", resp.StatusCode)
	}
	if st := users["reader"].api("POST", "/api/v1/workspaces/ws-a/onlineEndpoints/taxi-ep/listKeys", "{}", csrf); st != http.StatusForbidden {
		t.Errorf("Reader's listKeys: %d", st)
	}
	ep, err := f.db.FindOnlineEndpoint(context.Background(), "ws-a", "taxi-ep")
	if err != nil || ep.Traffic["blue"] != 100 {
		t.Fatalf("traffic after refused changes: %v %v", ep, err)
	}

	_, ds := users["datasci"].do("GET", page, nil, nil)
	if !strings.Contains(ds, `name="traffic.blue"`) || !strings.Contains(ds, `/onlineEndpoints/taxi-ep/listKeys`) || strings.Contains(ds, "secret-key") {
		t.Errorf("Data Scientist's endpoint page lacks the traffic form or the reveal button, or shows a key:\n%s", ds)
	}
	dsToken := formToken(t, ds)
	// Without the CSRF token the change is refused.
	if resp, _ := post("datasci", page+"/traffic", url.Values{"traffic.blue": {"30"}, "traffic.green": {"70"}}, ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("traffic change without CSRF token: %d", resp.StatusCode)
	}
	resp, body := post("datasci", page+"/traffic", url.Values{"traffic.blue": {"50"}, "traffic.green": {"20"}}, dsToken)
	if resp.StatusCode != 200 || !strings.Contains(body, "must add up to 0 or 100") {
		t.Errorf("a split of 70%%: %d\n%s", resp.StatusCode, body)
	}
	if ep, _ := f.db.FindOnlineEndpoint(context.Background(), "ws-a", "taxi-ep"); ep.Traffic["blue"] != 100 {
		t.Errorf("a refused split changed the traffic: %v", ep.Traffic)
	}
	resp, body = post("datasci", page+"/traffic", url.Values{"traffic.blue": {"30"}, "traffic.green": {"70"}}, dsToken)
	if resp.StatusCode != 200 || !strings.Contains(body, "Traffic updated") {
		t.Fatalf("traffic change: %d\n%s", resp.StatusCode, body)
	}
	if ep, _ := f.db.FindOnlineEndpoint(context.Background(), "ws-a", "taxi-ep"); ep.Traffic["blue"] != 30 || ep.Traffic["green"] != 70 {
		t.Errorf("stored traffic %v, want blue 30 green 70", ep.Traffic)
	}
	// The reveal button's route answers the keys to a Data Scientist.
	resp, keys := users["datasci"].do("POST", "/api/v1/workspaces/ws-a/onlineEndpoints/taxi-ep/listKeys", strings.NewReader("{}"),
		map[string]string{"Content-Type": "application/json", "X-CSRF-Token": dsToken})
	if resp.StatusCode != 200 || !strings.Contains(keys, "secret-key-primary") {
		t.Errorf("listKeys as a Data Scientist: %d %s", resp.StatusCode, keys)
	}
	// The Test tab is prefilled, even for a model without files here.
	if _, test := users["datasci"].do("GET", page+"?tab=test", nil, nil); !strings.Contains(test, `<textarea id="request"`) || !strings.Contains(test, "input_data") {
		t.Errorf("Test tab:\n%s", test)
	}
}

var metaCSRF = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

// formTokenOrMeta finds the session's CSRF token on a page that may have
// no form: the layout's meta element holds it.
func formTokenOrMeta(t *testing.T, page string) string {
	t.Helper()
	if m := metaCSRF.FindStringSubmatch(page); m != nil {
		return m[1]
	}
	return formToken(t, page)
}

// TestStudioOpsDataPreview checks a data asset's page shows the first rows
// of its CSV file and of its Parquet file, and its definition.
func TestStudioOpsDataPreview(t *testing.T) {
	f, _ := userFixture(t)
	users := studioUsers(t, f)
	var csv strings.Builder
	csv.WriteString("distance,hour,fare\n")
	for i := range 100 {
		csv.WriteString(strings.Repeat("1", 1+i%3) + ".5," + []string{"8", "9", "17"}[i%3] + ",7.25\n")
	}
	putData(t, f, "taxi-csv", "taxi.csv", []byte(csv.String()))
	_, page := users["reader"].do("GET", "/workspaces/ws-a/data/taxi-csv", nil, nil)
	if !strings.Contains(page, "<th scope=\"col\">distance</th><th scope=\"col\">hour</th><th scope=\"col\">fare</th>") ||
		!strings.Contains(page, "<td>1.5</td><td>8</td><td>7.25</td>") || !strings.Contains(page, "<td>11.5</td><td>9</td>") {
		t.Errorf("CSV preview lacks the header or the first rows:\n%s", page)
	}
	if n := strings.Count(page, "<td>7.25</td>"); n != 20 {
		t.Errorf("CSV preview shows %d rows, want the first 20", n)
	}
	if !strings.Contains(page, "type: uri_file") {
		t.Errorf("data page lacks the definition as YAML")
	}

	dir := t.TempDir()
	pq := filepath.Join(dir, "taxi.parquet")
	w, err := tabular.CreateParquet(pq, []string{"distance", "zone"}, []bool{true, false})
	must(t, err)
	must(t, w.Write(&tabular.Frame{Columns: []string{"distance", "zone"}, Num: [][]float64{{2.5, 3.5}, nil}, Text: [][]string{nil, {"Midtown", "Harlem"}}, Len: 2, FirstRow: 1}))
	must(t, w.Close())
	b, err := os.ReadFile(pq)
	must(t, err)
	putData(t, f, "taxi-parquet", "taxi.parquet", b)
	_, page = users["reader"].do("GET", "/workspaces/ws-a/data/taxi-parquet", nil, nil)
	if !strings.Contains(page, "<td>2.5</td><td>Midtown</td>") || !strings.Contains(page, "<td>3.5</td><td>Harlem</td>") {
		t.Errorf("Parquet preview lacks its rows:\n%s", page)
	}
	// A folder's first table file is previewed.
	m, err := func() (*snapshot.Manifest, error) {
		folder := filepath.Join(t.TempDir(), "taxi")
		must(t, os.MkdirAll(folder, 0o755))
		must(t, os.WriteFile(filepath.Join(folder, "README.txt"), []byte("about"), 0o600))
		must(t, os.WriteFile(filepath.Join(folder, "part-0.csv"), []byte("a,b\n1,2\n"), 0o600))
		m, err := snapshot.Take(folder)
		if err != nil {
			return nil, err
		}
		return m, snapshot.Upload(context.Background(), m, folder, f.ts.Blobs)
	}()
	must(t, err)
	spec, _ := json.Marshal(map[string]any{"type": "uri_folder", "path": "azureml://datastores/workspaceblobstore/paths/taxi", "kind": "folder"})
	must(t, f.db.CreateAsset(context.Background(), &wharf.Asset{Workspace: "ws-a", Kind: wharf.AssetData, Name: "taxi-folder", Spec: spec, Digest: m.Digest, Tags: map[string]string{}}))
	if _, page = users["reader"].do("GET", "/workspaces/ws-a/data/taxi-folder", nil, nil); !strings.Contains(page, "Preview of part-0.csv") || !strings.Contains(page, "<td>1</td><td>2</td>") {
		t.Errorf("folder preview:\n%s", page)
	}
}

// TestStudioOpsModelLineageAndEvaluation checks a model version's page
// names the job, pipeline and run that produced it and the data it trained
// on, and draws the pipeline's evaluate step comparison from the step's
// stored metrics.json, with the step's picture.
func TestStudioOpsModelLineageAndEvaluation(t *testing.T) {
	f, _ := userFixture(t)
	users := studioUsers(t, f)
	ctx := context.Background()
	exp := &wharf.Experiment{Workspace: "ws-a", Name: "taxi"}
	must(t, f.db.CreateExperiment(ctx, exp))
	run := &wharf.Run{Workspace: "ws-a", ExperimentID: exp.ID, Name: "train-run",
		Tags: map[string]string{"wharf.job": "taxi-train-job", "wharf.pipeline": "taxi-pipeline", "wharf.step": "train_model"}}
	must(t, f.db.CreateRun(ctx, run))
	must(t, f.db.LogInputs(ctx, "ws-a", run.ID, []*wharf.DatasetInput{{
		Dataset: wharf.Dataset{Name: "taxi-train", Digest: "d1g3st", SourceType: "local", Source: "azureml:taxi-data:1"},
		Tags:    map[string]string{"mlflow.data.context": "training"}}}, nil))
	must(t, f.db.CreateRegisteredModel(ctx, &wharf.RegisteredModel{Workspace: "ws-a", Name: "taxi-model"}))
	for range 2 {
		must(t, f.db.CreateModelVersion(ctx, &wharf.ModelVersion{Workspace: "ws-a", Name: "taxi-model", Source: "runs:/" + run.ID + "/model", RunID: run.ID, Type: wharf.ModelTypeMLflow}))
	}

	// The evaluate step's output folder, as the built-in step writes it.
	folder := filepath.Join(t.TempDir(), "evaluation")
	must(t, os.MkdirAll(folder, 0o755))
	must(t, os.WriteFile(filepath.Join(folder, "metrics.json"), []byte(`{"model_name": "taxi-model",
		"candidate": {"rows": 100, "r2": 0.91, "mse": 1, "rmse": 1, "mae": 1},
		"registered": [{"version": "1", "scores": {"r2": 0.85}}, {"version": "2", "scores": {"r2": 0.88}}], "deploy_flag": 1, "reason": "better"}`), 0o600))
	must(t, os.WriteFile(filepath.Join(folder, "perf_comparison.png"), []byte("\x89PNG\r\n\x1a\nnot really"), 0o600))
	m, err := snapshot.Take(folder)
	must(t, err)
	must(t, snapshot.Upload(ctx, m, folder, f.ts.Blobs))
	// The scheduler records a step's outputs as the workspace's content.
	must(t, f.db.AddBlobRefs(ctx, "ws-a", append(m.Digests(), m.Digest)))
	now := time.Now()
	must(t, f.db.CreateJobs(ctx, []*wharf.Job{
		{Workspace: "ws-a", Name: "taxi-pipeline", Type: wharf.JobTypePipeline, Status: wharf.JobCompleted, Tags: map[string]string{}, CreatedAt: now, SubmittedBy: "owner"},
		{Workspace: "ws-a", Name: "taxi-train-job", Parent: "taxi-pipeline", Step: "train_model", Type: wharf.JobTypeCommand, Status: wharf.JobCompleted, Tags: map[string]string{}, CreatedAt: now, SubmittedBy: "owner"},
		{Workspace: "ws-a", Name: "taxi-eval-job", Parent: "taxi-pipeline", Step: "evaluate_model", Type: wharf.JobTypeCommand, Status: wharf.JobCompleted, Tags: map[string]string{}, CreatedAt: now, SubmittedBy: "owner",
			Outputs: map[string]wharf.JobOutput{"evaluation_output": {Type: "uri_folder", Kind: "folder", Digest: m.Digest, Files: len(m.Files)}}},
	}))

	resp, page := users["reader"].do("GET", "/workspaces/ws-a/models/taxi-model?version=1", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("model page: %d\n%s", resp.StatusCode, page)
	}
	for _, want := range []string{
		`href="/workspaces/ws-a/jobs/taxi-pipeline">taxi-train-job</a> (a step of pipeline taxi-pipeline)`,
		`href="/workspaces/ws-a/experiments/` + exp.ID + `/runs/` + run.ID + `">train-run</a>`,
		`taxi-train (training) <code>d1g3st</code> from azureml:taxi-data:1`,
		`Evaluation (evaluate_model)`,
		`>candidate</text>`, `>v1</text>`, `>v2</text>`, `>0.9100</text>`, `>0.8500</text>`,
		`deploy flag 1`,
		`<img src="/api/v1/workspaces/ws-a/blobs/sha256:`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("model page lacks %q:\n%s", want, page)
		}
	}
	// The picture is fetched through the content route, which a Reader may.
	img := regexp.MustCompile(`<img src="([^"]+)"`).FindStringSubmatch(page)
	if resp, body := users["reader"].do("GET", img[1], nil, nil); resp.StatusCode != 200 || !strings.HasPrefix(body, "\x89PNG") {
		t.Errorf("comparison picture: %d", resp.StatusCode)
	}
	// Bars are scaled to the best score: the candidate's is the tallest.
	heights := regexp.MustCompile(`<rect x="[0-9.]+" y="[0-9.]+" width="[0-9.]+" height="([0-9.]+)"`).FindAllStringSubmatch(page, -1)
	if len(heights) != 3 || heights[0][1] != "170.0" {
		t.Errorf("bars: %v", heights)
	}
}

// TestStudioOpsEndpointSeries checks the monitoring charts' data: request
// rate, error share and latency quantiles between two samples of the
// endpoint's own series, on the server's clock.
func TestStudioOpsEndpointSeries(t *testing.T) {
	f, clk := userFixture(t)
	users := studioUsers(t, f)
	seedOps(t, f)
	// The router's series, as it registers them.
	labels := []string{"workspace", "endpoint", "deployment"}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wharf_endpoint_requests_total"}, append(labels, "code"))
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "wharf_endpoint_request_duration_seconds", Buckets: []float64{0.001, 0.01, 0.1}}, labels)
	f.srv.Registerer().MustRegister(requests, latency)
	score := func(n int, code string, d float64) {
		for range n {
			requests.WithLabelValues("ws-a", "taxi-ep", "blue", code).Inc()
			latency.WithLabelValues("ws-a", "taxi-ep", "blue").Observe(d)
		}
	}
	// Another endpoint's requests are not this one's.
	requests.WithLabelValues("ws-a", "other", "blue", "200").Add(1000)
	score(10, "200", 0.005)
	const page = "/workspaces/ws-a/endpoints/taxi-ep"
	_, mon := users["reader"].do("GET", page+"?tab=monitoring", nil, nil)
	if !strings.Contains(mon, "Since the deployments started: 10 requests, 0 errors") || !strings.Contains(mon, `data-src="`+page+`/series?chart=latency"`) {
		t.Fatalf("monitoring tab:\n%s", mon)
	}
	clk.Advance(10 * time.Second)
	score(20, "200", 0.005)
	score(10, "500", 0.05)
	chart := func(key string) map[string][]*float64 {
		t.Helper()
		resp, body := users["reader"].do("GET", page+"/series?chart="+key, nil, nil)
		var h struct {
			Runs []struct {
				Name   string     `json:"name"`
				Times  []int64    `json:"times"`
				Values []*float64 `json:"values"`
			} `json:"runs"`
		}
		if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &h) != nil {
			t.Fatalf("series %s: %d %s", key, resp.StatusCode, body)
		}
		out := map[string][]*float64{}
		for _, r := range h.Runs {
			out[r.Name] = r.Values
		}
		return out
	}
	if v := chart("requests")["requests/s"]; len(v) != 1 || *v[0] != 3 {
		t.Errorf("request rate: %v, want one point of 30 requests in 10 s", v)
	}
	if v := chart("errors")["error share"]; len(v) != 1 || *v[0] < 0.333 || *v[0] > 0.334 {
		t.Errorf("error share: %v, want 10 of 30", v)
	}
	lat := chart("latency")
	// 20 of 30 took 5 ms (bucket 1-10 ms), 10 took 50 ms (10-100 ms).
	if p50, p99 := lat["p50"], lat["p99"]; len(p50) != 1 || *p50[0] <= 1 || *p50[0] > 10 || *p99[0] <= 10 || *p99[0] > 100 {
		t.Errorf("latency p50 %v, p99 %v", lat["p50"], lat["p99"])
	}
	if resp, _ := users["reader"].do("GET", page+"/series?chart=cpu", nil, nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown chart: %d", resp.StatusCode)
	}
}
