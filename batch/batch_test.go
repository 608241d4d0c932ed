package batch

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wharfml/wharf/tabular"
)

// doubler predicts twice column x; it fails a batch's first attempt when
// failFirst is set, and counts the batches it was asked to score.
type doubler struct {
	calls     atomic.Int64
	failFirst atomic.Bool
}

func (d *doubler) Score(ctx context.Context, header []string, rows [][]string) ([]string, []error, error) {
	d.calls.Add(1)
	if d.failFirst.CompareAndSwap(true, false) {
		return nil, nil, errors.New("transient")
	}
	x := -1
	for i, h := range header {
		if h == "x" {
			x = i
		}
	}
	if x < 0 {
		return nil, nil, &ColumnsError{Msg: "no column x"}
	}
	preds := make([]string, len(rows))
	var errs []error
	for i, r := range rows {
		v, err := strconv.ParseFloat(r[x], 64)
		if err != nil {
			if errs == nil {
				errs = make([]error, len(rows))
			}
			errs[i] = fmt.Errorf("%q is not a number", r[x])
			continue
		}
		preds[i] = strconv.FormatFloat(2*v, 'g', -1, 64)
	}
	return preds, errs, nil
}

// frameDoubler is doubler taking frames: the path native models use.
type frameDoubler struct{ *doubler }

func (d frameDoubler) Inputs() ([]string, []bool) { return []string{"x"}, nil }

func (d frameDoubler) ScoreFrame(ctx context.Context, f *tabular.Frame) (Predictions, []error, error) {
	d.calls.Add(1)
	if d.failFirst.CompareAndSwap(true, false) {
		return Predictions{}, nil, errors.New("transient")
	}
	preds := make([]float64, f.Len)
	var errs []error
	for i, v := range f.Num[0] {
		if math.IsNaN(v) {
			if errs == nil {
				errs = make([]error, f.Len)
			}
			errs[i] = errors.New("x is empty")
		}
		preds[i] = 2 * v
	}
	return Predictions{Num: preds}, errs, nil
}

// scorerKinds runs a test with the text-row and the frame interfaces; the
// runner takes different paths for each.
func scorerKinds(t *testing.T, test func(t *testing.T, fresh func() (Scorer, *doubler))) {
	t.Run("rows", func(t *testing.T) {
		test(t, func() (Scorer, *doubler) { d := &doubler{}; return d, d })
	})
	t.Run("frames", func(t *testing.T) {
		test(t, func() (Scorer, *doubler) { d := &doubler{}; return frameDoubler{d}, d })
	})
}

func writeCSV(t *testing.T, path string, rows int, from int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("id,x\n")
	for i := 0; i < rows; i++ {
		fmt.Fprintf(&b, "%d,%d\n", from+i, from+i)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSingleFileInRowRangesWithRetryAndResume(t *testing.T) {
	scorerKinds(t, testSingleFileInRowRangesWithRetryAndResume)
}

func testSingleFileInRowRangesWithRetryAndResume(t *testing.T, fresh func() (Scorer, *doubler)) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	writeCSV(t, in, 1000, 0)
	s, d := fresh()
	d.failFirst.Store(true)
	cfg := Config{Input: in, Output: filepath.Join(dir, "out"), StateDir: filepath.Join(dir, "state"), RowsPerBatch: 64, Workers: 3, MaxRetries: 1, ErrorThreshold: -1}
	sum, err := Run(t.Context(), cfg, s)
	if err != nil {
		t.Fatal(err)
	}
	if sum.MiniBatches != 16 || sum.Succeeded != 16 || sum.FailedItems != 0 || sum.Rows != 1000 {
		t.Fatalf("summary %+v", sum)
	}
	out, err := os.ReadFile(filepath.Join(dir, "out", "predictions.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 1001 || lines[0] != "file_name,row,prediction" || lines[1] != "in.csv,1,0" || lines[1000] != "in.csv,1000,1998" {
		t.Fatalf("%d lines; first %q, last %q", len(lines), lines[1], lines[len(lines)-1])
	}
	// A second run of the job (a retry after a crash) scores nothing
	// again and writes every row once.
	calls := d.calls.Load()
	sum, err = Run(t.Context(), cfg, s)
	if err != nil || sum.Reused != 16 || d.calls.Load() != calls {
		t.Fatalf("resume: %+v, %v, %d new calls", sum, err, d.calls.Load()-calls)
	}
	again, _ := os.ReadFile(filepath.Join(dir, "out", "predictions.csv"))
	if string(again) != string(out) {
		t.Error("the resumed run's output differs")
	}
}

func TestFolderBadItemsThresholdAndSummaryOnly(t *testing.T) {
	scorerKinds(t, testFolderBadItemsThresholdAndSummaryOnly)
}

func testFolderBadItemsThresholdAndSummaryOnly(t *testing.T, fresh func() (Scorer, *doubler)) {
	scorer := func() Scorer { s, _ := fresh(); return s }
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	os.MkdirAll(in, 0o755)
	for i := 0; i < 5; i++ {
		writeCSV(t, filepath.Join(in, fmt.Sprintf("part-%d.csv", i)), 10, i*10)
	}
	os.WriteFile(filepath.Join(in, "part-5.csv"), []byte("id,y\n1,2\n"), 0o644)        // wrong columns
	os.WriteFile(filepath.Join(in, "part-6.csv"), []byte("id,x\n1,abc\n2,4\n"), 0o644) // one bad row
	base := Config{Input: in, MiniBatchSize: 2, Workers: 2, MaxRetries: 0, ErrorThreshold: -1}
	cfg := base
	cfg.Output, cfg.StateDir = filepath.Join(dir, "o1"), filepath.Join(dir, "s1")
	sum, err := Run(t.Context(), cfg, scorer())
	if err != nil {
		t.Fatal(err)
	}
	if sum.MiniBatches != 4 || sum.FailedItems != 2 || sum.Rows != 51 || len(sum.Errors) != 2 {
		t.Fatalf("summary %+v", sum)
	}
	joined := strings.Join(sum.Errors, "\n")
	noX := "part-5.csv: no column x"
	if _, ok := scorer().(FrameScorer); ok {
		noX = "part-5.csv: missing column(s) x (the data has id, y)"
	}
	if !strings.Contains(joined, noX) || !strings.Contains(joined, `part-6.csv row 1: `) || !strings.Contains(joined, `"abc" is not a number`) {
		t.Errorf("errors %q", joined)
	}
	// Two failed items are more than a threshold of 1: the run fails and
	// says why.
	cfg = base
	cfg.Output, cfg.StateDir, cfg.ErrorThreshold = filepath.Join(dir, "o2"), filepath.Join(dir, "s2"), 1
	if _, err := Run(t.Context(), cfg, scorer()); err == nil || !strings.Contains(err.Error(), "exceed error_threshold 1") {
		t.Errorf("threshold: %v", err)
	}
	cfg = base
	cfg.Output, cfg.StateDir, cfg.SummaryOnly = filepath.Join(dir, "o3"), filepath.Join(dir, "s3"), true
	if _, err := Run(t.Context(), cfg, scorer()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "o3", "predictions.csv")); !os.IsNotExist(err) {
		t.Error("summary_only wrote predictions")
	}
	if _, err := Run(t.Context(), Config{Input: filepath.Join(dir, "missing.csv"), Output: dir, StateDir: filepath.Join(dir, "s4")}, scorer()); err == nil {
		t.Error("a missing input was accepted")
	}
}

// TestResumedRunStillCountsEarlierFailures: a run that crossed the
// threshold fails again when retried from its state, instead of passing
// because the failing mini-batch is already done.
func TestResumedRunStillCountsEarlierFailures(t *testing.T) {
	scorerKinds(t, testResumedRunStillCountsEarlierFailures)
}

func testResumedRunStillCountsEarlierFailures(t *testing.T, fresh func() (Scorer, *doubler)) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	os.WriteFile(in, []byte("id,x\n1,1\n2,abc\n3,3\n"), 0o644)
	cfg := Config{Input: in, Output: filepath.Join(dir, "out"), StateDir: filepath.Join(dir, "state"), ErrorThreshold: 0}
	for i := 0; i < 2; i++ {
		s, _ := fresh()
		if _, err := Run(t.Context(), cfg, s); err == nil || !strings.Contains(err.Error(), `"abc" is not a number`) {
			t.Fatalf("run %d: %v", i+1, err)
		}
	}
}

// TestParquetInputSingleFileAndFolder scores a Parquet file in row ranges
// and a folder mixing Parquet and CSV files, each row once and attributed
// to its file and row.
func TestParquetInputSingleFileAndFolder(t *testing.T) {
	scorerKinds(t, testParquetInputSingleFileAndFolder)
}

func testParquetInputSingleFileAndFolder(t *testing.T, fresh func() (Scorer, *doubler)) {
	scorer := func() Scorer { s, _ := fresh(); return s }
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	os.MkdirAll(in, 0o755)
	pq := filepath.Join(in, "a.parquet")
	w, err := tabular.CreateParquet(pq, []string{"id", "x"}, []bool{true, true})
	if err != nil {
		t.Fatal(err)
	}
	f := &tabular.Frame{Columns: []string{"id", "x"}, Num: [][]float64{make([]float64, 250), make([]float64, 250)}, Text: make([][]string, 2), Len: 250}
	for i := 0; i < 250; i++ {
		f.Num[0][i], f.Num[1][i] = float64(i), float64(i)+0.5
	}
	if err := w.Write(f); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	writeCSV(t, filepath.Join(in, "b.csv"), 10, 1000)

	check := func(out string, wantRows int, files map[string]int) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(out, "predictions.csv"))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")[1:]
		if len(lines) != wantRows {
			t.Fatalf("%d rows, want %d", len(lines), wantRows)
		}
		seen := map[string]bool{}
		got := map[string]int{}
		for _, l := range lines {
			p := strings.Split(l, ",")
			if seen[p[0]+"/"+p[1]] {
				t.Fatalf("row %s written twice", l)
			}
			seen[p[0]+"/"+p[1]] = true
			got[p[0]]++
			row, _ := strconv.Atoi(p[1])
			want := 2 * (float64(row-1) + 0.5)
			if p[0] == "b.csv" {
				want = 2 * float64(1000+row-1)
			}
			if v, _ := strconv.ParseFloat(p[2], 64); v != want {
				t.Fatalf("line %q: want %v", l, want)
			}
		}
		for k, n := range files {
			if got[k] != n {
				t.Errorf("%s: %d rows, want %d", k, got[k], n)
			}
		}
	}
	out := filepath.Join(dir, "out1")
	sum, err := Run(context.Background(), Config{Input: pq, Output: out, StateDir: filepath.Join(dir, "s1"), RowsPerBatch: 100, Workers: 2}, scorer())
	if err != nil {
		t.Fatal(err)
	}
	if sum.MiniBatches != 3 || sum.Rows != 250 {
		t.Errorf("summary %+v, want 3 mini-batches of 250 rows", sum)
	}
	check(out, 250, map[string]int{"a.parquet": 250})

	out = filepath.Join(dir, "out2")
	if _, err := Run(context.Background(), Config{Input: in, Output: out, StateDir: filepath.Join(dir, "s2"), MiniBatchSize: 1, Workers: 2}, scorer()); err != nil {
		t.Fatal(err)
	}
	check(out, 260, map[string]int{"a.parquet": 250, "b.csv": 10})
}

// TestCSVChunksMatchTheCSVReader scores a CSV with quoted fields that hold
// line ends and quotes, CRLF line ends, blank lines, a bad row, a bare
// quote and no final line end, in row ranges that cut through it, with both scorer
// kinds: the frame path cuts records itself, the row path uses
// encoding/csv throughout, and both must attribute every row alike.
func TestCSVChunksMatchTheCSVReader(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	data := "id,note,x\r\n" +
		"1,plain,1\r\n" +
		"2,\"two\nlines\",2\r\n" +
		"\r\n" +
		"3,\"say \"\"hi\"\"\",3\n" +
		"4,\"a,b\",abc\n" +
		"5,\"\"\"\n\",5\n" +
		"\n" +
		"6,last,6\n" +
		"7,5\" screen,7\n" +
		"8,ok,8"
	if err := os.WriteFile(in, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{}
	for kind, s := range map[string]Scorer{"rows": &doubler{}, "frames": frameDoubler{&doubler{}}} {
		cfg := Config{Input: in, Output: filepath.Join(dir, kind), StateDir: filepath.Join(dir, kind+"-state"), RowsPerBatch: 2, Workers: 2, ErrorThreshold: -1}
		sum, err := Run(t.Context(), cfg, s)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		// The mini-batches finish in any order, and so are their errors
		// listed.
		errs := slices.Sorted(slices.Values(sum.Errors))
		if sum.FailedItems != 2 || len(errs) != 2 || !strings.HasPrefix(errs[0], "in.csv row 4: ") ||
			!strings.HasPrefix(errs[1], "in.csv row 7: ") || sum.Rows != 6 {
			t.Errorf("%s: summary %+v", kind, sum)
		}
		b, err := os.ReadFile(filepath.Join(dir, kind, "predictions.csv"))
		if err != nil {
			t.Fatal(err)
		}
		outputs[kind] = string(b)
	}
	want := "file_name,row,prediction\nin.csv,1,2\nin.csv,2,4\nin.csv,3,6\nin.csv,5,10\nin.csv,6,12\nin.csv,8,16\n"
	for kind, got := range outputs {
		if got != want {
			t.Errorf("%s wrote\n%s\nwant\n%s", kind, got, want)
		}
	}
}

// TestFramesRefuseAFileWithoutTheInputsAtOnce: a single file lacking a
// column the model reads fails the run before any mini-batch is scored,
// naming the file and the column.
func TestFramesRefuseAFileWithoutTheInputsAtOnce(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	os.WriteFile(in, []byte("id,y\n1,2\n"), 0o644)
	d := &doubler{}
	_, err := Run(t.Context(), Config{Input: in, Output: filepath.Join(dir, "out"), StateDir: filepath.Join(dir, "s"), MaxRetries: 3}, frameDoubler{d})
	if err == nil || !strings.Contains(err.Error(), "input in.csv: missing column(s) x (the data has id, y)") {
		t.Fatalf("got %v", err)
	}
	if d.calls.Load() != 0 {
		t.Errorf("%d mini-batches were tried", d.calls.Load())
	}
}
