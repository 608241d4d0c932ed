package drift

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/wharfml/wharf/internal/testneed"
)

var (
	pythonOnce  sync.Once
	pythonFound string
)

// scipyPython is a Python with numpy, scipy and scikit-learn.
func scipyPython(t *testing.T) string {
	t.Helper()
	pythonOnce.Do(func() {
		for _, env := range []string{"WHARF_TEST_PYTHON", "WHARF_TEST_MLFLOW3_PYTHON", "WHARF_TEST_MLFLOW2_PYTHON"} {
			py := os.Getenv(env)
			if py != "" && exec.Command(py, "-c", "import numpy, scipy, sklearn").Run() == nil {
				pythonFound = py
				return
			}
		}
	})
	if pythonFound == "" {
		testneed.Missing(t, "no Python with numpy, scipy and scikit-learn (set WHARF_TEST_MLFLOW3_PYTHON)")
	}
	return pythonFound
}

// writeCSV writes rows (the first is the header) to dir/name.
func writeCSV(t *testing.T, dir, name string, rows [][]string) string {
	t.Helper()
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(strings.Join(r, ","))
		b.WriteByte('\n')
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func open(t *testing.T, paths ...string) Dataset {
	t.Helper()
	d, err := OpenFiles(paths)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Close(d) })
	return d
}

// driftTable makes a table whose columns exercise every path: shifted
// normals with nulls, wide integers (numerical), few integers
// (categorical), strings with an unseen category, a constant, a single
// category.
func driftTable(seed uint64, rows int, shift float64, unseen bool) [][]string {
	r := rand.New(rand.NewPCG(seed, 1))
	out := [][]string{{"x", "y", "wide", "few", "color", "fruit", "flat", "one"}}
	colors := []string{"red", "green", "blue", "black", "white"}
	for i := 0; i < rows; i++ {
		x := strconv.FormatFloat(r.NormFloat64()*2+shift, 'g', -1, 64)
		if r.IntN(50) == 0 {
			x = ""
		}
		y := strconv.FormatFloat(r.Float64()*10+shift/2, 'g', -1, 64)
		if unseen && r.IntN(70) == 0 {
			y = "n/a"
		}
		wide := strconv.Itoa(r.IntN(400) + int(shift*10))
		few := strconv.Itoa(min(4, int(math.Abs(r.NormFloat64()+shift))))
		ci := int(math.Abs(r.NormFloat64()*1.5 + shift))
		color := colors[min(ci, len(colors)-1)]
		fruit := []string{"apple", "pear", "plum"}[r.IntN(3)]
		if unseen && r.IntN(40) == 0 {
			fruit = "kiwi"
		}
		out = append(out, []string{x, y, wide, few, color, fruit, "5", "same"})
	}
	return out
}

var allDrift = map[string]float64{
	"numerical.jensen_shannon_distance":   0.1,
	"normalized_wasserstein_distance":     0.1,
	"population_stability_index":          0.2,
	"two_sample_kolmogorov_smirnov_test":  0.05,
	"categorical.jensen_shannon_distance": 0.1,
	"chi_squared_test":                    0.05,
}

// oracle runs testdata/oracle.py on two CSV files.
func oracle(t *testing.T, py, ref, prod string, kinds map[string]string) map[string]*float64 {
	t.Helper()
	spec, _ := json.Marshal(map[string]any{"features": kinds})
	sp := filepath.Join(t.TempDir(), "spec.json")
	os.WriteFile(sp, spec, 0o644)
	out, err := exec.Command(py, "testdata/oracle.py", ref, prod, sp).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("oracle: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var want map[string]*float64
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("oracle output %q: %v", out, err)
	}
	return want
}

func near(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b))
}

// checkAgainst compares every result with the oracle's value.
func checkAgainst(t *testing.T, got []Result, want map[string]*float64) {
	t.Helper()
	seen := 0
	for _, r := range got {
		key := r.Feature + "/" + r.Metric
		w, ok := want[key]
		if !ok {
			if r.Metric == TwoSampleKolmogorovSmirnov && r.Detail != "" {
				continue
			}
			t.Errorf("%s: no value from scipy", key)
			continue
		}
		seen++
		wv := math.NaN()
		if w != nil {
			wv = *w
		}
		if !near(r.Value, wv) {
			t.Errorf("%s = %.17g, scipy %.17g", key, r.Value, wv)
		}
	}
	if seen != len(want) {
		t.Errorf("compared %d of scipy's %d values", seen, len(want))
	}
}

func TestDriftMatchesScipy(t *testing.T) {
	py := scipyPython(t)
	for _, tc := range []struct {
		name       string
		nRef, nPrd int
	}{{"unequal sizes", 3000, 2500}, {"equal sizes", 1200, 1200}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			refPath := writeCSV(t, dir, "ref.csv", driftTable(1, tc.nRef, 0, false))
			prodPath := writeCSV(t, dir, "prod.csv", driftTable(2, tc.nPrd, 0.3, true))
			ref, prod := open(t, refPath), open(t, prodPath)
			kinds := map[string]string{}
			for _, c := range ref.Columns() {
				kinds[c.Name] = c.Kind.String()
			}
			wantKinds := map[string]string{"x": "numerical", "y": "numerical", "wide": "numerical", "few": "categorical",
				"color": "categorical", "fruit": "categorical", "flat": "categorical", "one": "categorical"}
			for k, v := range wantKinds {
				if kinds[k] != v {
					t.Errorf("column %s is %s, want %s", k, kinds[k], v)
				}
			}
			got, err := Evaluate(context.Background(), Signal{Type: DataDrift, Thresholds: allDrift}, ref, prod)
			if err != nil {
				t.Fatal(err)
			}
			checkAgainst(t, got, oracle(t, py, refPath, prodPath, kinds))
			byKey := map[string]Result{}
			for _, r := range got {
				byKey[r.Feature+"/"+r.Metric] = r
			}
			if r := byKey["fruit/pearsons_chi_squared_test"]; r.Value != 0 || r.Passed || !strings.Contains(r.Detail, "kiwi") {
				t.Errorf("an unseen category: %+v", r)
			}
			if r := byKey["one/pearsons_chi_squared_test"]; !math.IsNaN(r.Value) || !r.Passed || r.Detail == "" {
				t.Errorf("a single category: %+v", r)
			}
			if r := byKey["x/normalized_wasserstein_distance"]; r.Direction != HigherIsWorse || r.Threshold != 0.1 {
				t.Errorf("x: %+v", r)
			}
		})
	}
}

// TestConstantColumn compares two all-equal numerical columns: one bin,
// no distance.
func TestConstantColumn(t *testing.T) {
	py := scipyPython(t)
	dir := t.TempDir()
	mk := func(n int, v string) [][]string {
		rows := [][]string{{"v", "w"}}
		for i := 0; i < n; i++ {
			rows = append(rows, []string{v, strconv.FormatFloat(float64(i)/3, 'g', -1, 64)})
		}
		return rows
	}
	refPath := writeCSV(t, dir, "ref.csv", mk(500, "2.5"))
	prodPath := writeCSV(t, dir, "prod.csv", mk(300, "2.5"))
	got, err := Evaluate(context.Background(), Signal{Type: DataDrift, Thresholds: allDrift}, open(t, refPath), open(t, prodPath))
	if err != nil {
		t.Fatal(err)
	}
	checkAgainst(t, got, oracle(t, py, refPath, prodPath, map[string]string{"v": "numerical", "w": "numerical"}))
	for _, r := range got {
		if r.Feature == "v" && r.Metric == NormalizedWassersteinDistance && r.Value != 0 {
			t.Errorf("constant column: %+v", r)
		}
	}
}

func TestEmptyWindow(t *testing.T) {
	dir := t.TempDir()
	ref := open(t, writeCSV(t, dir, "ref.csv", [][]string{{"a"}, {"1"}}))
	prod := open(t, writeCSV(t, dir, "prod.csv", [][]string{{"a"}}))
	_, err := Evaluate(context.Background(), Signal{Type: DataDrift}, ref, prod)
	if !errors.Is(err, ErrEmptyWindow) {
		t.Fatalf("got %v, want ErrEmptyWindow", err)
	}
}

// TestKSRowLimit: Azure computes KS only below 10,000 rows; the others
// are computed all the same.
func TestKSRowLimit(t *testing.T) {
	dir := t.TempDir()
	refPath := writeCSV(t, dir, "ref.csv", driftTable(3, 10500, 0, false))
	prodPath := writeCSV(t, dir, "prod.csv", driftTable(4, 500, 1, false))
	got, err := Evaluate(context.Background(), Signal{Type: DataDrift, Features: []string{"x"},
		Thresholds: map[string]float64{"two_sample_kolmogorov_smirnov_test": 0.05, "normalized_wasserstein_distance": 0.1}}, open(t, refPath), open(t, prodPath))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d results: %+v", len(got), got)
	}
	ks := got[1]
	if ks.Metric != TwoSampleKolmogorovSmirnov || !ks.Passed || !strings.Contains(ks.Detail, "fewer than 10000 rows") {
		t.Errorf("KS over the limit: %+v", ks)
	}
	if got[0].Metric != NormalizedWassersteinDistance || got[0].Passed || got[0].Value < 0.3 {
		t.Errorf("NWD of a shift of half a standard deviation: %+v", got[0])
	}
}

// TestExternalSortMatchesInMemory sorts in runs of 1,000 values and
// merges them, 3 at a time: the same results, to the bit.
func TestExternalSortMatchesInMemory(t *testing.T) {
	dir := t.TempDir()
	refPath := writeCSV(t, dir, "ref.csv", driftTable(5, 7000, 0, false))
	prodPath := writeCSV(t, dir, "prod.csv", driftTable(6, 5000, 0.2, false))
	s := Signal{Type: DataDrift, Thresholds: allDrift}
	ref, prod := open(t, refPath), open(t, prodPath)
	want, err := Evaluate(context.Background(), s, ref, prod)
	if err != nil {
		t.Fatal(err)
	}
	defer func(n, m int) { ChunkValues, MaxMergeRuns = n, m }(ChunkValues, MaxMergeRuns)
	ChunkValues, MaxMergeRuns = 1000, 3
	got, err := Evaluate(context.Background(), s, ref, prod)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d results, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Feature != w.Feature || g.Metric != w.Metric || math.Float64bits(g.Value) != math.Float64bits(w.Value) {
			t.Errorf("runs: %+v, in memory: %+v", g, w)
		}
	}
}

// TestSortFloats sorts uniform, skewed, repeated and infinite values as
// the standard library does.
func TestSortFloats(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	cases := map[string]func(i int) float64{
		"uniform":   func(int) float64 { return r.Float64() },
		"skewed":    func(int) float64 { return math.Exp(r.NormFloat64() * 8) },
		"repeated":  func(i int) float64 { return float64(i%7) - 3 },
		"zeros":     func(i int) float64 { return []float64{0, math.Copysign(0, -1)}[i%2] },
		"infinite":  func(i int) float64 { return []float64{math.Inf(-1), 1, math.Inf(1), -2}[i%4] * r.Float64() },
		"one value": func(int) float64 { return 4.25 },
		"outlier":   func(i int) float64 { return map[bool]float64{true: 1e300, false: r.Float64()}[i == 5] },
	}
	for name, gen := range cases {
		for _, n := range []int{10, 1000, 100_003} {
			v := make([]float64, n)
			for i := range v {
				v[i] = gen(i)
			}
			want := append([]float64(nil), v...)
			slices.Sort(want)
			sortFloats(v, make([]float64, n))
			for i := range v {
				if v[i] != want[i] {
					t.Fatalf("%s, %d values: position %d is %g, want %g", name, n, i, v[i], want[i])
				}
			}
		}
	}
}
