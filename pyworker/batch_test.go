package pyworker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// batchConfig writes src as the batch driver driver.py and returns a batch
// mode configuration for it.
func batchConfig(t *testing.T, py, src string, instances int) Config {
	t.Helper()
	cfg := scoreConfig(t, "", instances)
	cfg.Python = py
	cfg.Mode = ModeBatch
	cfg.ScoringScript = "driver.py"
	if err := os.WriteFile(filepath.Join(cfg.CodeDir, "driver.py"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func runBatch(t *testing.T, p *Pool, paths ...string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := p.RunBatch(ctx, paths)
	if err != nil {
		t.Fatalf("RunBatch(%q): %v", paths, err)
	}
	return rows
}

// listDriver counts its init() calls and returns, for each file, its
// name, its first line, the pid and the init count; a file named fail.csv
// makes run() raise, one named wrong.csv makes it return a number.
const listDriver = `
import os
inits = 0
model_dir = None

def init():
    global inits, model_dir
    inits += 1
    model_dir = os.environ["AZUREML_MODEL_DIR"]

def run(mini_batch):
    assert isinstance(mini_batch, list), type(mini_batch)
    out = []
    for path in mini_batch:
        name = os.path.basename(path)
        if name == "fail.csv":
            raise ValueError("cannot score " + name)
        if name == "wrong.csv":
            return 42
        with open(path) as f:
            first = f.readline().strip()
        out.append([name, first, os.getpid(), inits, os.path.isdir(model_dir)])
    if mini_batch and os.path.basename(mini_batch[0]) == "kinds.csv":
        out += ["as is, with a comma", ("a,b", 'say "hi"', None, 1.5), {"k": [1, 2]}, None, 7, 0.1]
    return out
`

func TestBatchDriverListRows(t *testing.T) {
	cfg := batchConfig(t, hostPython(t), listDriver, 2)
	data := t.TempDir()
	var paths []string
	for _, n := range []string{"a.csv", "b.csv", "kinds.csv", "fail.csv", "wrong.csv"} {
		p := filepath.Join(data, n)
		if err := os.WriteFile(p, []byte("first line of "+n+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	p, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer p.Close()

	pids := map[string]bool{}
	for i := 0; i < 6; i++ {
		rows := runBatch(t, p, paths[0], paths[1])
		if len(rows) != 2 {
			t.Fatalf("rows %q", rows)
		}
		for j, row := range rows {
			f := strings.Split(row, ",")
			// init ran once in each worker, and AZUREML_MODEL_DIR named
			// the model folder.
			if len(f) != 5 || f[0] != filepath.Base(paths[j]) || f[1] != "first line of "+f[0] || f[3] != "1" || f[4] != "True" {
				t.Fatalf("row %q", row)
			}
			pids[f[2]] = true
		}
	}
	if len(pids) == 0 || len(pids) > 2 {
		t.Errorf("%d worker pids for 2 workers", len(pids))
	}
	if rows := runBatch(t, p); len(rows) != 0 {
		t.Errorf("an empty mini-batch gave %q", rows)
	}

	rows := runBatch(t, p, paths[2])
	want := []string{"as is, with a comma", `"a,b","say ""hi""",,1.5`, `{"k": [1, 2]}`, "", "7", "0.1"}
	if len(rows) != 7 || !slices.Equal(rows[1:], want) {
		t.Errorf("rows of each kind:\n%q\nwant after the first\n%q", rows, want)
	}

	_, err = p.RunBatch(context.Background(), []string{paths[0], paths[3]})
	var me *ModelError
	if !errors.As(err, &me) || me.Type != "ValueError" || me.Message != "cannot score fail.csv" {
		t.Errorf("run() raising: %v", err)
	}
	_, err = p.RunBatch(context.Background(), []string{paths[4]})
	if !errors.As(err, &me) || me.Type != "TypeError" || !strings.Contains(me.Message, "must return a list or a pandas DataFrame") {
		t.Errorf("run() returning a number: %v", err)
	}
	// The workers survive both.
	if rows := runBatch(t, p, paths[0]); len(rows) != 1 || p.Restarts() != 0 {
		t.Errorf("after errors: %q, %d restarts", rows, p.Restarts())
	}
}

func TestBatchDriverNeedsInitAndRun(t *testing.T) {
	py := hostPython(t)
	for _, tc := range []struct{ src, want string }{
		{"def run(mini_batch):\n    return []\n", "defines no init() function"},
		{"def init():\n    pass\n", "defines no run(mini_batch) function"},
		{"x = 1\n", "defines no init() and no run(mini_batch) function"},
		{"def init():\n    raise RuntimeError('no model here')\ndef run(b):\n    return []\n", "RuntimeError: no model here"},
	} {
		_, err := Start(context.Background(), batchConfig(t, py, tc.src, 1))
		var se *StartError
		if !errors.As(err, &se) || !strings.Contains(se.Message, tc.want) {
			t.Errorf("driver %q: %v, want a StartError with %q", tc.src, err, tc.want)
		}
	}
	// A score mode pool has no RunBatch.
	p, _ := startScore(t, "def run(raw):\n    return raw\n", 1)
	if _, err := p.RunBatch(context.Background(), nil); err == nil {
		t.Error("RunBatch on a score pool")
	}
}

// TestBatchDriverDataFrame needs pandas, so the MLflow venv's Python.
func TestBatchDriverDataFrame(t *testing.T) {
	py := os.Getenv("WHARF_TEST_MLFLOW2_PYTHON")
	if py == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("WHARF_TEST_MLFLOW2_PYTHON is not set; run the suite with ./scripts/test")
		}
		t.Skip("WHARF_TEST_MLFLOW2_PYTHON not set; ./scripts/test builds the mlflow venv")
	}
	cfg := batchConfig(t, py, `
import os
import numpy as np
import pandas as pd

def init():
    pass

def run(mini_batch):
    df = pd.concat([pd.read_csv(p).assign(file=os.path.basename(p)) for p in mini_batch])
    df["double"] = df["x"] * 2.5
    if os.path.basename(mini_batch[0]) == "values.csv":
        return list(df.values)
    if os.path.basename(mini_batch[0]) == "series.csv":
        return df["double"]
    return df
`, 1)
	data := t.TempDir()
	for n, text := range map[string]string{
		"frame.csv":  "x,label\n1,plain\n2,\"with, comma\"\n,missing\n",
		"values.csv": "x,label\n4,v\n",
		"series.csv": "x,label\n1,s\n3,t\n",
	} {
		if err := os.WriteFile(filepath.Join(data, n), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer p.Close()
	// A DataFrame: its rows as CSV lines, no header, no index, NaN empty.
	got := runBatch(t, p, filepath.Join(data, "frame.csv"))
	want := []string{"1.0,plain,frame.csv,2.5", `2.0,"with, comma",frame.csv,5.0`, ",missing,frame.csv,"}
	if !slices.Equal(got, want) {
		t.Errorf("DataFrame rows %q, want %q", got, want)
	}
	// A list of numpy rows (df.values), as Azure's examples return.
	if got, want := runBatch(t, p, filepath.Join(data, "values.csv")), []string{"4,v,values.csv,10.0"}; !slices.Equal(got, want) {
		t.Errorf("df.values rows %q, want %q", got, want)
	}
	// A Series: one value a row.
	if got, want := runBatch(t, p, filepath.Join(data, "series.csv")), []string{"2.5", "7.5"}; !slices.Equal(got, want) {
		t.Errorf("Series rows %q, want %q", got, want)
	}
}
