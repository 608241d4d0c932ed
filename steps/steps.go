// Package steps holds Wharf's built-in pipeline steps as library code:
// splitting data (Split), fitting a linear regression (TrainLinearRegression),
// comparing a candidate with the registered versions of its name
// (EvaluateRegression), registering it when it is at least as good
// (RegisterModel), scoring a batch endpoint's input (BatchScore) and
// writing synthetic data (GenerateTaxi).
//
// `wharf prep`, `train`, `evaluate`, `register`, `batch-score` and
// `generate` are thin commands over these functions, and a pipeline step
// runs those commands as $WHARF, with no Python. Each function takes a
// context, a config and a writer for its progress and warnings, and
// returns what the command prints; a step in a job logs to the job's
// MLflow run through Config.Tracking.
package steps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/linear"
	"github.com/wharfml/wharf/tabular"
)

// OpenTable opens a CSV or Parquet file, or a folder of them, for one
// pass, as linear.Train takes its data: the trainer opens it again for a
// second pass when it has to.
func OpenTable(path string) func() (tabular.Reader, error) {
	return func() (tabular.Reader, error) {
		r, err := tabular.OpenAll(path, tabular.Options{})
		if err != nil {
			return nil, err
		}
		return r, nil
	}
}

// ScoreTable scores a model on labelled data, streaming, with the metrics
// scikit-learn computes; each, when set, sees every batch with its
// predictions and targets. Data the model cannot score is EINVALID.
func ScoreTable(m *linear.Model, path, target string, each func(f *tabular.Frame, pred, y []float64) error) (linear.Scores, error) {
	r, err := tabular.OpenAll(path, tabular.Options{})
	if err != nil {
		return linear.Scores{}, wharf.Errorf(wharf.EINVALID, "%v", err)
	}
	defer r.Close()
	var sc linear.Scorer
	for {
		f, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return linear.Scores{}, wharf.Errorf(wharf.EINVALID, "%s: %v", path, err)
		}
		ti := f.Index(target)
		if ti < 0 {
			return linear.Scores{}, wharf.Errorf(wharf.EINVALID, "%s: target column %q is not in the data", path, target)
		}
		y, err := f.Numeric(ti)
		if err != nil {
			return linear.Scores{}, wharf.Errorf(wharf.EINVALID, "%s: %v", path, err)
		}
		pred, err := m.PredictFrame(f)
		if err != nil {
			return linear.Scores{}, wharf.Errorf(wharf.EINVALID, "%s: %v", path, err)
		}
		sc.Add(pred, y)
		if each != nil {
			if err := each(f, pred, y); err != nil {
				return linear.Scores{}, err
			}
		}
	}
	return sc.Scores(), nil
}

// logOrWarn logs metrics and params to the step's run. A failure is only
// a warning on log, "warning: <warn>: <error>": the step's outputs, not
// its run, are what the later steps read, so a tracking hiccup must not
// fail the pipeline.
func (t *Tracking) logOrWarn(ctx context.Context, log io.Writer, warn string, metrics map[string]float64, params map[string]string) {
	if err := t.logBatch(ctx, metrics, params); err != nil {
		fmt.Fprintf(log, "warning: %s: %v\n", warn, err)
	}
}

// orDiscard is w, or a writer that drops everything when w is nil, so a
// caller that wants no progress need not pass one.
func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// pathErr is the reason of a file error without its path, for messages
// that name the file already.
func pathErr(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
