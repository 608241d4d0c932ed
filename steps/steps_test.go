package steps

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/linear"
	"github.com/wharfml/wharf/tabular"
	"github.com/wharfml/wharf/taxigen"
)

// TestStepsOutsideAJob runs generate, split, train, evaluate and register
// as a pipeline would, without a tracking server: nothing is logged, the
// candidate has nothing to be compared with, and registering refuses.
func TestStepsOutsideAJob(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	var log strings.Builder
	gen, err := GenerateTaxi(ctx, GenerateConfig{Out: filepath.Join(dir, "raw"), Rows: 3000, BatchRows: 10, Spec: taxigen.Spec{Seed: 3, Days: 31}}, &log)
	if err != nil {
		t.Fatal(err)
	}
	if gen.Rows != 3000 || gen.Days != 31 || gen.Format != "csv" || gen.Start != "2016-01-01" || len(gen.Files) != 3 {
		t.Fatalf("generated %+v", gen)
	}

	split := SplitConfig{RawData: gen.Files[0], TrainData: filepath.Join(dir, "train"), ValData: filepath.Join(dir, "val"),
		TestData: filepath.Join(dir, "test"), Format: "parquet", Seed: 42, TrainFraction: 0.7, ValFraction: 0.15}
	sp, err := Split(ctx, split, &log)
	if err != nil {
		t.Fatal(err)
	}
	if sp.TrainRows+sp.ValRows+sp.TestRows != 3000 || sp.TrainRows < 1900 || sp.TestRows < 300 {
		t.Fatalf("split %+v", sp)
	}
	again, err := Split(ctx, split, nil)
	if err != nil || *again != *sp {
		t.Fatalf("the same seed split %+v then %+v (%v)", sp, again, err)
	}

	model := filepath.Join(dir, "model")
	tr, err := TrainLinearRegression(ctx, TrainConfig{TrainData: split.TrainData, TestData: split.TestData, Target: "cost", ModelOutput: model}, &log)
	if err != nil {
		t.Fatal(err)
	}
	// January only: both month columns are 1 in every row.
	if strings.Join(tr.Dropped, ",") != "pickup_month,dropoff_month" || tr.Rows != sp.TrainRows || tr.Metrics["r2"] < 0.9 {
		t.Fatalf("trained %+v", tr)
	}

	evalDir := filepath.Join(dir, "eval")
	ev, err := EvaluateRegression(ctx, EvaluateConfig{ModelName: "taxi", ModelInput: model, TestData: split.TestData, Target: "cost", Output: evalDir}, &log)
	if err != nil {
		t.Fatal(err)
	}
	if ev.DeployFlag != 1 || ev.Reason != "no registered version to compare with" || ev.Candidate.Rows != sp.TestRows || ev.Candidate.R2 != tr.Metrics["r2"] {
		t.Fatalf("evaluation %+v, trained %+v", ev, tr.Metrics)
	}
	for _, f := range []string{"metrics.json", "predictions.csv", "deploy_flag", "perf_comparison.svg", "perf_comparison.png"} {
		if st, err := os.Stat(filepath.Join(evalDir, f)); err != nil || st.Size() == 0 {
			t.Errorf("evaluation output %s: %v", f, err)
		}
	}
	if !strings.Contains(log.String(), "not running in a job") || !strings.Contains(log.String(), "deploy_flag 1") {
		t.Errorf("log:\n%s", log.String())
	}

	reg := RegisterConfig{ModelName: "taxi", ModelPath: model, EvaluationOutput: evalDir, ModelInfoOutput: filepath.Join(dir, "info")}
	if _, err := RegisterModel(ctx, reg, nil); !errors.Is(err, ErrNoTracking) {
		t.Errorf("registering outside a job: %v", err)
	}
	// A candidate the evaluation turned down is not registered, with or
	// without a server, and says why.
	if err := os.WriteFile(filepath.Join(evalDir, "deploy_flag"), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := RegisterModel(ctx, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var written ModelInfo
	b, err := os.ReadFile(filepath.Join(reg.ModelInfoOutput, "model_info.json"))
	if err != nil || json.Unmarshal(b, &written) != nil {
		t.Fatalf("model_info.json: %v", err)
	}
	if info.Registered || written.Registered || written.Reason != ev.Reason || written.Metrics["r2"] != ev.Candidate.R2 {
		t.Errorf("model info %+v, written %+v", info, written)
	}
	if err := os.WriteFile(filepath.Join(evalDir, "deploy_flag"), []byte("yes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := RegisterModel(ctx, reg, nil); wharf.ErrorCode(err) != wharf.EINVALID || !strings.Contains(err.Error(), "want 0 or 1") {
		t.Errorf("a deploy_flag of yes: %v", err)
	}
}

// TestStepsRefuseBadInput: bad input is an EINVALID error that says what
// is wrong, before anything is written.
func TestStepsRefuseBadInput(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	csv := filepath.Join(dir, "d.csv")
	if err := os.WriteFile(csv, []byte("x,y\n1,2\n2,4\n3,7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"split fractions", func() error {
			_, err := Split(ctx, SplitConfig{RawData: csv, Format: "csv", TrainFraction: 0.9, ValFraction: 0.2}, nil)
			return err
		}(), "sum to at most 1"},
		{"split format", func() error {
			_, err := Split(ctx, SplitConfig{RawData: csv, Format: "json", TrainFraction: 0.5}, nil)
			return err
		}(), `format "json"`},
		{"split missing data", func() error {
			_, err := Split(ctx, SplitConfig{RawData: filepath.Join(dir, "none"), Format: "csv", TrainFraction: 0.5}, nil)
			return err
		}(), "none"},
		{"train target", func() error {
			_, err := TrainLinearRegression(ctx, TrainConfig{TrainData: csv, Target: "z", ModelOutput: filepath.Join(dir, "m")}, nil)
			return err
		}(), `target column "z" is not in the data`},
		{"evaluate model", func() error {
			_, err := EvaluateRegression(ctx, EvaluateConfig{ModelName: "m", ModelInput: dir, TestData: csv, Target: "y", Output: filepath.Join(dir, "e")}, nil)
			return err
		}(), "has no MLmodel file"},
		{"register flag", func() error {
			_, err := RegisterModel(ctx, RegisterConfig{ModelName: "m", ModelPath: dir, EvaluationOutput: dir, ModelInfoOutput: filepath.Join(dir, "i")}, nil)
			return err
		}(), "no deploy_flag file"},
		{"batch driver", func() error {
			_, err := BatchScore(ctx, BatchScoreConfig{Model: dir, Code: dir}, nil)
			return err
		}(), "both its code folder and its scoring script"},
	} {
		if wharf.ErrorCode(c.err) != wharf.EINVALID || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: %v, want EINVALID with %q", c.name, c.err, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "m")); err == nil {
		t.Error("a failed training wrote a model")
	}
}

// TestScoreTableMatchesTheModel scores a file the same as predicting each
// row, with scikit-learn's R².
func TestScoreTableMatchesTheModel(t *testing.T) {
	csv := filepath.Join(t.TempDir(), "d.csv")
	if err := os.WriteFile(csv, []byte("x,y\n1,2\n2,4\n3,7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := &linear.Model{Columns: []string{"x"}, Coef: []float64{2}, Intercept: 0}
	var seen int
	sc, err := ScoreTable(m, csv, "y", func(_ *tabular.Frame, pred, y []float64) error {
		seen += len(pred)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Residuals 0, 0, 1; y's mean 13/3, sum of squares 38/3.
	if seen != 3 || sc.Rows != 3 || math.Abs(sc.MSE-1.0/3) > 1e-15 || math.Abs(sc.MAE-1.0/3) > 1e-15 || math.Abs(sc.R2-(1-3/38.0)) > 1e-15 {
		t.Errorf("scores %+v over %d rows", sc, seen)
	}
}
