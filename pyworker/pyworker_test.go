package pyworker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// hostPython returns the host's python3, which the score mode tests need
// and nothing else.
func hostPython(t testing.TB) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("python3 is not on PATH")
		}
		t.Skip("python3 is not on PATH")
	}
	return py
}

// testEnv is a small environment for workers, so that nothing in the
// developer's (PYTHONPATH, VIRTUAL_ENV) changes what they import.
func testEnv() []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8"}
	for _, k := range []string{"HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// startScore writes src as score.py and starts a score mode pool on it.
func startScore(t testing.TB, src string, instances int) (*Pool, Config) {
	t.Helper()
	cfg := scoreConfig(t, src, instances)
	p, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p, cfg
}

func scoreConfig(t testing.TB, src string, instances int) Config {
	t.Helper()
	py := hostPython(t)
	dir := t.TempDir()
	code := filepath.Join(dir, "code")
	model := filepath.Join(dir, "model")
	for _, d := range []string{code, model} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(code, "score.py"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return Config{
		Python:        py,
		Mode:          ModeScore,
		ModelDir:      model,
		CodeDir:       code,
		ScoringScript: "score.py",
		Env:           testEnv(),
		Instances:     instances,
		LogPath:       filepath.Join(dir, "worker.log"),
		StartTimeout:  30 * time.Second,
	}
}

func predict(t testing.TB, p *Pool, body string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := p.Predict(ctx, []byte(body))
	if err != nil {
		t.Fatalf("Predict(%s): %v", body, err)
	}
	return string(out)
}

const greetScore = `
import json, os
import helper

greeting = None

def init():
    global greeting
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "greeting.txt")) as f:
        greeting = f.read().strip()

def run(raw):
    req = json.loads(raw)
    kind = req.get("kind")
    if kind == "text":
        return "plain text"
    if kind == "fail":
        raise ValueError("bad value %d" % req["n"])
    if kind == "nan":
        return [float("nan"), 1.5]
    return [greeting, helper.double(sum(req["data"])), 0.1 * 3]
`

func TestScore(t *testing.T) {
	cfg := scoreConfig(t, greetScore, 1)
	if err := os.WriteFile(filepath.Join(cfg.ModelDir, "greeting.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A module next to score.py must be importable, as under Azure.
	if err := os.WriteFile(filepath.Join(cfg.CodeDir, "helper.py"), []byte("def double(x):\n    return 2 * x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer p.Close()
	if !p.Ready() {
		t.Fatal("Ready() = false after Start")
	}

	if got, want := predict(t, p, `{"data": [1, 2, 3]}`), `["hello", 12, 0.30000000000000004]`; got != want {
		t.Errorf("answer = %s, want %s", got, want)
	}
	// A str from run is JSON-encoded, as Azure's server does.
	if got, want := predict(t, p, `{"kind": "text"}`), `"plain text"`; got != want {
		t.Errorf("str answer = %s, want %s", got, want)
	}
	// JSON has no NaN.
	if got, want := predict(t, p, `{"kind": "nan"}`), `[null, 1.5]`; got != want {
		t.Errorf("NaN answer = %s, want %s", got, want)
	}

	_, err = p.Predict(context.Background(), []byte(`{"kind": "fail", "n": 3}`))
	var me *ModelError
	if !errors.As(err, &me) || me.Type != "ValueError" || me.Message != "bad value 3" {
		t.Fatalf("Predict of failing run: err = %v (%T), want ModelError ValueError: bad value 3", err, err)
	}
	if err.Error() != "ValueError: bad value 3" {
		t.Errorf("Error() = %q", err.Error())
	}
	// The worker survives its script's exceptions.
	if got, want := predict(t, p, `{"data": [5]}`), `["hello", 10, 0.30000000000000004]`; got != want {
		t.Errorf("answer after an error = %s, want %s", got, want)
	}
	if p.Restarts() != 0 {
		t.Errorf("Restarts() = %d, want 0", p.Restarts())
	}

	// The traceback reaches the log.
	deadline := time.Now().Add(5 * time.Second)
	for {
		log, _ := os.ReadFile(cfg.LogPath)
		if strings.Contains(string(log), "Traceback") && strings.Contains(string(log), "ValueError: bad value 3") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log has no traceback:\n%s", log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sklearnExpect is a trained model's test rows and its predictions.
type sklearnExpect struct {
	Columns  []string `json:"columns"`
	Data     [][]any  `json:"data"`
	Expected []float64
}

// mlflowPython returns the interpreter of the mlflow 2 venv the suite
// builds.
func mlflowPython(t testing.TB) string {
	t.Helper()
	py := os.Getenv("WHARF_TEST_MLFLOW2_PYTHON")
	if py == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("WHARF_TEST_MLFLOW2_PYTHON is not set; run the suite with ./scripts/test")
		}
		t.Skip("WHARF_TEST_MLFLOW2_PYTHON not set; ./scripts/test builds the mlflow venv")
	}
	return py
}

// trainSklearn saves a scikit-learn model as an MLflow model in dir/model
// and returns test rows with scikit-learn's own predictions.
func trainSklearn(t testing.TB, py, dir string) sklearnExpect {
	t.Helper()
	train := `
import json, sys
import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression
import mlflow.sklearn
from mlflow.models import infer_signature

out = sys.argv[1]
rng = np.random.default_rng(0)
X = pd.DataFrame({"distance": rng.uniform(0, 20, 50), "hour": rng.integers(0, 24, 50)})
y = 3.5 * X["distance"] + 0.25 * X["hour"] + rng.normal(0, 1, 50)
model = LinearRegression().fit(X, y)
mlflow.sklearn.save_model(model, out + "/model", signature=infer_signature(X, model.predict(X)))
rows = [[1.5, 0], [7.25, 8], [19.0, 23]]
test = pd.DataFrame(rows, columns=["distance", "hour"])
with open(out + "/expect.json", "w") as f:
    json.dump({"columns": ["distance", "hour"], "data": rows, "expected": model.predict(test).tolist()}, f)
`
	cmd := exec.Command(py, "-c", train, dir)
	cmd.Env = testEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("training the model: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "expect.json"))
	if err != nil {
		t.Fatal(err)
	}
	var expect sklearnExpect
	if err := json.Unmarshal(raw, &expect); err != nil {
		t.Fatal(err)
	}
	return expect
}

// checkSklearn compares the pool's predictions with scikit-learn's, for
// the test rows in each of the request formats.
func checkSklearn(t testing.TB, p *Pool, expect sklearnExpect) {
	t.Helper()
	split, _ := json.Marshal(map[string]any{"columns": expect.Columns, "data": expect.Data})
	azure, _ := json.Marshal(map[string]any{"input_data": map[string]any{"columns": expect.Columns, "data": expect.Data}})
	for _, body := range []string{string(split), string(azure)} {
		var got []float64
		if err := json.Unmarshal([]byte(predict(t, p, body)), &got); err != nil {
			t.Fatalf("answer is not a list of numbers: %v", err)
		}
		if len(got) != len(expect.Expected) {
			t.Fatalf("got %d predictions, want %d", len(got), len(expect.Expected))
		}
		for i := range got {
			if math.Abs(got[i]-expect.Expected[i]) > 1e-9 {
				t.Errorf("prediction %d = %v, sklearn says %v", i, got[i], expect.Expected[i])
			}
		}
	}
}

func TestPyfuncSklearn(t *testing.T) {
	py := mlflowPython(t)
	dir := t.TempDir()
	expect := trainSklearn(t, py, dir)

	p, err := Start(context.Background(), Config{
		Python:       py,
		Mode:         ModePyfunc,
		ModelDir:     filepath.Join(dir, "model"),
		Env:          testEnv(),
		LogPath:      filepath.Join(dir, "worker.log"),
		StartTimeout: 2 * time.Minute,
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer p.Close()

	checkSklearn(t, p, expect)

	// Refused input: the caller's fault, and the worker lives on.
	for _, body := range []string{`not json`, `{"rows": []}`, `{"columns": ["distance"], "data": [[1.0]]}`} {
		_, err := p.Predict(context.Background(), []byte(body))
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Errorf("Predict(%s): err = %v (%T), want an InputError", body, err, err)
		}
	}
	checkSklearn(t, p, expect)
	if p.Restarts() != 0 {
		t.Errorf("Restarts() = %d, want 0", p.Restarts())
	}
}

const crashScore = `
import os

def init():
    pass

def run(raw):
    if raw == "crash":
        os._exit(1)
    return raw.upper()
`

func TestCrashRestarts(t *testing.T) {
	p, _ := startScore(t, crashScore, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	began := time.Now()
	_, err := p.Predict(ctx, []byte("crash"))
	if !errors.Is(err, ErrWorkerCrashed) {
		t.Fatalf("Predict of crashing run: err = %v, want ErrWorkerCrashed", err)
	}
	if !strings.Contains(err.Error(), "exit status 1") {
		t.Errorf("error %q does not give the exit status", err)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("crash reported after %s", d)
	}
	if got, want := predict(t, p, "ok"), `"OK"`; got != want {
		t.Errorf("answer after restart = %s, want %s", got, want)
	}
	if p.Restarts() != 1 {
		t.Errorf("Restarts() = %d, want 1", p.Restarts())
	}
	if !p.Ready() {
		t.Error("Ready() = false after restart")
	}
}

func TestInitFailure(t *testing.T) {
	cfg := scoreConfig(t, `
def init():
    raise RuntimeError("model file weights.bin is missing")

def run(raw):
    return raw
`, 2)
	_, err := Start(context.Background(), cfg)
	var se *StartError
	if !errors.As(err, &se) {
		t.Fatalf("Start: err = %v (%T), want a StartError", err, err)
	}
	if se.Message != "RuntimeError: model file weights.bin is missing" {
		t.Errorf("Message = %q", se.Message)
	}
	if !strings.Contains(err.Error(), "model file weights.bin is missing") || !strings.Contains(se.Detail, "in init") {
		t.Errorf("error lacks the exception or traceback:\n%v", err)
	}
}

func TestStartFailures(t *testing.T) {
	t.Run("no run", func(t *testing.T) {
		_, err := Start(context.Background(), scoreConfig(t, "def init():\n    pass\n", 1))
		if err == nil || !strings.Contains(err.Error(), "defines no run() function") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("syntax error", func(t *testing.T) {
		_, err := Start(context.Background(), scoreConfig(t, "def run(raw:\n", 1))
		if err == nil || !strings.Contains(err.Error(), "SyntaxError") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("init exits", func(t *testing.T) {
		_, err := Start(context.Background(), scoreConfig(t, "import os\ndef init():\n    print('giving up', flush=True)\n    os._exit(3)\ndef run(raw):\n    return raw\n", 1))
		var se *StartError
		if !errors.As(err, &se) || !strings.Contains(se.Message, "exit status 3") || !strings.Contains(se.Detail, "giving up") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("slow init", func(t *testing.T) {
		cfg := scoreConfig(t, "import time\ndef init():\n    time.sleep(30)\ndef run(raw):\n    return raw\n", 1)
		cfg.StartTimeout = 300 * time.Millisecond
		began := time.Now()
		_, err := Start(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), "not ready after 300ms") {
			t.Errorf("err = %v", err)
		}
		if d := time.Since(began); d > 5*time.Second {
			t.Errorf("Start returned after %s", d)
		}
	})
	t.Run("config", func(t *testing.T) {
		for _, cfg := range []Config{
			{Mode: "onnx", ModelDir: "/m"},
			{Mode: ModePyfunc},
			{Mode: ModeScore, CodeDir: "/c"},
			{Mode: ModeScore, ScoringScript: "score.py", Instances: -1},
			{Mode: ModeScore, ScoringScript: "score.py", Python: "no-such-python-wharf", Env: []string{"PATH=/nonexistent"}},
			{Mode: ModeScore, ScoringScript: "score.py", Python: "/nonexistent/python"},
		} {
			if _, err := Start(context.Background(), cfg); err == nil {
				t.Errorf("Start(%+v) succeeded", cfg)
			}
		}
	})
}

const slowScore = `
import time

def init():
    pass

def run(raw):
    if raw == "slow":
        time.sleep(10)
    return raw
`

func TestTimeout(t *testing.T) {
	p, _ := startScore(t, slowScore, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := p.Predict(ctx, []byte("slow"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Predict: err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(began); d > time.Second {
		t.Errorf("timeout reported after %s", d)
	}
	// The next request gets its own answer, not the stale one.
	if got, want := predict(t, p, "fast"), `"fast"`; got != want {
		t.Errorf("answer after timeout = %s, want %s", got, want)
	}

	// A context ended by its caller works the same.
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := p.Predict(ctx, []byte("slow")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Predict: err = %v, want context.Canceled", err)
	}
	if got, want := predict(t, p, "again"), `"again"`; got != want {
		t.Errorf("answer after cancel = %s, want %s", got, want)
	}
}

func TestConcurrency(t *testing.T) {
	p, _ := startScore(t, `
import json, os, time

def run(raw):
    time.sleep(0.02)
    return {"pid": os.getpid(), "n": json.loads(raw)["n"]}
`, 2)
	var mu sync.Mutex
	pids := map[int]bool{}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := p.Predict(ctx, fmt.Appendf(nil, `{"n": %d}`, i))
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			var got struct{ PID, N int }
			if err := json.Unmarshal(out, &got); err != nil || got.N != i {
				t.Errorf("request %d got %s (%v)", i, out, err)
				return
			}
			mu.Lock()
			pids[got.PID] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(pids) != 2 {
		t.Errorf("requests were served by %d workers, want 2", len(pids))
	}
}

func TestClose(t *testing.T) {
	p, cfg := startScore(t, crashScore, 2)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if p.Ready() {
		t.Error("Ready() = true after Close")
	}
	if _, err := p.Predict(context.Background(), []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Predict after Close: err = %v, want ErrClosed", err)
	}
	p.Close()
	if _, err := os.Stat(p.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("work folder left behind: %v", err)
	}
	log, _ := os.ReadFile(cfg.LogPath)
	if strings.Count(string(log), "ready in") != 2 {
		t.Errorf("log does not show two workers starting:\n%s", log)
	}
}

const echoScore = `
def init():
    pass

def run(raw):
    return [1.5, 2.5]
`

// BenchmarkPredict measures one request's round trip through a worker that
// does almost nothing, which is the pool's own overhead.
func BenchmarkPredict(b *testing.B) {
	p, _ := startScore(b, echoScore, 1)
	body := []byte(`{"columns": ["distance", "hour"], "data": [[1.5, 8]]}`)
	ctx := context.Background()
	for b.Loop() {
		if _, err := p.Predict(ctx, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPredictParallel is the same with a worker per CPU and concurrent
// callers.
func BenchmarkPredictParallel(b *testing.B) {
	p, _ := startScore(b, echoScore, runtime.GOMAXPROCS(0))
	body := []byte(`{"columns": ["distance", "hour"], "data": [[1.5, 8]]}`)
	b.RunParallel(func(pb *testing.PB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for pb.Next() {
			if _, err := p.Predict(ctx, body); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func TestRestartFailureMakesUnavailable(t *testing.T) {
	p, _ := startScore(t, `
import os

def init():
    marker = os.path.join(os.environ["AZUREML_MODEL_DIR"], "started")
    if os.path.exists(marker):
        raise RuntimeError("second start refused")
    open(marker, "w").close()

def run(raw):
    if raw == "crash":
        os._exit(1)
    return raw
`, 1)
	if _, err := p.Predict(context.Background(), []byte("crash")); !errors.Is(err, ErrWorkerCrashed) {
		t.Fatalf("Predict: err = %v, want ErrWorkerCrashed", err)
	}
	// Once a restart has failed, requests fail at once instead of
	// waiting for a worker that is not coming.
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		began := time.Now()
		_, err := p.Predict(ctx, []byte("x"))
		cancel()
		if errors.Is(err, ErrUnavailable) {
			if !strings.Contains(err.Error(), "second start refused") {
				t.Errorf("error %q does not say why", err)
			}
			if d := time.Since(began); d > 100*time.Millisecond {
				t.Errorf("ErrUnavailable came after %s", d)
			}
			break
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Predict: err = %v, want ErrUnavailable", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("no ErrUnavailable while restarts fail")
		}
	}
	if p.Ready() {
		t.Error("Ready() = true while no worker runs")
	}
	if p.Restarts() < 1 {
		t.Errorf("Restarts() = %d", p.Restarts())
	}
}

func TestCloseEndsProcessGroup(t *testing.T) {
	cfg := scoreConfig(t, `
import os, subprocess

def init():
    child = subprocess.Popen(["sleep", "60"])
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "child.pid"), "w") as f:
        f.write(str(child.pid))

def run(raw):
    return raw
`, 1)
	p, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(cfg.ModelDir, "child.pid"))
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	// Gone, or a zombie waiting for init to reap it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + strings.TrimSpace(string(raw)) + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker's child %s outlived Close: %s", raw, stat)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
