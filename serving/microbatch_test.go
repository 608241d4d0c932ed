package serving

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharfml/wharf/pyworker"
	"github.com/wharfml/wharf/scoring"
)

func TestParseMicroBatch(t *testing.T) {
	for _, tc := range []struct {
		env    map[string]string
		script bool
		want   MicroBatch
		bad    string
	}{
		{want: MicroBatch{On: true, MaxWait: DefaultMicroBatchMaxWait, MaxRows: DefaultMicroBatchMaxRows}},
		{script: true, want: MicroBatch{On: false, MaxWait: DefaultMicroBatchMaxWait, MaxRows: DefaultMicroBatchMaxRows}},
		{env: map[string]string{EnvMicroBatch: "off"}, want: MicroBatch{On: false, MaxWait: DefaultMicroBatchMaxWait, MaxRows: DefaultMicroBatchMaxRows}},
		{env: map[string]string{EnvMicroBatch: "On", EnvMicroBatchMaxWaitMS: "0.5", EnvMicroBatchMaxRows: "64"}, script: true,
			want: MicroBatch{On: true, MaxWait: 500 * time.Microsecond, MaxRows: 64}},
		{env: map[string]string{EnvMicroBatch: "maybe"}, bad: EnvMicroBatch},
		{env: map[string]string{EnvMicroBatchMaxWaitMS: "-1"}, bad: EnvMicroBatchMaxWaitMS},
		{env: map[string]string{EnvMicroBatchMaxRows: "0"}, bad: EnvMicroBatchMaxRows},
	} {
		got, err := ParseMicroBatch(tc.env, tc.script)
		var me *MicroBatchError
		switch {
		case tc.bad != "" && (!errors.As(err, &me) || me.Var != tc.bad):
			t.Errorf("ParseMicroBatch(%v): err = %v, want one about %s", tc.env, err, tc.bad)
		case tc.bad == "" && (err != nil || got != tc.want):
			t.Errorf("ParseMicroBatch(%v, %v) = %+v, %v; want %+v", tc.env, tc.script, got, err, tc.want)
		}
	}
}

func TestTableKeysSeparateWhatPandasTypesApart(t *testing.T) {
	key := func(body string, types ...string) string {
		t.Helper()
		f, err := scoring.Decode([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		f.Types = types
		tab, err := newTable(f)
		if err != nil {
			t.Fatal(err)
		}
		return tab.key
	}
	ints := key(`{"dataframe_split": {"columns": ["a"], "data": [[1], [2]]}}`)
	if ints == "" || ints != key(`{"input_data": {"columns": ["a"], "data": [[3]]}}`) {
		t.Error("two tables of whole numbers in the same column do not merge")
	}
	for _, other := range []string{
		`{"dataframe_split": {"columns": ["a"], "data": [[1.5]]}}`,
		`{"dataframe_split": {"columns": ["a"], "data": [[null]]}}`,
		`{"dataframe_split": {"columns": ["a"], "data": [[1], [null]]}}`,
		`{"dataframe_split": {"columns": ["a"], "data": [[99999999999999999999]]}}`,
		`{"dataframe_split": {"columns": ["b"], "data": [[1]]}}`,
		`{"dataframe_split": {"columns": ["a"], "data": [[1]]}, "params": {"p": 1}}`,
	} {
		if k := key(other); k == ints {
			t.Errorf("%s merges with whole numbers", other)
		}
	}
	// A double column is written with decimal points, whatever the
	// request wrote.
	if key(`{"dataframe_split": {"columns": ["a"], "data": [[1]]}}`, "double") != key(`{"dataframe_split": {"columns": ["a"], "data": [[1.5]]}}`, "double") {
		t.Error("1 and 1.5 in a double column do not merge")
	}
}

// recorderModel saves an MLflow pyfunc model over one double column x
// whose predict appends the x it got to $BATCH_LOG, one line per call, and
// answers 10·x per row ("rows") or one row with the sum of x ("sum"). A
// call with x = -1 in it waits until the file $BATCH_GATE exists; one with
// an x below -1 raises an MLflow error that MLflow's server answers 400.
const recorderModel = `
import sys
import mlflow.pyfunc
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

class Recorder(mlflow.pyfunc.PythonModel):
    def __init__(self, mode):
        self.mode = mode

    def predict(self, context, model_input, params=None):
        import json, os, time
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
        x = model_input["x"].tolist()
        with open(os.environ["BATCH_LOG"], "a") as f:
            f.write(json.dumps(x) + "\n")
        if -1.0 in x:
            while not os.path.exists(os.environ["BATCH_GATE"]):
                time.sleep(0.005)
        if any(v < -1 for v in x):
            raise MlflowException("x must not be below -1", error_code=INVALID_PARAMETER_VALUE)
        if self.mode == "sum":
            return [sum(x)]
        return [v * 10 for v in x]

mlflow.pyfunc.save_model(sys.argv[1], python_model=Recorder(sys.argv[2]),
                         signature=ModelSignature(inputs=Schema([ColSpec("double", "x")])))
`

func mlflowPython(t *testing.T) string {
	t.Helper()
	for _, v := range []string{"WHARF_TEST_MLFLOW3_PYTHON", "WHARF_TEST_MLFLOW2_PYTHON"} {
		if py := os.Getenv(v); py != "" {
			return py
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("WHARF_TEST_MLFLOW3_PYTHON is not set; run the suite with ./scripts/test")
	}
	t.Skip("WHARF_TEST_MLFLOW3_PYTHON not set; ./scripts/test builds the mlflow venv")
	return ""
}

// gatedRuntime is a runtime over one worker and the files its model or
// script records to.
type gatedRuntime struct {
	*pythonRuntime
	log, gate string
}

// startRecorder starts a pyfunc runtime with one worker on recorderModel.
func startRecorder(t *testing.T, mode string, mb MicroBatch) *gatedRuntime {
	t.Helper()
	py := mlflowPython(t)
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	if out, err := exec.Command(py, "-c", recorderModel, model, mode).CombinedOutput(); err != nil {
		t.Fatalf("saving the model: %v\n%s", err, out)
	}
	mm, err := scoring.ReadMLmodel(model)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := scoring.ParseMLflowSignature(mm.Signature.Inputs)
	if err != nil {
		t.Fatal(err)
	}
	return startGated(t, pyworker.Config{Python: py, Mode: pyworker.ModePyfunc, ModelDir: model}, dir, "mlflow_pyfunc", sig, mb)
}

func startGated(t *testing.T, cfg pyworker.Config, dir, platform string, sig *scoring.Signature, mb MicroBatch) *gatedRuntime {
	t.Helper()
	g := &gatedRuntime{log: filepath.Join(dir, "calls.log"), gate: filepath.Join(dir, "gate")}
	cfg.Instances = 1
	cfg.LogPath = filepath.Join(dir, "worker.log")
	cfg.StartTimeout = 2 * time.Minute
	cfg.Env = []string{"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8", "HOME=" + os.Getenv("HOME"),
		"BATCH_LOG=" + g.log, "BATCH_GATE=" + g.gate}
	pool, err := pyworker.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { pool.Close() })
	g.pythonRuntime = &pythonRuntime{pool: pool, platform: platform, sig: sig, name: "m", version: "1"}
	if mb.On {
		g.batch = newBatcher(cfg.Instances, mb.MaxRows, mb.MaxWait, g.scoreGroup)
	}
	return g
}

// calls returns what the model or script recorded, one entry per call.
func (g *gatedRuntime) calls(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(g.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func (g *gatedRuntime) score(body string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return g.Score(ctx, []byte(body), ProtocolScore)
}

// behindBlocker sends the blocking request, then each of bodies from its
// own goroutine, and opens the gate once queued of them wait in the
// batcher (the others are refused before). It returns each body's answer
// and error, in order.
func (g *gatedRuntime) behindBlocker(t *testing.T, blocker string, bodies []string, queued int) ([][]byte, []error) {
	t.Helper()
	blocked := make(chan error, 1)
	go func() {
		_, err := g.score(blocker)
		blocked <- err
	}()
	g.waitCalls(t, 1)
	outs := make([][]byte, len(bodies))
	errs := make([]error, len(bodies))
	var wg sync.WaitGroup
	for i, body := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = g.score(body)
		}()
	}
	if g.batch != nil {
		waitPending(t, g.batch, queued, 1)
	} else {
		// Nothing to observe: give the requests time to line up
		// behind the blocker, where a batcher would merge them.
		time.Sleep(200 * time.Millisecond)
	}
	if err := os.WriteFile(g.gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := <-blocked; err != nil {
		t.Fatalf("the blocking request: %v", err)
	}
	return outs, errs
}

func (g *gatedRuntime) waitCalls(t *testing.T, n int) {
	t.Helper()
	for range 60_000 {
		if b, _ := os.ReadFile(g.log); strings.Count(string(b), "\n") >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("the model was not called %d times", n)
}

// rowsBody is request i: i%3+1 rows whose x are i*100, i*100+1, ...
func rowsBody(i int) (string, []float64) {
	var rows []string
	var want []float64
	for r := range i%3 + 1 {
		x := i*100 + r
		rows = append(rows, fmt.Sprintf("[%d]", x))
		want = append(want, float64(x*10))
	}
	return fmt.Sprintf(`{"input_data": {"columns": ["x"], "data": [%s]}}`, strings.Join(rows, ",")), want
}

func TestMicroBatchMergesConcurrentRequests(t *testing.T) {
	g := startRecorder(t, "rows", MicroBatch{On: true, MaxWait: time.Hour, MaxRows: 1000})
	const n = 24
	var bodies []string
	var wants [][]float64
	for i := range n {
		b, w := rowsBody(i + 1)
		bodies, wants = append(bodies, b), append(wants, w)
	}
	outs, errs := g.behindBlocker(t, `{"input_data": {"columns": ["x"], "data": [[-1]]}}`, bodies, len(bodies))
	for i := range n {
		var got []float64
		if errs[i] != nil || json.Unmarshal(outs[i], &got) != nil || !slices.Equal(got, wants[i]) {
			t.Errorf("request %d: %s, %v; want %v", i, outs[i], errs[i], wants[i])
		}
	}
	calls := g.calls(t)
	if len(calls) != 2 {
		t.Fatalf("predict was called %d times for %d requests behind the blocker, want once for them all: %q", len(calls)-1, n, calls)
	}
	// A lone request afterwards goes alone.
	if out, err := g.score(`{"dataframe_split": {"columns": ["x"], "data": [[4]]}}`); err != nil || string(out) != `{"predictions":[40.0]}` {
		t.Errorf("lone request: %s, %v", out, err)
	}
}

func TestMicroBatchABadRequestFailsAlone(t *testing.T) {
	g := startRecorder(t, "rows", MicroBatch{On: true, MaxWait: time.Hour, MaxRows: 1000})
	bodies := []string{
		`{"input_data": {"columns": ["x"], "data": [[1]]}}`,
		`{"input_data": {"columns": ["x"], "data": [[-5]]}}`,     // the model refuses it
		`{"input_data": {"columns": ["x"], "data": [["text"]]}}`, // the signature refuses it
		`{"input_data": {"columns": ["x"], "data": [[2], [3]]}}`,
	}
	outs, errs := g.behindBlocker(t, `{"input_data": {"columns": ["x"], "data": [[-1]]}}`, bodies, 3)
	var reqErr *RequestError
	if !sameFloats(outs[0], 10) || errs[0] != nil {
		t.Errorf("good request 0: %s, %v", outs[0], errs[0])
	}
	if !errors.As(errs[1], &reqErr) || !strings.Contains(reqErr.Msg, "below -1") {
		t.Errorf("request 1: %s, %v; want its own 400 from the model", outs[1], errs[1])
	}
	if !errors.As(errs[2], &reqErr) {
		t.Errorf("request 2: %s, %v; want a 400 from the signature", outs[2], errs[2])
	}
	if !sameFloats(outs[3], 20, 30) || errs[3] != nil {
		t.Errorf("good request 3: %s, %v", outs[3], errs[3])
	}
	// The blocker; the three that passed the signature merged, which
	// failed; then each of them alone.
	calls := g.calls(t)
	var merged []float64
	if len(calls) == 5 {
		_ = json.Unmarshal([]byte(calls[1]), &merged)
		slices.Sort(merged)
	}
	if !slices.Equal(merged, []float64{-5, 1, 2, 3}) {
		t.Errorf("predict calls %q, want the blocker, the merged three, then each alone", calls)
	}
}

// sameFloats reports whether out is the JSON list want.
func sameFloats(out []byte, want ...float64) bool {
	var got []float64
	return json.Unmarshal(out, &got) == nil && slices.Equal(got, want)
}

func TestMicroBatchFallsBackWhenOutputRowsDiffer(t *testing.T) {
	g := startRecorder(t, "sum", MicroBatch{On: true, MaxWait: time.Hour, MaxRows: 1000})
	bodies := []string{
		`{"input_data": {"columns": ["x"], "data": [[1], [2]]}}`,
		`{"input_data": {"columns": ["x"], "data": [[10]]}}`,
		`{"input_data": {"columns": ["x"], "data": [[100], [200], [300]]}}`,
	}
	outs, errs := g.behindBlocker(t, `{"input_data": {"columns": ["x"], "data": [[-1]]}}`, bodies, len(bodies))
	for i, want := range []float64{3, 10, 600} {
		if !sameFloats(outs[i], want) || errs[i] != nil {
			t.Errorf("request %d: %s, %v; want [%v], its own sum", i, outs[i], errs[i], want)
		}
	}
	if calls := g.calls(t); len(calls) != 5 {
		t.Errorf("predict calls %q, want the blocker, the merged three, then each alone", calls)
	}
	if !g.unmerged.Load() {
		t.Error("the runtime still merges requests for a model whose output rows differ from its input rows")
	}
}

func TestMicroBatchOff(t *testing.T) {
	g := startRecorder(t, "rows", MicroBatch{On: false})
	var bodies []string
	for i := range 4 {
		b, _ := rowsBody(i + 1)
		bodies = append(bodies, b)
	}
	// Without a batcher the requests wait for the worker in the pool, so
	// wait for the calls instead of the queue.
	outs, errs := g.behindBlocker(t, `{"input_data": {"columns": ["x"], "data": [[-1]]}}`, bodies, len(bodies))
	for i := range bodies {
		if errs[i] != nil || len(outs[i]) == 0 {
			t.Errorf("request %d: %s, %v", i, outs[i], errs[i])
		}
	}
	calls := g.calls(t)
	if len(calls) != 5 {
		t.Errorf("predict calls %q, want one per request", calls)
	}
	for _, c := range calls[1:] {
		var x []float64
		if json.Unmarshal([]byte(c), &x) != nil || len(x) != len(slices.Compact(append([]float64{}, x...))) ||
			x[len(x)-1]-x[0] != float64(len(x)-1) || int(x[0])%100 != 0 {
			t.Errorf("predict call %s is not one request's rows", c)
		}
	}
}

// listScore is a score.py for micro-batching: run() gets a list of bodies
// and records its length; a body "block" waits for the gate, one "fail"
// raises.
const listScore = `
import json, os, time

def init():
    pass

def run(data):
    with open(os.environ["BATCH_LOG"], "a") as f:
        f.write("%s %d\n" % (type(data).__name__, len(data)))
    out = []
    for raw in data:
        req = json.loads(raw)
        if req == "block":
            while not os.path.exists(os.environ["BATCH_GATE"]):
                time.sleep(0.005)
            out.append("unblocked")
        elif req == "fail":
            raise ValueError("cannot score this one")
        else:
            out.append(req * 2)
    return out
`

func TestMicroBatchScoreScriptOptIn(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not on PATH")
	}
	dir := t.TempDir()
	code := filepath.Join(dir, "code")
	if err := os.MkdirAll(code, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(code, "score.py"), []byte(listScore), 0o644); err != nil {
		t.Fatal(err)
	}
	mb, err := ParseMicroBatch(map[string]string{EnvMicroBatch: "on", EnvMicroBatchMaxWaitMS: "60000"}, true)
	if err != nil {
		t.Fatal(err)
	}
	g := startGated(t, pyworker.Config{Python: py, Mode: pyworker.ModeScore, ModelDir: dir, CodeDir: code, ScoringScript: "score.py"},
		dir, "score_py", nil, mb)
	outs, errs := g.behindBlocker(t, `"block"`, []string{`1`, `"fail"`, `3`}, 3)
	var userErr *UserError
	if string(outs[0]) != "2" || errs[0] != nil || string(outs[2]) != "6" || errs[2] != nil {
		t.Errorf("good requests: %s, %v; %s, %v", outs[0], errs[0], outs[2], errs[2])
	}
	if !errors.As(errs[1], &userErr) || !strings.Contains(userErr.Msg, "cannot score this one") {
		t.Errorf("failing request: %s, %v; want its own 424", outs[1], errs[1])
	}
	// run() got lists: the blocker's, the three together (which raised),
	// then each alone.
	calls := g.calls(t)
	if !slices.Equal(calls, []string{"list 1", "list 3", "list 1", "list 1", "list 1"}) {
		t.Errorf("run() calls %q", calls)
	}
}
