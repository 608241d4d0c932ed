package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/wharfml/wharf/linear"
	"github.com/wharfml/wharf/steps"
	"github.com/wharfml/wharf/tabular"
)

// copyTree copies the example's files (not its generated data) so the
// test writes nothing into the repository.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() && (rel == "data" || rel == "outputs") {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestQuickstartRunsTheTaxiLoopAndIsRerunnable runs `wharf quickstart`
// against a server process: infra, data, the prep → train → evaluate →
// register pipeline of Go components, the online and the batch endpoint.
// A second run reuses every step and registers nothing; a deliberately
// worse candidate is compared with the registered version and not
// registered.
func TestQuickstartRunsTheTaxiLoopAndIsRerunnable(t *testing.T) {
	root := t.TempDir()
	dataDir := filepath.Join(root, "server")
	_, base := startProcess(t, dataDir, "")
	wharf := cliAgainst(t, dataDir, base)
	example := filepath.Join(root, "taxi")
	copyTree(t, filepath.Join(repoRoot(t), "examples", "taxi"), example)

	quick := func() string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(context.Background(), []string{"quickstart", "--url", base, "--example", example, "--rows", "20000"}, strings.NewReader(""), &out, &errb); code != 0 {
			t.Fatalf("quickstart: exit %d\n%s\n%s", code, out.String(), errb.String())
		}
		return out.String()
	}
	out := quick()
	const ws = "mlw-taxi-0001dev"
	if !strings.Contains(out, "A new version of taxi-model was registered") {
		t.Errorf("first run registered nothing:\n%s", out)
	}
	// The monitor finds drift on exactly the features --drift shifts.
	if !regexp.MustCompile(`Monitor job \S+: data_drift breached on distance, passengers \(`).MatchString(out) {
		t.Errorf("the monitor did not report drift on exactly distance and passengers:\n%s", out)
	}
	for _, step := range []string{"prep_data", "train_model", "evaluate_model", "register_model"} {
		if !strings.Contains(out, "["+step+"]") {
			t.Errorf("no progress lines of step %s in the output", step)
		}
	}

	// The registered model has metrics and lineage to the register step's
	// run, which belongs to the pipeline.
	v := map[string]any{}
	if err := json.Unmarshal([]byte(wharf("ml", "model", "show", "--name", "taxi-model", "--version", "1", "-w", ws)), &v); err != nil {
		t.Fatal(err)
	}
	stepJob, _ := v["job_name"].(string)
	tags, _ := v["tags"].(map[string]any)
	if !strings.HasSuffix(stepJob, "_register_model") || tags["r2"] == nil {
		t.Fatalf("model version 1 lacks lineage to the register step or its r2 tag: %v", v)
	}
	pipeline := strings.TrimSuffix(stepJob, "_register_model")
	if st := strings.TrimSpace(wharf("ml", "job", "show", "-n", pipeline, "-w", ws, "--query", "status", "-o", "tsv")); st != "Completed" {
		t.Errorf("pipeline %s: %s", pipeline, st)
	}

	// The pipeline's metrics: row counts from prep, test scores from
	// evaluate, in the steps' runs.
	rows := 0.0
	for _, m := range []string{"train_rows", "val_rows", "test_rows"} {
		n, err := strconv.ParseFloat(strings.TrimSpace(wharf("ml", "job", "show", "-n", pipeline+"_prep_data", "-w", ws, "--query", "metrics."+m, "-o", "tsv")), 64)
		if err != nil {
			t.Fatalf("metric %s: %v", m, err)
		}
		rows += n
	}
	if rows != 20000 {
		t.Errorf("prep split %v rows, want 20000", rows)
	}
	r2, err := strconv.ParseFloat(strings.TrimSpace(wharf("ml", "job", "show", "-n", pipeline+"_evaluate_model", "-w", ws, "--query", "metrics.test_r2", "-o", "tsv")), 64)
	if err != nil || r2 < 0.9 || r2 > 1 {
		t.Errorf("evaluate test_r2 = %v (%v), want a good fit on generated fares", r2, err)
	}

	// The online endpoint answers what the registered model computes.
	dl := t.TempDir()
	wharf("ml", "model", "download", "--name", "taxi-model", "--version", "1", "--download-path", dl, "-w", ws)
	model, err := linear.Load(filepath.Join(dl, "taxi-model"), "")
	if err != nil {
		t.Fatal(err)
	}
	var req struct {
		InputData [][]float64 `json:"input_data"`
	}
	b, err := os.ReadFile(filepath.Join(example, "data", "taxi-request.json"))
	if err != nil || json.Unmarshal(b, &req) != nil {
		t.Fatalf("request file: %v", err)
	}
	var got []float64
	raw := wharf("ml", "online-endpoint", "invoke", "-n", "taxi-online", "--request-file", filepath.Join(example, "data", "taxi-request.json"), "-w", ws)
	var s string
	if err := json.Unmarshal([]byte(raw), &s); err != nil || json.Unmarshal([]byte(s), &got) != nil || len(got) != len(req.InputData) {
		t.Fatalf("invoke answered %q", raw)
	}
	for i, row := range req.InputData {
		if want := model.Predict(row); math.Abs(got[i]-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("prediction %d: %v, the model computes %v", i, got[i], want)
		}
	}

	// The batch endpoint scored every row of the batch file.
	preds, _ := filepath.Glob(filepath.Join(example, "outputs", "*", "named-outputs", "score", "predictions.csv"))
	if len(preds) != 1 {
		t.Fatalf("batch predictions: %v", preds)
	}
	assertBatchPredictions(t, model, filepath.Join(example, "data", "taxi-batch.csv"), preds[0])

	// Again: every step reused, nothing registered, the deployment kept.
	out = quick()
	if !strings.Contains(out, "No new version of taxi-model") || strings.Contains(out, "online-deployment create") {
		t.Errorf("second run:\n%s", out)
	}
	if n := strings.TrimSpace(wharf("ml", "model", "list", "--name", "taxi-model", "-w", ws, "--query", "length(@)", "-o", "tsv")); n != "1" {
		t.Errorf("%s versions after the second run, want 1", n)
	}

	// A deliberately worse candidate (ridge with a huge penalty) is
	// compared with version 1 on the same test set and not registered.
	pipe, err := os.ReadFile(filepath.Join(example, "mlops", "azureml", "train", "pipeline.yml"))
	if err != nil {
		t.Fatal(err)
	}
	worse := strings.Replace(string(pipe), "--target ${{inputs.target}}\n      --model-output", "--target ${{inputs.target}} --alpha 1e12\n      --model-output", 1)
	if worse == string(pipe) {
		t.Fatal("could not add --alpha to the train step")
	}
	worsePath := writeFile(t, filepath.Join(example, "mlops", "azureml", "train"), "pipeline-worse.yml", worse)
	name := strings.TrimSpace(wharf("ml", "job", "create", "--file", worsePath, "-w", ws, "--query", "name", "-o", "tsv"))
	wharf("ml", "job", "stream", "-n", name, "-w", ws)
	if st := strings.TrimSpace(wharf("ml", "job", "show", "-n", name, "-w", ws, "--query", "status", "-o", "tsv")); st != "Completed" {
		t.Fatalf("worse pipeline ended %s", st)
	}
	if f := strings.TrimSpace(wharf("ml", "job", "show", "-n", name+"_evaluate_model", "-w", ws, "--query", "metrics.deploy_flag", "-o", "tsv")); f != "0" {
		t.Errorf("deploy_flag of the worse model = %q, want 0", f)
	}
	if n := strings.TrimSpace(wharf("ml", "model", "list", "--name", "taxi-model", "-w", ws, "--query", "length(@)", "-o", "tsv")); n != "1" {
		t.Errorf("%s versions after a worse candidate, want 1", n)
	}
	evDir := t.TempDir()
	wharf("ml", "job", "download", "-n", name+"_evaluate_model", "--output-name", "evaluation_output", "--download-path", evDir, "-w", ws)
	var ev steps.Evaluation
	b, err = os.ReadFile(filepath.Join(evDir, "named-outputs", "evaluation_output", "metrics.json"))
	if err != nil || json.Unmarshal(b, &ev) != nil {
		t.Fatalf("metrics.json: %v", err)
	}
	if len(ev.Registered) != 1 || ev.Registered[0].Version != "1" || ev.Registered[0].Scores.R2 <= ev.Candidate.R2 || ev.DeployFlag != 0 {
		t.Errorf("evaluation %+v", ev)
	}
	for _, f := range []string{"perf_comparison.png", "perf_comparison.svg", "predictions.csv", "deploy_flag"} {
		if st, err := os.Stat(filepath.Join(evDir, "named-outputs", "evaluation_output", f)); err != nil || st.Size() == 0 {
			t.Errorf("evaluation output %s: %v", f, err)
		}
	}
}

// assertBatchPredictions checks that the batch output holds one
// prediction per input row, attributed to its row, equal to the model's.
func assertBatchPredictions(t *testing.T, m *linear.Model, input, output string) {
	t.Helper()
	in, err := tabular.Open(input, tabular.Options{BatchRows: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	f, err := in.Next()
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.PredictFrame(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(output)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != len(want)+1 {
		t.Fatalf("%d output lines for %d input rows", len(lines), len(want))
	}
	seen := map[int]bool{}
	for _, l := range lines[1:] {
		parts := strings.Split(l, ",")
		row, err1 := strconv.Atoi(parts[len(parts)-2])
		p, err2 := strconv.ParseFloat(parts[len(parts)-1], 64)
		if err1 != nil || err2 != nil || row < 1 || row > len(want) || seen[row] {
			t.Fatalf("bad output line %q", l)
		}
		seen[row] = true
		if math.Abs(p-want[row-1]) > 1e-9*math.Max(1, math.Abs(want[row-1])) {
			t.Fatalf("row %d: %v, the model computes %v", row, p, want[row-1])
		}
	}
}

// TestQuickstartSaysWhichCredentialItUses: against a running server the
// quickstart names the principal it acts as and where its credential came
// from, before the first step, and never prints the secret. A Reader's
// credential is refused at the first step, which keeps this short.
func TestQuickstartSaysWhichCredentialItUses(t *testing.T) {
	e := newCLIEnv(t)
	sdkAuth := e.ok("ad", "sp", "create-for-rbac", "--name", "quickstart-reader", "--role", "Reader", "--scopes", "/", "--sdk-auth")
	var reader credentials
	if err := json.Unmarshal([]byte(sdkAuth), &reader); err != nil || reader.ClientSecret == "" {
		t.Fatalf("--sdk-auth output: %v\n%s", err, sdkAuth)
	}
	t.Setenv("WHARF_CREDENTIALS", sdkAuth)
	example := t.TempDir()
	infra, err := os.ReadFile(filepath.Join(repoRoot(t), "examples", "taxi", "config-infra-dev.yml"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, example, "config-infra-dev.yml", string(infra))

	out, errs, code := e.wharf("quickstart", "--url", e.srv.HTTP.URL, "--example", example)
	want := "Acting as service principal " + reader.ClientID + " (tenant " + reader.TenantID + "), from $WHARF_CREDENTIALS, at " + e.srv.HTTP.URL
	if !strings.Contains(out, want) {
		t.Errorf("quickstart output lacks %q:\n%s", want, out)
	}
	if code == 0 || !strings.Contains(errs, "AuthorizationFailed") {
		t.Errorf("a Reader's quickstart: exit %d, stderr %q; want the first step refused", code, errs)
	}
	if strings.Contains(out+errs, reader.ClientSecret) || strings.Contains(out+errs, reader.ClientSecret[3:20]) {
		t.Fatal("the quickstart printed the client secret")
	}
}

// repoRoot is the folder of go.mod above the test's working directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}
