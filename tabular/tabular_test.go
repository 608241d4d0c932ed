package tabular_test

import (
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/wharfml/wharf/tabular"
)

func readAll(t *testing.T, r tabular.Reader) []*tabular.Frame {
	t.Helper()
	var out []*tabular.Frame
	for {
		f, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
}

func TestCSVTypesBatchesAndBadRows(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "in.csv")
	data := "a,b,name\n1,2.5,x\n2,,\"y, z\"\n3,4,w\nbad,5,v\n5,6\n6,7,u\n"
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	var bad []string
	r, err := tabular.Open(p, tabular.Options{BatchRows: 3, BadRow: func(row int64, err error) {
		bad = append(bad, err.Error())
		_ = row
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	frames := readAll(t, r)
	if len(frames) != 2 {
		t.Fatalf("got %d frames, want 2", len(frames))
	}
	f := frames[0]
	if f.Num[0] == nil || f.Num[1] == nil || f.Text[2] == nil {
		t.Fatalf("types: a and b numeric, name text; got num=%v text=%v", f.Num, f.Text)
	}
	if !math.IsNaN(f.Num[1][1]) || f.Text[2][1] != "y, z" {
		t.Errorf("row 2: b=%v name=%q", f.Num[1][1], f.Text[2][1])
	}
	// The second batch holds rows 4 ("bad"), 5 (short) and 6; only 6 is
	// good, and it keeps its own number.
	g := frames[1]
	if g.Len != 1 || g.RowNumber(0) != 6 || g.Num[0][0] != 6 {
		t.Errorf("second frame: len %d row %d values %v", g.Len, g.RowNumber(0), g.Num)
	}
	sort.Strings(bad)
	if len(bad) != 2 || !strings.Contains(bad[0], `"bad" is not a number`) || !strings.Contains(bad[1], "has 2 fields") {
		t.Errorf("bad rows reported: %q", bad)
	}
}

func TestCSVBadRowWithoutHandlerIsAnError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "in.csv")
	os.WriteFile(p, []byte("a\n1\n2,3\n"), 0o644)
	r, err := tabular.Open(p, tabular.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = r.Next()
	if err == nil || !strings.Contains(err.Error(), "row 2") {
		t.Fatalf("err = %v, want one naming row 2", err)
	}
}

func TestParquetRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "t.parquet")
	w, err := tabular.CreateParquet(p, []string{"x", "s"}, []bool{true, false})
	if err != nil {
		t.Fatal(err)
	}
	for b := 0; b < 3; b++ {
		f := &tabular.Frame{Columns: []string{"x", "s"}, Num: [][]float64{make([]float64, 1000), nil}, Text: [][]string{nil, make([]string, 1000)}, Len: 1000}
		for i := 0; i < 1000; i++ {
			f.Num[0][i] = float64(b*1000+i) / 3
			f.Text[1][i] = strings.Repeat("v", i%5)
		}
		f.Num[0][7] = math.NaN()
		if err := w.Write(f); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the file is visible before Close")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := tabular.Open(p, tabular.Options{BatchRows: 700})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for _, f := range readAll(t, r) {
		for i := 0; i < f.Len; i++ {
			row := n + i
			want := float64(row) / 3
			if row%1000 == 7 {
				if !math.IsNaN(f.Num[0][i]) {
					t.Fatalf("row %d: null read as %v", row, f.Num[0][i])
				}
			} else if f.Num[0][i] != want {
				t.Fatalf("row %d: x=%v want %v", row, f.Num[0][i], want)
			}
			if f.Text[1][i] != strings.Repeat("v", (row%1000)%5) {
				t.Fatalf("row %d: s=%q", row, f.Text[1][i])
			}
			if f.RowNumber(i) != int64(row+1) {
				t.Fatalf("row %d numbered %d", row, f.RowNumber(i))
			}
		}
		n += f.Len
	}
	if n != 3000 {
		t.Fatalf("read %d rows, want 3000", n)
	}
}

// TestReadsPandasParquet reads a file written by pandas/pyarrow, with the
// integer, float32, boolean and dictionary-encoded string columns that
// data scientists' files commonly have.
func TestReadsPandasParquet(t *testing.T) {
	py := os.Getenv("WHARF_TEST_MLFLOW2_PYTHON")
	if py == "" {
		t.Skip("WHARF_TEST_MLFLOW2_PYTHON is not set (scripts/test sets it)")
	}
	p := filepath.Join(t.TempDir(), "pandas.parquet")
	script := `
import sys, pandas as pd, numpy as np
df = pd.DataFrame({
  "i64": np.arange(5, dtype="int64"), "i32": np.arange(5, dtype="int32") * 2,
  "f32": np.array([0.5, 1.5, np.nan, 3.5, 4.5], dtype="float32"),
  "flag": [True, False, True, False, True],
  "cat": pd.Categorical(["a", "b", "a", "c", "b"]),
})
df.to_parquet(sys.argv[1], index=False)
`
	if out, err := exec.Command(py, "-c", script, p).CombinedOutput(); err != nil {
		t.Fatalf("pandas: %v\n%s", err, out)
	}
	r, err := tabular.Open(p, tabular.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	frames := readAll(t, r)
	if len(frames) != 1 {
		t.Fatalf("%d frames", len(frames))
	}
	f := frames[0]
	if got := strings.Join(f.Columns, ","); got != "i64,i32,f32,flag,cat" {
		t.Fatalf("columns %s", got)
	}
	if f.Num[0][4] != 4 || f.Num[1][3] != 6 || f.Num[2][1] != 1.5 || !math.IsNaN(f.Num[2][2]) || f.Num[3][1] != 0 || f.Num[3][2] != 1 {
		t.Errorf("numbers: %v", f.Num)
	}
	if strings.Join(f.Text[4], "") != "abacb" {
		t.Errorf("categorical: %q", f.Text[4])
	}
}

func TestOpenAllReordersColumnsAndNamesMissingOnes(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.csv"), []byte("x,y\n1,2\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.csv"), []byte("y,x\n4,3\n"), 0o644)
	os.WriteFile(filepath.Join(dir, ".hidden.csv"), []byte("junk\n"), 0o644)
	r, err := tabular.OpenAll(dir, tabular.Options{})
	if err != nil {
		t.Fatal(err)
	}
	frames := readAll(t, r)
	r.Close()
	if len(frames) != 2 || frames[1].Num[0][0] != 3 || frames[1].Num[1][0] != 4 {
		t.Fatalf("frames: %+v", frames)
	}
	os.WriteFile(filepath.Join(dir, "c.csv"), []byte("x\n5\n"), 0o644)
	r, err = tabular.OpenAll(dir, tabular.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var last error
	for last == nil {
		_, last = r.Next()
	}
	if !strings.Contains(last.Error(), "c.csv") || !strings.Contains(last.Error(), "missing column(s) y") {
		t.Fatalf("err = %v", last)
	}
}
