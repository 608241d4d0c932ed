package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// endpointFixture is an endpoint with two native deployments: blue
// predicts 2*distance + 0.5*hour + 1, green 3*distance.
type endpointFixture struct {
	e          *cliEnv
	scoringURI string
	key        string
}

func newEndpointFixture(t *testing.T, authMode string) *endpointFixture {
	e := newCLIEnv(t)
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "model", "create", "--name", "taxi-model", "--path", nativeModel(t, 2.0, 0.5, 1.0), "-w", "mlw")
	e.ok("ml", "model", "create", "--name", "taxi-model", "--path", nativeModel(t, 3.0, 0, 0), "-w", "mlw")
	writeFile(t, dir, "ep.yml", "name: taxi\nauth_mode: "+authMode+"\n")
	writeFile(t, dir, "dep.yml", "name: blue\nendpoint_name: taxi\nmodel: azureml:taxi-model:1\ninstance_count: 1\n"+
		"request_settings:\n  max_concurrent_requests_per_instance: 64\n")
	e.ok("ml", "online-endpoint", "create", "-f", filepath.Join(dir, "ep.yml"), "-w", "mlw")
	e.ok("ml", "online-deployment", "create", "-f", filepath.Join(dir, "dep.yml"), "-w", "mlw", "--all-traffic")
	e.ok("ml", "online-deployment", "create", "-f", filepath.Join(dir, "dep.yml"), "-w", "mlw", "--name", "green",
		"--set", "model=azureml:taxi-model:2")
	f := &endpointFixture{e: e}
	f.scoringURI = strings.TrimSpace(e.ok("ml", "online-endpoint", "show", "-n", "taxi", "-w", "mlw", "--query", "scoring_uri", "-o", "tsv"))
	q := "primaryKey"
	if authMode == "aml_token" {
		q = "accessToken"
	}
	f.key = strings.TrimSpace(e.ok("ml", "online-endpoint", "get-credentials", "-n", "taxi", "-w", "mlw", "--query", q, "-o", "tsv"))
	return f
}

func (f *endpointFixture) post(t *testing.T, url, key, deployment, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if deployment != "" {
		req.Header.Set("azureml-model-deployment", deployment)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestScoringRequestFormatsOnANativeModel(t *testing.T) {
	f := newEndpointFixture(t, "key")
	// blue: 2*3 + 0.5*10 + 1 = 12; 2*1 + 0.5*2 + 1 = 4.
	cases := []struct{ name, body, want string }{
		{"azure rows", `{"input_data": [[3, 10], [1, 2]]}`, `[12,4]`},
		{"azure split", `{"input_data": {"columns": ["hour", "distance"], "index": [0, 1], "data": [[10, 3], [2, 1]]}}`, `[12,4]`},
		{"azure named arrays", `{"input_data": {"distance": [3, 1], "hour": [10, 2]}}`, `[12,4]`},
		{"mlflow dataframe_split", `{"dataframe_split": {"columns": ["distance", "hour"], "data": [[3, 10]]}}`, `{"predictions":[12]}`},
		{"mlflow dataframe_records", `{"dataframe_records": [{"hour": 10, "distance": 3}]}`, `{"predictions":[12]}`},
		{"mlflow instances", `{"instances": [{"distance": 3, "hour": 10}]}`, `{"predictions":[12]}`},
		{"mlflow inputs", `{"inputs": {"distance": [3], "hour": [10]}}`, `{"predictions":[12]}`},
	}
	for _, c := range cases {
		status, body, hdr := f.post(t, f.scoringURI, f.key, "", c.body)
		if status != 200 || strings.TrimSpace(body) != c.want || hdr.Get("azureml-model-deployment") != "blue" {
			t.Errorf("%s: %d %s (deployment %q), want %s", c.name, status, body, hdr.Get("azureml-model-deployment"), c.want)
		}
	}
	bad := map[string]string{
		`{"input_data": [[3]]}`: "column",
		`{"dataframe_split": {"columns": ["distance"], "data": [["x"]]}}`: "dataframe_split",
		`{"input_data": {"distance": [3], "hour": ["late"]}}`:             "hour",
		`not json`:                "JSON",
		`{"something_else": [1]}`: "input_data",
	}
	for body, field := range bad {
		status, resp, _ := f.post(t, f.scoringURI, f.key, "", body)
		if status != 400 || !strings.Contains(resp, field) {
			t.Errorf("%s: %d %s, want 400 naming %s", body, status, resp, field)
		}
	}

	// The Open Inference Protocol v2.
	base := strings.TrimSuffix(f.scoringURI, "/score")
	v2 := `{"id": "r1", "inputs": [{"name": "distance", "shape": [2], "datatype": "FP64", "data": [3, 1]},
		{"name": "hour", "shape": [2], "datatype": "FP64", "data": [10, 2]}]}`
	status, body, _ := f.post(t, base+"/v2/models/taxi-model/infer", f.key, "", v2)
	var infer struct {
		ModelName string `json:"model_name"`
		ID        string `json:"id"`
		Outputs   []struct {
			Shape []int     `json:"shape"`
			Data  []float64 `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal([]byte(body), &infer); status != 200 || err != nil || infer.ModelName != "taxi-model" || infer.ID != "r1" ||
		len(infer.Outputs) != 1 || fmt.Sprint(infer.Outputs[0].Data) != "[12 4]" {
		t.Errorf("v2 infer: %d %s", status, body)
	}
	for _, p := range []string{"/v2/health/live", "/v2/health/ready", "/v2/models/taxi-model", "/v2/models/taxi-model/ready"} {
		req, _ := http.NewRequest(http.MethodGet, base+p, nil)
		req.Header.Set("Authorization", "Bearer "+f.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", p, resp.StatusCode)
		}
	}

	// az ml online-endpoint invoke, pinned to the 0%-traffic deployment.
	req := writeFile(t, t.TempDir(), "req.json", `{"input_data": [[3, 10]]}`)
	out := f.e.ok("ml", "online-endpoint", "invoke", "-n", "taxi", "--deployment-name", "green", "--request-file", req, "-w", "mlw")
	if !strings.Contains(out, "[9]") {
		t.Errorf("invoke on green: %s", out)
	}
}

func TestScoringAuthentication(t *testing.T) {
	f := newEndpointFixture(t, "key")
	body := `{"input_data": [[1, 1]]}`
	for name, key := range map[string]string{"missing": "", "wrong": "not-the-key"} {
		if status, _, _ := f.post(t, f.scoringURI, key, "", body); status != 401 {
			t.Errorf("%s key: %d, want 401", name, status)
		}
	}
	secondary := strings.TrimSpace(f.e.ok("ml", "online-endpoint", "get-credentials", "-n", "taxi", "-w", "mlw", "--query", "secondaryKey", "-o", "tsv"))
	for _, k := range []string{f.key, secondary} {
		if status, _, _ := f.post(t, f.scoringURI, k, "", body); status != 200 {
			t.Errorf("valid key: %d", status)
		}
	}
	// Rotation invalidates the old primary at once; the secondary goes on.
	f.e.ok("ml", "online-endpoint", "regenerate-keys", "-n", "taxi", "--key-type", "primary", "-w", "mlw")
	if status, _, _ := f.post(t, f.scoringURI, f.key, "", body); status != 401 {
		t.Errorf("rotated-out key: %d, want 401", status)
	}
	if status, _, _ := f.post(t, f.scoringURI, secondary, "", body); status != 200 {
		t.Errorf("secondary after rotating the primary: %d", status)
	}
	// An API token of the workspace owner is not an endpoint credential.
	tok := strings.TrimSpace(f.e.ok("account", "get-access-token", "--query", "accessToken", "-o", "tsv"))
	if status, _, _ := f.post(t, f.scoringURI, tok, "", body); status != 401 {
		t.Errorf("API token on a key endpoint: %d", status)
	}
	if status, _, _ := f.post(t, f.scoringURI, secondary, "nope", body); status != 404 {
		t.Errorf("unknown deployment header: %d", status)
	}
}

func TestScoringWithAMLToken(t *testing.T) {
	f := newEndpointFixture(t, "aml_token")
	if status, _, _ := f.post(t, f.scoringURI, f.key, "", `{"input_data": [[1, 1]]}`); status != 200 {
		t.Errorf("endpoint token: %d", status)
	}
	api := strings.TrimSpace(f.e.ok("account", "get-access-token", "--query", "accessToken", "-o", "tsv"))
	if status, _, _ := f.post(t, f.scoringURI, api, "", `{"input_data": [[1, 1]]}`); status != 401 {
		t.Errorf("API token (another audience): %d, want 401", status)
	}
}

// TestAMLTokenLivesNoLongerThanItsPrincipalAndRole mints an endpoint token
// for a principal of its own, then takes away its role and deletes it:
// the unexpired token stops scoring at each step, at once.
func TestAMLTokenLivesNoLongerThanItsPrincipalAndRole(t *testing.T) {
	f := newEndpointFixture(t, "aml_token")
	body := `{"input_data": [[1, 1]]}`
	sdk := f.e.ok("ad", "sp", "create-for-rbac", "--name", "scorer", "--role", "Data Scientist", "--scopes", "/workspaces/mlw", "--sdk-auth")
	t.Setenv("WHARF_CREDENTIALS", sdk)
	tok := strings.TrimSpace(f.e.ok("ml", "online-endpoint", "get-credentials", "-n", "taxi", "-w", "mlw", "--query", "accessToken", "-o", "tsv"))
	t.Setenv("WHARF_CREDENTIALS", f.e.owner)
	if status, resp, _ := f.post(t, f.scoringURI, tok, "", body); status != 200 {
		t.Fatalf("token of a Data Scientist: %d %s", status, resp)
	}

	f.e.ok("role", "assignment", "delete", "--assignee", "scorer", "--role", "Data Scientist", "--scope", "/workspaces/mlw")
	if status, resp, _ := f.post(t, f.scoringURI, tok, "", body); status != 403 || !strings.Contains(resp, "score/action") {
		t.Errorf("token after its role was removed: %d %s, want 403 naming the score action", status, resp)
	}
	f.e.ok("role", "assignment", "create", "--assignee", "scorer", "--role", "Data Scientist", "--scope", "/workspaces/mlw")
	if status, resp, _ := f.post(t, f.scoringURI, tok, "", body); status != 200 {
		t.Errorf("token after its role was given back: %d %s", status, resp)
	}

	f.e.ok("ad", "sp", "delete", "--id", "scorer")
	if status, resp, _ := f.post(t, f.scoringURI, tok, "", body); status != 401 {
		t.Errorf("token of a deleted principal: %d %s, want 401", status, resp)
	}
	// The owner's own token is untouched.
	if status, _, _ := f.post(t, f.scoringURI, f.key, "", body); status != 200 {
		t.Errorf("owner's token after another principal was deleted: %d", status)
	}
}

// TestEndpointKeysDieWithTheirEndpointAndWorkspace deletes an endpoint,
// then a whole workspace, and checks that keys the router had cached stop
// working at once.
func TestEndpointKeysDieWithTheirEndpointAndWorkspace(t *testing.T) {
	f := newEndpointFixture(t, "key")
	body := `{"input_data": [[1, 1]]}`
	if status, resp, _ := f.post(t, f.scoringURI, f.key, "", body); status != 200 {
		t.Fatalf("before: %d %s", status, resp)
	}
	f.e.ok("ml", "online-endpoint", "delete", "-n", "taxi", "-w", "mlw", "--yes")
	if status, resp, _ := f.post(t, f.scoringURI, f.key, "", body); status != 404 {
		t.Errorf("key of a deleted endpoint: %d %s, want 404", status, resp)
	}

	g := newEndpointFixture(t, "key")
	if status, resp, _ := g.post(t, g.scoringURI, g.key, "", body); status != 200 {
		t.Fatalf("before: %d %s", status, resp)
	}
	g.e.ok("ml", "workspace", "delete", "-n", "mlw", "--yes")
	if status, resp, _ := g.post(t, g.scoringURI, g.key, "", body); status != 404 {
		t.Errorf("key of an endpoint in a deleted workspace: %d %s, want 404", status, resp)
	}
}

// TestTrafficSplitAndMirroring sends requests at a 70/30 split and checks
// the proportions within statistical bounds, then mirrors 50% to green.
func TestTrafficSplitAndMirroring(t *testing.T) {
	f := newEndpointFixture(t, "key")
	f.e.ok("ml", "online-endpoint", "update", "-n", "taxi", "--traffic", "blue=70 green=30", "-w", "mlw")
	const n = 2000
	green := 0
	for i := 0; i < n; i++ {
		status, _, hdr := f.post(t, f.scoringURI, f.key, "", `{"input_data": [[1, 1]]}`)
		if status != 200 {
			t.Fatalf("request %d: %d", i, status)
		}
		if hdr.Get("azureml-model-deployment") == "green" {
			green++
		}
	}
	// Binomial(2000, 0.3): mean 600, sd 20.5; 5 sd either side.
	if math.Abs(float64(green)-600) > 5*20.5 {
		t.Errorf("green took %d of %d requests, want about 600", green, n)
	}
	f.e.ok("ml", "online-endpoint", "update", "-n", "taxi", "--traffic", "blue=100 green=0", "--mirror-traffic", "green=50", "-w", "mlw")
	for i := 0; i < 400; i++ {
		if status, _, hdr := f.post(t, f.scoringURI, f.key, "", `{"input_data": [[1, 1]]}`); status != 200 || hdr.Get("azureml-model-deployment") != "blue" {
			t.Fatalf("mirrored endpoint answered %d from %q", status, hdr.Get("azureml-model-deployment"))
		}
	}
	// The shadow's copies show in the metrics, answers discarded.
	deadline := time.Now().Add(10 * time.Second)
	mirrored := 0.0
	for time.Now().Before(deadline) {
		mirrored = metricValue(t, f.e, `wharf_endpoint_mirrored_requests_total{code="200",deployment="green",endpoint="taxi",workspace="mlw"}`)
		if mirrored >= 100 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Binomial(400, 0.5): mean 200, sd 10.
	if math.Abs(mirrored-200) > 50 {
		t.Errorf("%v mirrored copies of 400 requests at 50%%", mirrored)
	}
}

// metricValue reads one series from the server's /metrics as its owner:
// series that name workspaces and endpoints are shown only with a token.
func metricValue(t *testing.T, e *cliEnv, series string) float64 {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.HTTP.URL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(e.ok("account", "get-access-token", "--query", "accessToken", "-o", "tsv")))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, series+" ") {
			var v float64
			fmt.Sscanf(strings.TrimPrefix(line, series+" "), "%g", &v)
			return v
		}
	}
	return 0
}

// TestBlueGreenShiftUnderLoadFailsNothing shifts traffic step by step and
// updates the green deployment while clients keep scoring.
func TestBlueGreenShiftUnderLoadFailsNothing(t *testing.T) {
	f := newEndpointFixture(t, "key")
	var stop atomic.Bool
	var failures, total atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				req, _ := http.NewRequest(http.MethodPost, f.scoringURI, bytes.NewReader([]byte(`{"input_data": [[1, 1]]}`)))
				req.Header.Set("Authorization", "Bearer "+f.key)
				resp, err := client.Do(req)
				total.Add(1)
				if err != nil {
					failures.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failures.Add(1)
				}
			}
		}()
	}
	for _, split := range []string{"blue=90 green=10", "blue=50 green=50", "blue=0 green=100"} {
		f.e.ok("ml", "online-endpoint", "update", "-n", "taxi", "--traffic", split, "-w", "mlw")
		time.Sleep(100 * time.Millisecond)
	}
	// Updating the deployment that takes all traffic: the old runtime
	// serves until the new one is ready.
	dir := t.TempDir()
	writeFile(t, dir, "dep.yml", "name: green\nendpoint_name: taxi\nmodel: azureml:taxi-model:1\ninstance_count: 2\n"+
		"request_settings:\n  max_concurrent_requests_per_instance: 64\n")
	f.e.ok("ml", "online-deployment", "update", "-f", filepath.Join(dir, "dep.yml"), "-w", "mlw")
	time.Sleep(200 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if failures.Load() != 0 || total.Load() < 50 {
		t.Errorf("%d of %d requests failed during the shift", failures.Load(), total.Load())
	}
}

// collectThree turns on the data collector's collections for the fixture's
// deployment blue and sends it three scoring requests.
func collectThree(t *testing.T, f *endpointFixture, collections ...string) {
	t.Helper()
	dep := "name: blue\nendpoint_name: taxi\nmodel: azureml:taxi-model:1\ninstance_count: 1\ndata_collector:\n  collections:\n"
	for _, c := range collections {
		dep += "    " + c + ":\n      enabled: 'True'\n"
	}
	f.e.ok("ml", "online-deployment", "update", "-f", writeFile(t, t.TempDir(), "dep.yml", dep), "-w", "mlw")
	for i := 0; i < 3; i++ {
		if status, body, _ := f.post(t, f.scoringURI, f.key, "", fmt.Sprintf(`{"input_data": [[%d, 0]]}`, i)); status != 200 {
			t.Fatalf("%d %s", status, body)
		}
	}
}

func TestDataCollectorFilesRequestsAndResponses(t *testing.T) {
	f := newEndpointFixture(t, "key")
	collectThree(t, f, "model_inputs", "model_outputs")
	hour := time.Now().UTC().Format("2006/01/02/15")
	for _, col := range []string{"model_inputs", "model_outputs"} {
		// Each server files its own data, named by its instance.
		p := "modelDataCollector/taxi/blue/" + col + "/" + hour + "/" + f.e.srv.router.Instance + ".jsonl"
		var lines []string
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			df, err := f.e.srv.DB.FindDatastoreFile(t.Context(), "mlw", "workspaceblobstore", p)
			if err == nil {
				rc, _, err := f.e.srv.HTTP.Blobs.Open(t.Context(), df.Digest)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(rc)
				rc.Close()
				lines = strings.Split(strings.TrimSpace(string(b)), "\n")
				if len(lines) == 3 {
					break
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		if len(lines) != 3 {
			t.Fatalf("%s: %d lines filed", p, len(lines))
		}
		var rec struct {
			Deployment string          `json:"deployment"`
			Data       json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal([]byte(lines[2]), &rec); err != nil || rec.Deployment != "blue" {
			t.Fatalf("record %s: %v", lines[2], err)
		}
		// Rows as the data collector records a DataFrame: the
		// request's unnamed columns named by the model's signature.
		want := `[{"distance":2,"hour":0}]`
		if col == "model_outputs" {
			want = `[{"prediction":5}]`
		}
		if strings.TrimSpace(string(rec.Data)) != want {
			t.Errorf("%s record data %s, want %s", col, rec.Data, want)
		}
	}
}
