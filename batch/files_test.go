package batch

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// lister is a FileScorer that answers, for each file, one line per data
// row: the file's name and the row's fields. It fails the first attempt of
// the mini-batch holding failOnce, and every attempt of one holding
// failAlways, and records the mini-batches it was given.
type lister struct {
	mu         sync.Mutex
	batches    [][]string
	failOnce   string
	failAlways string
}

func (l *lister) ScoreFiles(ctx context.Context, files []string) ([]string, error) {
	l.mu.Lock()
	l.batches = append(l.batches, slices.Clone(files))
	l.mu.Unlock()
	var lines []string
	for _, f := range files {
		name := filepath.Base(f)
		if name == l.failAlways {
			return nil, fmt.Errorf("cannot score %s", name)
		}
		l.mu.Lock()
		once := name == l.failOnce
		if once {
			l.failOnce = ""
		}
		l.mu.Unlock()
		if once {
			return nil, errors.New("worker died")
		}
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		recs, err := csv.NewReader(fh).ReadAll()
		fh.Close()
		if err != nil {
			return nil, err
		}
		if len(recs) == 0 || strings.Join(recs[0], ",") != "id,x" {
			return nil, fmt.Errorf("%s has no header row id,x", name)
		}
		for _, r := range recs[1:] {
			lines = append(lines, name+" "+strings.Join(r, " "))
		}
	}
	return lines, nil
}

func TestRunFilesFolderWritesDriverRowsAsTheyAre(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	os.MkdirAll(in, 0o755)
	for i := 0; i < 5; i++ {
		writeCSV(t, filepath.Join(in, fmt.Sprintf("part-%d.csv", i)), 3, i*3)
	}
	l := &lister{failOnce: "part-2.csv", failAlways: "part-4.csv"}
	cfg := Config{Input: in, Output: filepath.Join(dir, "out"), StateDir: filepath.Join(dir, "state"),
		MiniBatchSize: 2, Workers: 2, MaxRetries: 1, ErrorThreshold: -1}
	sum, err := RunFiles(t.Context(), cfg, l)
	if err != nil {
		t.Fatal(err)
	}
	// part-4.csv fails both attempts: its mini-batch's one file is one
	// failed item, with the scorer's message.
	if sum.MiniBatches != 3 || sum.Succeeded != 2 || sum.FailedItems != 1 || sum.Rows != 12 ||
		len(sum.Errors) != 1 || !strings.Contains(sum.Errors[0], "mini-batch 2 failed after 2 attempts: cannot score part-4.csv") {
		t.Fatalf("summary %+v", sum)
	}
	for _, b := range l.batches {
		if len(b) == 0 || len(b) > 2 {
			t.Errorf("a mini-batch of %d files", len(b))
		}
		for _, f := range b {
			if !strings.HasPrefix(f, in+string(filepath.Separator)) {
				t.Errorf("path %s is not under the input folder", f)
			}
		}
	}
	out, err := os.ReadFile(filepath.Join(dir, "out", "predictions.csv"))
	if err != nil {
		t.Fatal(err)
	}
	// No header; the rows in mini-batch order, each once, though part-2's
	// mini-batch was scored twice.
	var want strings.Builder
	for i := 0; i < 12; i++ {
		fmt.Fprintf(&want, "part-%d.csv %d %d\n", i/3, i, i)
	}
	if string(out) != want.String() {
		t.Errorf("output:\n%s\nwant:\n%s", out, want.String())
	}
	// A re-run of the job reuses every finished mini-batch and scores
	// only the failed one again.
	l.batches = nil
	sum, err = RunFiles(t.Context(), cfg, l)
	if err != nil || sum.Reused != 2 || len(l.batches) != 2 {
		t.Fatalf("resume: %+v, %v, batches %q", sum, err, l.batches)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "out", "predictions.csv")); string(again) != string(out) {
		t.Errorf("the resumed output differs:\n%s", again)
	}
}

func TestRunFilesSingleFileGivesEachRangeAFileWithTheHeader(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "taxi.csv")
	writeCSV(t, in, 10, 0)
	l := &lister{}
	cfg := Config{Input: in, Output: filepath.Join(dir, "out"), StateDir: filepath.Join(dir, "state"), RowsPerBatch: 4, Workers: 1, ErrorThreshold: 0}
	sum, err := RunFiles(t.Context(), cfg, l)
	if err != nil {
		t.Fatal(err)
	}
	if sum.MiniBatches != 3 || sum.Rows != 10 || sum.FailedItems != 0 {
		t.Fatalf("summary %+v", sum)
	}
	for _, b := range l.batches {
		if len(b) != 1 || filepath.Base(b[0]) != "taxi.csv" || b[0] == in {
			t.Errorf("a range's mini-batch %q, want one copy named taxi.csv", b)
		}
		if _, err := os.Stat(b[0]); !os.IsNotExist(err) {
			t.Errorf("the range file %s is left behind", b[0])
		}
	}
	out, _ := os.ReadFile(filepath.Join(dir, "out", "predictions.csv"))
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != 10 || lines[0] != "taxi.csv 0 0" || lines[9] != "taxi.csv 9 9" {
		t.Errorf("output %q", lines)
	}
	// A range whose every attempt fails counts its rows as failed items
	// against the threshold.
	l = &lister{failAlways: "taxi.csv"}
	cfg.Output, cfg.StateDir, cfg.ErrorThreshold = filepath.Join(dir, "o2"), filepath.Join(dir, "s2"), 5
	if _, err := RunFiles(t.Context(), cfg, l); err == nil || !strings.Contains(err.Error(), "exceed error_threshold 5") ||
		!strings.Contains(err.Error(), "cannot score taxi.csv") {
		t.Errorf("threshold: %v", err)
	}
}
