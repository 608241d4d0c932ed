package batch

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// tableLister is a TableScorer: for each row range it answers one line
// per row, "file id", and records each range's file and size.
type tableLister struct {
	lister
	mu     sync.Mutex
	ranges []tableRange
}

type tableRange struct {
	name  string
	rows  int
	bytes int64
}

func (l *tableLister) ScoreTable(ctx context.Context, path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	recs, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
	if err != nil {
		return nil, err
	}
	header := len(recs[0][0]) + len(recs[0][1]) + 2
	l.mu.Lock()
	l.ranges = append(l.ranges, tableRange{filepath.Base(path), len(recs) - 1, int64(len(b) - header)})
	l.mu.Unlock()
	var lines []string
	for _, r := range recs[1:] {
		lines = append(lines, filepath.Base(path)+" "+r[0])
	}
	return lines, nil
}

// TestTabularFolderInByteSizedRanges: in tabular mode each CSV file of a
// folder is cut into ranges of about BytesPerBatch bytes, never across
// files, each scored as a table; every row comes back once.
func TestTabularFolderInByteSizedRanges(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	if err := os.MkdirAll(in, 0o755); err != nil {
		t.Fatal(err)
	}
	writeCSV(t, filepath.Join(in, "a.csv"), 100, 0)
	writeCSV(t, filepath.Join(in, "b.csv"), 50, 1000)
	if err := os.WriteFile(filepath.Join(in, "MLTable"), []byte("paths:\n  - pattern: ./*.csv\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &tableLister{}
	cfg := Config{Input: in, Output: filepath.Join(dir, "out"), OutputFile: "rows.txt", StateDir: filepath.Join(dir, "state"),
		BytesPerBatch: 200, Tabular: true, Workers: 3, ErrorThreshold: -1, MiniBatchLimits: &MiniBatchLimits{ErrorThreshold: 0, AllowedFailedPercent: 100}}
	sum, err := RunFiles(t.Context(), cfg, s)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Rows != 150 || sum.FailedMiniBatches != 0 || sum.MiniBatches != len(s.ranges) {
		t.Errorf("summary %+v for %d ranges", sum, len(s.ranges))
	}
	if len(s.batches) != 0 {
		t.Errorf("ranges went to ScoreFiles: %v", s.batches)
	}
	rowsOf := map[string]int{}
	for _, r := range s.ranges {
		rowsOf[r.name] += r.rows
		// A range stops at the first row that takes it to the size.
		if r.bytes > 200+10 {
			t.Errorf("range of %s: %d rows, %d bytes, over about 200", r.name, r.rows, r.bytes)
		}
	}
	if rowsOf["a.csv"] != 100 || rowsOf["b.csv"] != 50 || len(s.ranges) < 150*7/200 {
		t.Errorf("rows by file %v in %d ranges", rowsOf, len(s.ranges))
	}
	b, err := os.ReadFile(filepath.Join(dir, "out", "rows.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var want []string
	for i := 0; i < 100; i++ {
		want = append(want, fmt.Sprintf("a.csv %d", i))
	}
	for i := 1000; i < 1050; i++ {
		want = append(want, fmt.Sprintf("b.csv %d", i))
	}
	if !slices.Equal(lines, want) {
		t.Errorf("output is not every row once, in order:\n%s", b)
	}
}

// shortLister answers one line per file, leaving out files named short*
// and raising for files named bad*.
type shortLister struct {
	mu    sync.Mutex
	calls map[string]int
}

func (l *shortLister) ScoreFiles(ctx context.Context, files []string) ([]string, error) {
	var lines []string
	for _, f := range files {
		name := filepath.Base(f)
		l.mu.Lock()
		l.calls[name]++
		l.mu.Unlock()
		switch {
		case strings.HasPrefix(name, "bad"):
			return nil, fmt.Errorf("cannot read %s", name)
		case strings.HasPrefix(name, "short"):
		default:
			lines = append(lines, name)
		}
	}
	return lines, nil
}

// TestMiniBatchLimits: a mini-batch whose run() returns too few rows
// fails (its shortfall failed items) without a retry; one that raises
// fails after its retries; mini_batch_error_threshold and
// allowed_failed_percent end the run past them.
func TestMiniBatchLimits(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	if err := os.MkdirAll(in, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a1", "a2", "b1", "bad", "c1", "short", "d1", "d2"} {
		if err := os.WriteFile(filepath.Join(in, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(name string, limits MiniBatchLimits) (*Summary, *shortLister, error) {
		s := &shortLister{calls: map[string]int{}}
		cfg := Config{Input: in, Output: filepath.Join(dir, name), StateDir: filepath.Join(dir, name+"-state"), MiniBatchSize: 2,
			Workers: 1, MaxRetries: 2, ErrorThreshold: -1, MiniBatchLimits: &limits}
		sum, err := RunFiles(t.Context(), cfg, s)
		return sum, s, err
	}
	// Mini-batches: [a1 a2] [b1 bad] [c1 d1] [d2 short].
	sum, s, err := run("tolerated", MiniBatchLimits{ErrorThreshold: 2, AllowedFailedPercent: 100})
	if err != nil {
		t.Fatal(err)
	}
	if sum.FailedMiniBatches != 2 || sum.Succeeded != 2 || sum.FailedItems != 3 || sum.Rows != 5 {
		t.Errorf("summary %+v; want 2 failed mini-batches, 3 failed items (b1, bad, short), 5 rows", sum)
	}
	if s.calls["bad"] != 3 || s.calls["short"] != 1 {
		t.Errorf("calls %v: the raising mini-batch is tried 3 times, the short one once", s.calls)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "tolerated", "predictions.csv"))
	if got := strings.Fields(string(b)); !slices.Equal(got, []string{"a1", "a2", "c1", "d1", "d2"}) {
		t.Errorf("rows %v", got)
	}
	if _, _, err := run("threshold", MiniBatchLimits{ErrorThreshold: 1, AllowedFailedPercent: 100}); err == nil ||
		!strings.Contains(err.Error(), "2 failed mini-batches exceed mini_batch_error_threshold 1") {
		t.Errorf("past mini_batch_error_threshold: %v", err)
	}
	if _, _, err := run("percent", MiniBatchLimits{ErrorThreshold: -1, AllowedFailedPercent: 40}); err == nil ||
		err.Error() != "2 of 4 mini-batches failed (50%), more than allowed_failed_percent 40" {
		t.Errorf("past allowed_failed_percent: %v", err)
	}
	if _, _, err := run("percent-ok", MiniBatchLimits{ErrorThreshold: -1, AllowedFailedPercent: 50}); err != nil {
		t.Errorf("at allowed_failed_percent: %v", err)
	}
}
