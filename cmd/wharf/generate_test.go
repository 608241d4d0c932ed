package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wharfml/wharf/tabular"
	"github.com/wharfml/wharf/taxigen"
)

// wharfRun runs one command line without a server.
func wharfRun(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

func sha256File(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestGenerateTaxiWritesTrainableFiles generates taxi data twice with one
// seed, checks the files are byte-identical, and trains the built-in
// linear regression on them.
func TestGenerateTaxiWritesTrainableFiles(t *testing.T) {
	t.Setenv("WHARF_CONFIG_DIR", t.TempDir())
	dirs := []string{filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")}
	for _, dir := range dirs {
		out, errs, code := wharfRun(t, "generate", "taxi", "--rows", "5000", "--seed", "9", "--out", dir, "--batch-rows", "50")
		if code != 0 {
			t.Fatalf("exit %d: %s%s", code, out, errs)
		}
		var res struct {
			Files []string `json:"files"`
			Rows  int      `json:"rows"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Files) != 3 || res.Rows != 5000 {
			t.Fatalf("output %s (%v)", out, err)
		}
		if errs != "" {
			t.Errorf("progress printed for 5000 rows: %s", errs)
		}
	}
	for _, name := range []string{taxigen.DataFile, taxigen.BatchFile, taxigen.RequestFile} {
		if sha256File(t, filepath.Join(dirs[0], name)) != sha256File(t, filepath.Join(dirs[1], name)) {
			t.Errorf("%s differs between two runs with seed 9", name)
		}
	}

	// Every column is numeric, and dropoff_month repeats pickup_month: the
	// trainer fits the rank-deficient design with the minimum-norm
	// coefficients, as scikit-learn does, which share the month's
	// coefficient equally and predict as the fit without dropoff_month.
	data, test := filepath.Join(dirs[0], taxigen.DataFile), filepath.Join(dirs[1], taxigen.DataFile)
	type trained struct {
		Columns []string           `json:"columns"`
		Coef    []float64          `json:"coef"`
		Solver  string             `json:"solver"`
		Metrics map[string]float64 `json:"metrics"`
	}
	train := func(args ...string) trained {
		t.Helper()
		out, errs, code := wharfRun(t, append([]string{"train", "linear-regression", "--train-data", data, "--target", "cost",
			"--test-data", test, "--model-output", t.TempDir()}, args...)...)
		if code != 0 {
			t.Fatalf("train %v: exit %d: %s", args, code, errs)
		}
		var res trained
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	all := train()
	coef := map[string]float64{}
	for j, c := range all.Columns {
		coef[c] = all.Coef[j]
	}
	if len(all.Columns) != len(taxigen.Features) || all.Solver != "qr" ||
		math.Abs(coef["pickup_month"]-coef["dropoff_month"]) > 1e-9*math.Max(math.Abs(coef["pickup_month"]), 1) {
		t.Errorf("training on every column: %d columns, solver %s, month coefficients %v and %v",
			len(all.Columns), all.Solver, coef["pickup_month"], coef["dropoff_month"])
	}
	var features []string
	for _, f := range taxigen.Features {
		if f != "dropoff_month" {
			features = append(features, f)
		}
	}
	res := train("--features", strings.Join(features, ","))
	if r2 := res.Metrics["training_r2"]; r2 < 0.9 {
		t.Errorf("training R² %v on generated data, want at least 0.9", r2)
	}
	for _, m := range []string{"training_r2", "r2", "mse"} {
		if math.Abs(all.Metrics[m]-res.Metrics[m]) > 1e-9*math.Abs(res.Metrics[m]) {
			t.Errorf("%s: %v on every column, %v without dropoff_month", m, all.Metrics[m], res.Metrics[m])
		}
	}
}

// readTable reads a CSV or Parquet file with tabular: its columns and
// every value, column by column.
func readTable(t *testing.T, path string) ([]string, [][]float64) {
	t.Helper()
	r, err := tabular.Open(path, tabular.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cols := r.Columns()
	vals := make([][]float64, len(cols))
	for {
		f, err := r.Next()
		if err == io.EOF {
			return cols, vals
		}
		if err != nil {
			t.Fatal(err)
		}
		for i := range cols {
			v, err := f.Numeric(i)
			if err != nil {
				t.Fatal(err)
			}
			vals[i] = append(vals[i], v...)
		}
	}
}

// TestGenerateTaxiParquet generates the same seed as CSV and as Parquet,
// checks that both hold the same values, and trains on the Parquet file.
func TestGenerateTaxiParquet(t *testing.T) {
	t.Setenv("WHARF_CONFIG_DIR", t.TempDir())
	csvDir, pqDir := filepath.Join(t.TempDir(), "csv"), filepath.Join(t.TempDir(), "pq")
	if out, errs, code := wharfRun(t, "generate", "taxi", "--rows", "5000", "--seed", "9", "--out", csvDir, "--batch-rows", "50"); code != 0 {
		t.Fatalf("csv: exit %d: %s%s", code, out, errs)
	}
	out, errs, code := wharfRun(t, "generate", "taxi", "--rows", "5000", "--seed", "9", "--out", pqDir, "--batch-rows", "50", "--format", "parquet")
	if code != 0 {
		t.Fatalf("parquet: exit %d: %s%s", code, out, errs)
	}
	var res struct {
		Files  []string `json:"files"`
		Format string   `json:"format"`
	}
	want := []string{filepath.Join(pqDir, taxigen.DataParquetFile), filepath.Join(pqDir, taxigen.BatchParquetFile), filepath.Join(pqDir, taxigen.RequestFile)}
	if err := json.Unmarshal([]byte(out), &res); err != nil || !slices.Equal(res.Files, want) || res.Format != "parquet" {
		t.Fatalf("output %s (%v), want files %v", out, err, want)
	}
	for _, f := range [][2]string{{taxigen.DataFile, taxigen.DataParquetFile}, {taxigen.BatchFile, taxigen.BatchParquetFile}} {
		cc, cv := readTable(t, filepath.Join(csvDir, f[0]))
		pc, pv := readTable(t, filepath.Join(pqDir, f[1]))
		if !slices.Equal(cc, pc) {
			t.Fatalf("columns: CSV %v, Parquet %v", cc, pc)
		}
		for i, c := range cc {
			if !slices.Equal(cv[i], pv[i]) {
				t.Errorf("%s: column %s differs from the CSV's", f[1], c)
			}
		}
	}
	var features []string
	for _, f := range taxigen.Features {
		if f != "dropoff_month" {
			features = append(features, f)
		}
	}
	fit := func(data string) string {
		out, errs, code := wharfRun(t, "train", "linear-regression", "--train-data", data, "--target", "cost",
			"--features", strings.Join(features, ","), "--model-output", t.TempDir())
		if code != 0 {
			t.Fatalf("train on %s: exit %d: %s", data, code, errs)
		}
		var m struct {
			Coef      []float64 `json:"coef"`
			Intercept float64   `json:"intercept"`
		}
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	if a, b := fit(filepath.Join(csvDir, taxigen.DataFile)), fit(filepath.Join(pqDir, taxigen.DataParquetFile)); a != b {
		t.Errorf("models differ: CSV %s, Parquet %s", a, b)
	}
}

// TestGenerateTaxiReportsProgress checks the progress lines of a large
// file.
func TestGenerateTaxiReportsProgress(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 90 MB")
	}
	t.Setenv("WHARF_CONFIG_DIR", t.TempDir())
	dir := t.TempDir()
	_, errs, code := wharfRun(t, "generate", "taxi", "--rows", "1000000", "--out", dir, "--batch-rows", "0", "-o", "none")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	if len(lines) < 10 || len(lines) > 12 || !strings.HasPrefix(lines[len(lines)-1], "taxi-data.csv: 1000000 of 1000000 rows (100%)") {
		t.Errorf("progress:\n%s", errs)
	}
}

// TestGenerateTaxiUsageErrors checks that bad arguments exit 2.
func TestGenerateTaxiUsageErrors(t *testing.T) {
	t.Setenv("WHARF_CONFIG_DIR", t.TempDir())
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--rows", "0", "--out", dir},
		{"--rows", "10", "--out", dir, "--batch-rows", "-1"},
		{"--rows", "10", "--out", dir, "--start", "2016-13-01"},
		{"--rows", "10", "--out", dir, "--days", "0"},
		{"--rows", "10", "--out", dir, "--format", "tsv"},
		{"--rows", "10"},
		{"--out", dir},
	} {
		if _, errs, code := wharfRun(t, append([]string{"generate", "taxi"}, args...)...); code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", args, code, errs)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("usage errors wrote %v", entries)
	}
}
