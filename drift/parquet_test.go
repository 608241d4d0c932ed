package drift

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/wharfml/wharf/tabular"
)

// writeParquet writes a driftTable's x (DOUBLE, empty as null) and its
// string columns color and fruit as a Parquet file.
func writeParquet(t *testing.T, path string, rows [][]string) {
	t.Helper()
	cols := []string{"x", "color", "fruit"}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := tabular.CreateParquet(path, cols, []bool{true, false, false})
	if err != nil {
		t.Fatal(err)
	}
	n := len(rows) - 1
	f := &tabular.Frame{Columns: cols, Num: make([][]float64, 3), Text: make([][]string, 3), Len: n}
	f.Num[0] = make([]float64, n)
	f.Text[1], f.Text[2] = make([]string, n), make([]string, n)
	for i, r := range rows[1:] {
		f.Num[0][i] = math.NaN()
		if v, err := strconv.ParseFloat(r[0], 64); err == nil {
			f.Num[0][i] = v
		}
		f.Text[1][i], f.Text[2][i] = r[4], r[5]
	}
	if err := w.Write(f); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestParquetMatchesCSV reads the same table from Parquet and from CSV:
// the same columns, kinds and results, to the bit.
func TestParquetMatchesCSV(t *testing.T) {
	dir := t.TempDir()
	refRows, prodRows := driftTable(21, 3000, 0, false), driftTable(22, 2000, 0.4, true)
	writeParquet(t, filepath.Join(dir, "ref.parquet"), refRows)
	writeParquet(t, filepath.Join(dir, "prod", "part-0.parquet"), prodRows[:1001])
	writeParquet(t, filepath.Join(dir, "prod", "part-1.parquet"), append([][]string{prodRows[0]}, prodRows[1001:]...))
	pref := open(t, filepath.Join(dir, "ref.parquet"))
	pprod := open(t, filepath.Join(dir, "prod")) // a folder of two files
	if pprod.Rows() != 2000 {
		t.Fatalf("%d rows in the folder", pprod.Rows())
	}
	cref := open(t, writeCSV(t, dir, "ref.csv", refRows))
	cprod := open(t, writeCSV(t, dir, "prod.csv", prodRows))
	for i, c := range pref.Columns() {
		want := map[string]Column{"x": {"x", Numerical, TypeDouble}, "color": {"color", Categorical, TypeString}, "fruit": {"fruit", Categorical, TypeString}}
		if c != want[c.Name] || i > 2 {
			t.Errorf("column %+v", c)
		}
	}
	s := Signal{Type: DataDrift, Features: []string{"x", "color", "fruit"}, Thresholds: allDrift}
	want, err := Evaluate(context.Background(), s, cref, cprod)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Evaluate(context.Background(), s, pref, pprod)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || len(got) != 10 {
		t.Fatalf("%d results from Parquet, %d from CSV", len(got), len(want))
	}
	for i := range got {
		if got[i].Metric != want[i].Metric || math.Float64bits(got[i].Value) != math.Float64bits(want[i].Value) && !(math.IsNaN(got[i].Value) && math.IsNaN(want[i].Value)) {
			t.Errorf("Parquet %+v, CSV %+v", got[i], want[i])
		}
	}
}
