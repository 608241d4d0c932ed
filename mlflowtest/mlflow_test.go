// Package mlflowtest runs the unchanged Python mlflow client, both the 2.x
// and the 3.x generation, against a real `wharf server` process.
//
// The Python interpreters come from the venvs that ./scripts/test builds from
// requirements-mlflow2.txt and requirements-mlflow3.txt, named by
// WHARF_TEST_MLFLOW2_PYTHON and WHARF_TEST_MLFLOW3_PYTHON. Without them the
// tests skip, except under CI, where they fail.
package mlflowtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/internal/testbin"
)

// pythonTimeout bounds each Python script run.
const pythonTimeout = 5 * time.Minute

// wharfBinary is the built wharf binary.
func wharfBinary(t *testing.T) string { return testbin.Wharf(t) }

// runIDRE is the run id check of the mlflow client (_validate_run_id).
var runIDRE = regexp.MustCompile(`^[a-zA-Z0-9][\w\-]{0,255}$`)

var listenRE = regexp.MustCompile(`msg="wharf server listening" url=(\S+)`)

// syncBuffer collects a process's output from one goroutine while the test
// reads it from another.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer runs `wharf server` on a fresh data dir and a free port, and
// returns its data dir and URL. The server is killed when the test ends; if
// the test failed, the tail of the server's log goes into the test log.
func startServer(t *testing.T) (dataDir, base string) {
	t.Helper()
	dataDir = t.TempDir()
	cmd := exec.Command(wharfBinary(t), "server", "--data-dir", dataDir, "--addr", "127.0.0.1:0", "--log-level", "info")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("wharf server log (tail):\n%s", tail(logs.String(), 200))
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			_, _ = logs.Write([]byte(line + "\n"))
			if m := listenRE.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(logs, stderr)
	}()
	select {
	case u := <-found:
		return dataDir, u
	case <-time.After(60 * time.Second):
		t.Fatalf("wharf server did not start within 60s; log:\n%s", logs.String())
	}
	return "", ""
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func staticToken(tok string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return tok, nil }
}

// ownerToken reads the bootstrap owner's credentials and gets a token.
func ownerToken(t *testing.T, dataDir, base string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "owner-credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c wharfhttp.SDKAuth
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	tok, _, err := wharfhttp.RequestToken(context.Background(), base, c.TenantID, c.ClientID, c.ClientSecret)
	if err != nil {
		t.Fatalf("owner token: %v", err)
	}
	return tok
}

// principalToken creates a service principal with role at scope and returns
// a token for it.
func principalToken(t *testing.T, owner *wharfhttp.Client, base, name, role, scope string) string {
	t.Helper()
	ctx := context.Background()
	var cred struct {
		AppID    string `json:"appId"`
		Password string `json:"password"`
		Tenant   string `json:"tenant"`
	}
	req := map[string]any{"displayName": name, "role": role, "scopes": []string{scope}}
	if err := owner.Do(ctx, "POST", "/api/v1/servicePrincipals", req, &cred); err != nil {
		t.Fatalf("create service principal %s (%s at %s): %v", name, role, scope, err)
	}
	if cred.AppID == "" || cred.Password == "" {
		t.Fatalf("create service principal %s: response lacks appId or password: %+v", name, cred)
	}
	tok, _, err := wharfhttp.RequestToken(ctx, base, cred.Tenant, cred.AppID, cred.Password)
	if err != nil {
		t.Fatalf("token for %s: %v", name, err)
	}
	return tok
}

// mlflowPython returns the interpreter named by env, skipping the test when
// it is unset, or failing it under CI, which must never skip silently.
func mlflowPython(t *testing.T, env string) string {
	t.Helper()
	py := os.Getenv(env)
	if py == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set; run the suite with ./scripts/test, which builds the MLflow venvs", env)
		}
		t.Skipf("%s not set; ./scripts/test builds the MLflow client venvs", env)
	}
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("%s=%s: %v", env, py, err)
	}
	return py
}

// pythonEnv is the environment of one script run: the test's own, less any
// MLflow settings, plus the tracking URI and token.
func pythonEnv(trackingURI, token string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "MLFLOW_") {
			continue
		}
		env = append(env, kv)
	}
	noProxy := "127.0.0.1,localhost"
	if v := os.Getenv("NO_PROXY"); v != "" {
		noProxy += "," + v
	}
	return append(env,
		"MLFLOW_TRACKING_URI="+trackingURI,
		"MLFLOW_TRACKING_TOKEN="+token,
		"MLFLOW_HTTP_REQUEST_MAX_RETRIES=0",
		"MLFLOW_HTTP_REQUEST_TIMEOUT=60",
		"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false",
		"MLFLOW_DISABLE_TELEMETRY=true",
		"DO_NOT_TRACK=true",
		"PYTHONUNBUFFERED=1",
		"PYTHONDONTWRITEBYTECODE=1",
		"NO_PROXY="+noProxy,
		"no_proxy="+noProxy,
	)
}

// runScript runs testdata/<script> under py and decodes the JSON summary on
// the last line of its stdout into out. On failure the script's whole output
// goes into the test log.
func runScript(t *testing.T, py, script string, env []string, out any, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pythonTimeout)
	defer cancel()
	path, err := filepath.Abs(filepath.Join("testdata", script))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, py, append([]string{path}, args...)...)
	cmd.Env = env
	cmd.Dir = t.TempDir() // mlflow may write ./mlruns or temp files here
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, all bytes.Buffer
	cmd.Stdout = io.MultiWriter(&stdout, &all)
	cmd.Stderr = &all
	start := time.Now()
	err = cmd.Run()
	elapsed := time.Since(start).Round(100 * time.Millisecond)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("%s %s: timed out after %s; output:\n%s", script, strings.Join(args, " "), pythonTimeout, all.String())
	}
	if err != nil {
		t.Fatalf("%s %s: %v after %s; output:\n%s", script, strings.Join(args, " "), err, elapsed, all.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if err := json.Unmarshal([]byte(last), out); err != nil {
		t.Fatalf("%s: last stdout line is not the JSON summary (%v): %q; output:\n%s", script, err, last, all.String())
	}
	t.Logf("%s (%s): %s", script, elapsed, last)
}

type canonicalSummary struct {
	Client         string    `json:"client"`
	Experiment     string    `json:"experiment"`
	ExperimentID   string    `json:"experiment_id"`
	Model          string    `json:"model"`
	Versions       int       `json:"versions"`
	RunIDs         []string  `json:"run_ids"`
	Alphas         []float64 `json:"alphas"`
	ArtifactURIs   []string  `json:"artifact_uris"`
	ModelURIs      []string  `json:"model_uris"`
	Champion       string    `json:"champion"`
	SearchFiltered []string  `json:"search_filtered"`
	SearchOrder    []string  `json:"search_order"`
	MetricSteps    int       `json:"metric_steps"`
	DatasetInputs  int       `json:"dataset_inputs"`
	NotFoundError  string    `json:"not_found_error"`
}

type readerSummary struct {
	Client       string   `json:"client"`
	RunsSeen     int      `json:"runs_seen"`
	VersionsSeen int      `json:"versions_seen"`
	Denied       []string `json:"denied"`
}

type isolationSummary struct {
	Client        string   `json:"client"`
	Checks        []string `json:"checks"`
	BExperimentID string   `json:"b_experiment_id"`
	BRunID        string   `json:"b_run_id"`
}

// fixture is one Wharf server with two workspaces and the principals the
// scripts run as.
type fixture struct {
	base        string
	owner       *wharfhttp.Client
	ownerToken  string
	dsToken     string // Data Scientist at /workspaces/ws-a
	readerToken string // Reader at /workspaces/ws-a
}

func (f *fixture) trackingURI(ws string) string {
	return f.base + "/mlflow/v1.0/workspaces/" + ws
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dataDir, base := startServer(t)
	f := &fixture{base: base}
	f.ownerToken = ownerToken(t, dataDir, base)
	f.owner = wharfhttp.NewClient(base, staticToken(f.ownerToken))
	ctx := context.Background()
	for _, ws := range []string{"ws-a", "ws-b"} {
		if err := f.owner.Do(ctx, "PUT", "/api/v1/workspaces/"+ws, map[string]any{}, nil); err != nil {
			t.Fatalf("create workspace %s: %v", ws, err)
		}
	}
	f.dsToken = principalToken(t, f.owner, base, "ds", "Data Scientist", "/workspaces/ws-a")
	f.readerToken = principalToken(t, f.owner, base, "reader", "Reader", "/workspaces/ws-a")
	return f
}

// TestMLflowClients runs the canonical log -> register -> search -> load
// sequence, a Reader's view and workspace isolation with each generation of
// the real mlflow client against one Wharf server.
func TestMLflowClients(t *testing.T) {
	gens := []struct{ name, env string }{
		{"mlflow2", "WHARF_TEST_MLFLOW2_PYTHON"},
		{"mlflow3", "WHARF_TEST_MLFLOW3_PYTHON"},
	}
	// Start the server only if some client is there to use it; each subtest
	// then skips or fails on its own.
	haveClient := false
	for _, g := range gens {
		haveClient = haveClient || os.Getenv(g.env) != ""
	}
	var f *fixture
	if haveClient {
		f = newFixture(t)
	}
	for _, g := range gens {
		t.Run(g.name, func(t *testing.T) {
			py := mlflowPython(t, g.env)
			testGeneration(t, f, py, g.name)
		})
	}
}

func testGeneration(t *testing.T, f *fixture, py, gen string) {
	exp, model := "wharf-canonical-"+gen, "wharf-model-"+gen

	var c canonicalSummary
	runScript(t, py, "canonical.py", pythonEnv(f.trackingURI("ws-a"), f.dsToken), &c,
		"--experiment", exp, "--model", model)
	if major := strings.TrimPrefix(gen, "mlflow") + "."; !strings.HasPrefix(c.Client, major) {
		t.Errorf("canonical.py ran mlflow %s, want %sx", c.Client, major)
	}
	checkCanonical(t, c, exp, model)
	if t.Failed() {
		return
	}
	checkRegistryFromGo(t, f, c)

	var r readerSummary
	runScript(t, py, "reader.py", pythonEnv(f.trackingURI("ws-a"), f.readerToken), &r,
		"--experiment-id", c.ExperimentID, "--run-id", c.RunIDs[0], "--model", model)
	if r.RunsSeen != 3 || r.VersionsSeen != 3 {
		t.Errorf("reader saw %d runs and %d versions, want 3 and 3", r.RunsSeen, r.VersionsSeen)
	}
	wantDenied := []string{"log_metric", "set_tag", "create_experiment", "set_registered_model_alias"}
	if strings.Join(r.Denied, ",") != strings.Join(wantDenied, ",") {
		t.Errorf("reader denied %v, want %v", r.Denied, wantDenied)
	}

	// The owner may use both workspaces, so what it cannot see from ws-b is
	// kept apart by the store, not by its role.
	var iso isolationSummary
	runScript(t, py, "isolation.py", pythonEnv(f.trackingURI("ws-b"), f.ownerToken), &iso,
		"--experiment", exp, "--experiment-id", c.ExperimentID, "--run-id", c.RunIDs[0],
		"--model", model, "--artifact-uri", c.ArtifactURIs[0])
	for _, want := range []string{"get_run", "experiment_names", "search_runs", "metric_history", "registry", "load_model", "same_name_in_b"} {
		if !contains(iso.Checks, want) {
			t.Errorf("isolation.py did not run check %q (ran %v)", want, iso.Checks)
		}
	}
	if u := c.ArtifactURIs[0]; strings.HasPrefix(u, "mlflow-artifacts:/") && !strings.HasPrefix(u, "mlflow-artifacts://") && !contains(iso.Checks, "artifacts") {
		t.Errorf("isolation.py did not try workspace A's artifacts %s through workspace B", u)
	}
	if contains(c.RunIDs, iso.BRunID) {
		t.Errorf("workspace B's run id %s is one of workspace A's", iso.BRunID)
	}

	// Workspace B's writes left A's registry as it was.
	checkRegistryFromGo(t, f, c)
}

func checkCanonical(t *testing.T, c canonicalSummary, exp, model string) {
	t.Helper()
	if c.Experiment != exp || c.Model != model {
		t.Errorf("summary names experiment %q and model %q, want %q and %q", c.Experiment, c.Model, exp, model)
	}
	if c.ExperimentID == "" {
		t.Error("summary has no experiment_id")
	}
	if c.Versions != 3 {
		t.Errorf("versions = %d, want 3", c.Versions)
	}
	if len(c.RunIDs) != 3 || len(c.ArtifactURIs) != 3 || len(c.Alphas) != 3 {
		t.Fatalf("summary has %d run ids, %d artifact URIs, %d alphas; want 3 each", len(c.RunIDs), len(c.ArtifactURIs), len(c.Alphas))
	}
	seen := map[string]bool{}
	for _, id := range c.RunIDs {
		if !runIDRE.MatchString(id) {
			t.Errorf("run id %q is not a valid MLflow run id", id)
		}
		if seen[id] {
			t.Errorf("run id %s appears twice", id)
		}
		seen[id] = true
	}
	if c.Champion != "2" {
		t.Errorf("champion = %q, want 2", c.Champion)
	}
	// alphas are [0.5, 0.1, 1.0] and rmse grows with alpha.
	if len(c.SearchFiltered) != 1 || c.SearchFiltered[0] != c.RunIDs[0] {
		t.Errorf("search for alpha=0.5 gave %v, want [%s]", c.SearchFiltered, c.RunIDs[0])
	}
	wantOrder := []string{c.RunIDs[1], c.RunIDs[0], c.RunIDs[2]}
	if strings.Join(c.SearchOrder, ",") != strings.Join(wantOrder, ",") {
		t.Errorf("search ordered by rmse gave %v, want %v", c.SearchOrder, wantOrder)
	}
	if c.MetricSteps != 10 {
		t.Errorf("metric history has %d steps, want 10", c.MetricSteps)
	}
	if c.DatasetInputs != 3 {
		t.Errorf("dataset inputs = %d, want 3 (one per run)", c.DatasetInputs)
	}
	if c.NotFoundError != "RESOURCE_DOES_NOT_EXIST" {
		t.Errorf("unknown run gave %q, want RESOURCE_DOES_NOT_EXIST", c.NotFoundError)
	}
}

// checkRegistryFromGo reads the registry through the MLflow REST API as the
// owner: the model the script registered has versions 1, 2, 3 pointing at the
// script's runs, which the tracking side knows in the same experiment.
func checkRegistryFromGo(t *testing.T, f *fixture, c canonicalSummary) {
	t.Helper()
	ctx := context.Background()
	api := "/mlflow/v1.0/workspaces/ws-a/api/2.0/mlflow/"

	var search struct {
		ModelVersions []struct {
			Name    string `json:"name"`
			Version string `json:"version"`
			RunID   string `json:"run_id"`
			Status  string `json:"status"`
			Source  string `json:"source"`
		} `json:"model_versions"`
	}
	q := url.Values{"filter": {fmt.Sprintf("name='%s'", c.Model)}, "max_results": {"100"}}
	if err := f.owner.Do(ctx, "GET", api+"model-versions/search?"+q.Encode(), nil, &search); err != nil {
		t.Fatalf("model-versions/search: %v", err)
	}
	got := make([]string, 0, len(search.ModelVersions))
	for _, v := range search.ModelVersions {
		if v.Name != c.Model {
			t.Errorf("model-versions/search for %q returned a version of %q", c.Model, v.Name)
		}
		if v.Status != "READY" {
			t.Errorf("version %s status %q, want READY", v.Version, v.Status)
		}
		got = append(got, v.Version+":"+v.RunID)
	}
	sort.Strings(got)
	want := []string{"1:" + c.RunIDs[0], "2:" + c.RunIDs[1], "3:" + c.RunIDs[2]}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("registry from Go: versions %v, want %v", got, want)
	}

	var rm struct {
		RegisteredModel struct {
			Name    string `json:"name"`
			Aliases []struct {
				Alias   string `json:"alias"`
				Version string `json:"version"`
			} `json:"aliases"`
		} `json:"registered_model"`
	}
	if err := f.owner.Do(ctx, "GET", api+"registered-models/get?"+url.Values{"name": {c.Model}}.Encode(), nil, &rm); err != nil {
		t.Fatalf("registered-models/get: %v", err)
	}
	champion := ""
	for _, a := range rm.RegisteredModel.Aliases {
		if a.Alias == "champion" {
			champion = a.Version
		}
	}
	if champion != "2" {
		t.Errorf("registered model %s: alias champion -> %q, want 2 (aliases %+v)", c.Model, champion, rm.RegisteredModel.Aliases)
	}

	for i, id := range c.RunIDs {
		var run struct {
			Run struct {
				Info struct {
					RunID        string `json:"run_id"`
					ExperimentID string `json:"experiment_id"`
					Status       string `json:"status"`
				} `json:"info"`
			} `json:"run"`
		}
		if err := f.owner.Do(ctx, "GET", api+"runs/get?"+url.Values{"run_id": {id}}.Encode(), nil, &run); err != nil {
			t.Errorf("runs/get %s: %v", id, err)
			continue
		}
		if run.Run.Info.RunID != id || run.Run.Info.ExperimentID != c.ExperimentID || run.Run.Info.Status != "FINISHED" {
			t.Errorf("run %d from Go: %+v, want id %s in experiment %s, FINISHED", i+1, run.Run.Info, id, c.ExperimentID)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
