package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/linear"
	"github.com/wharfml/wharf/tabular"
)

// trainCommand holds Wharf's built-in trainers, which run as pipeline
// steps without Python and produce models the router serves natively.
func (a *app) trainCommand() *cobra.Command {
	train := &cobra.Command{Use: "train", Short: "Built-in trainers (run as pipeline steps; no Python needed)"}
	var data, test, target, features, output, solver string
	var alpha float64
	lr := &cobra.Command{
		Use:   "linear-regression",
		Short: "Fit a linear (or ridge) regression on CSV or Parquet data, streaming; the model is served natively by endpoints",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opt := linear.TrainOptions{Target: target, Alpha: alpha, Solver: solver}
			if features != "" {
				opt.Features = strings.Split(features, ",")
			}
			start := time.Now()
			m, rep, err := linear.Train(openTable(data), opt)
			if err != nil {
				return wharf.Errorf(wharf.EINVALID, "%s: %v", data, err)
			}
			if err := m.Save(output); err != nil {
				return err
			}
			metrics := map[string]float64{"training_r2": rep.Fitted.R2, "training_rmse": rep.Fitted.RMSE,
				"training_rows": float64(rep.Rows), "training_seconds": time.Since(start).Seconds()}
			if test != "" {
				sc, err := scoreTable(m, test, target, nil)
				if err != nil {
					return err
				}
				metrics["r2"], metrics["mse"], metrics["rmse"], metrics["mae"] = sc.R2, sc.MSE, sc.RMSE, sc.MAE
			}
			params := map[string]string{"model": "linear_regression", "target": target, "features": strings.Join(m.Columns, ","),
				"alpha": strconv.FormatFloat(alpha, 'g', -1, 64), "solver": rep.Solver}
			if err := logToTracking(cmd.Context(), metrics, params); err != nil {
				fmt.Fprintf(a.stderr, "warning: metrics not logged to tracking: %v\n", err)
			}
			return a.print(map[string]any{"model_output": output, "columns": m.Columns, "coef": m.Coef,
				"intercept": m.Intercept, "rows": rep.Rows, "solver": rep.Solver, "dropped_constant_columns": rep.Dropped, "metrics": metrics})
		},
	}
	f := lr.Flags()
	f.StringVar(&data, "train-data", "", "CSV or Parquet file, or a folder of them, with the same columns")
	f.StringVar(&test, "test-data", "", "CSV or Parquet file or folder to score the model on")
	f.StringVar(&target, "target", "", "the column to predict")
	f.StringVar(&features, "features", "", "comma-separated feature columns (default: every other numeric, non-constant column)")
	f.Float64Var(&alpha, "alpha", 0, "ridge penalty (0: ordinary least squares)")
	f.StringVar(&solver, "solver", linear.SolverAuto, "auto (Cholesky on streamed moments, QR if collinear), cholesky or qr")
	f.StringVar(&output, "model-output", "", "folder to write the model to (MLflow model layout)")
	for _, n := range []string{"train-data", "target", "model-output"} {
		_ = lr.MarkFlagRequired(n)
	}
	train.AddCommand(lr)
	return train
}

// openTable opens a file or folder of CSV or Parquet files for a pass.
func openTable(path string) func() (tabular.Reader, error) {
	return func() (tabular.Reader, error) {
		r, err := tabular.OpenAll(path, tabular.Options{})
		if err != nil {
			return nil, err
		}
		return r, nil
	}
}

// scoreTable scores a model on labelled data, streaming; each, when set,
// sees every batch with its predictions and targets.
func scoreTable(m *linear.Model, path, target string, each func(f *tabular.Frame, pred, y []float64) error) (linear.Scores, error) {
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

// logToTracking logs metrics and params to the run a job step runs in,
// through the MLflow REST API, when the executor has set one up.
func logToTracking(ctx context.Context, metrics map[string]float64, params map[string]string) error {
	tc := stepTracking()
	if tc == nil {
		return nil
	}
	return tc.logBatch(ctx, metrics, params)
}
