package batch

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharfml/wharf/linear"
)

// TestOpenModelScoresALinearModelInProcess runs a saved Wharf linear model
// over a CSV file with the runner: columns are found by name, whatever
// their order, and a row with an empty value is a failed item that names
// the column, not a failed mini-batch.
func TestOpenModelScoresALinearModelInProcess(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	m := &linear.Model{Columns: []string{"distance", "hour"}, Coef: []float64{2, 0.5}, Intercept: 1}
	if err := m.Save(model); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "trips.csv")
	if err := os.WriteFile(in, []byte("hour,id,distance\n10,a,3\n4,b,\n0,c,1.5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, closer, err := OpenModel(t.Context(), model, Workers{N: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	if _, ok := s.(FrameScorer); !ok {
		t.Fatalf("a linear model's scorer %T does not take frames", s)
	}
	cfg := Config{Input: in, Output: filepath.Join(dir, "out"), StateDir: filepath.Join(dir, "state"), RowsPerBatch: 100, Workers: 1, ErrorThreshold: -1}
	sum, err := Run(t.Context(), cfg, s)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Rows != 2 || sum.FailedItems != 1 || len(sum.Errors) != 1 || !strings.Contains(sum.Errors[0], "distance is empty") {
		t.Fatalf("summary %+v", sum)
	}
	out, err := os.ReadFile(filepath.Join(dir, "out", "predictions.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), "file_name,row,prediction\ntrips.csv,1,12\ntrips.csv,3,4\n"; got != want {
		t.Errorf("predictions\n%s\nwant\n%s", got, want)
	}

	// The text-row path, used for files the runner hands over as rows.
	preds, errs, err := s.Score(t.Context(), []string{"distance", "hour"}, [][]string{{"1", "2"}, {"x", "2"}, {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	if preds[0] != "4" || errs[0] != nil || errs[1] == nil || !strings.Contains(errs[1].Error(), `"x" is not a number`) || errs[2] == nil {
		t.Errorf("rows scored %q, errors %v", preds, errs)
	}
	if _, _, err := s.Score(t.Context(), []string{"distance"}, [][]string{{"1"}}); err == nil || !strings.Contains(err.Error(), "missing columns hour") {
		t.Errorf("a file without the hour column: %v", err)
	}
}

// TestOpenModelNeedsAnMLflowModel refuses folders that are not a model
// the runner can score by itself, pointing to a batch driver.
func TestOpenModelNeedsAnMLflowModel(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := OpenModel(t.Context(), dir, Workers{}); err == nil || !strings.Contains(err.Error(), "no MLmodel file") || !strings.Contains(err.Error(), "scoring_script") {
		t.Errorf("a folder without MLmodel: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "MLmodel"), []byte("flavors:\n  sklearn:\n    pickled_model: model.pkl\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenModel(t.Context(), dir, Workers{}); err == nil || !strings.Contains(err.Error(), "neither a Wharf linear model nor an MLflow pyfunc model") {
		t.Errorf("a model without the pyfunc flavor: %v", err)
	}
}

// TestFloatValueKeepsADecimalPoint: pandas reads 5 as int64, which MLflow
// refuses for a double column, so whole floats go as 5.0, and what JSON
// cannot spell as null.
func TestFloatValueKeepsADecimalPoint(t *testing.T) {
	b, err := json.Marshal([]floatValue{5, 2.5, 1e21, floatValue(math.NaN()), floatValue(math.Inf(-1))})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "[5.0,2.5,1e+21,null,null]"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// TestStartDriverNeedsTheScript refuses a scoring script that is not in
// the code folder before any Python starts.
func TestStartDriverNeedsTheScript(t *testing.T) {
	dir := t.TempDir()
	_, err := StartDriver(t.Context(), dir, dir, "score.py", filepath.Join(dir, "out"), Workers{N: 2}, DriverOptions{})
	if err == nil || !strings.Contains(err.Error(), "scoring_script score.py is not a file in the code folder") {
		t.Errorf("missing script: %v", err)
	}
}
