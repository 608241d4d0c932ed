package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf/linear"
	"github.com/wharfml/wharf/steps"
)

// trainCommand holds Wharf's built-in trainers, which run as pipeline
// steps without Python and produce models the router serves natively.
func (a *app) trainCommand() *cobra.Command {
	train := &cobra.Command{Use: "train", Short: "Built-in trainers (run as pipeline steps; no Python needed)"}
	var cfg steps.TrainConfig
	var features string
	lr := &cobra.Command{
		Use:   "linear-regression",
		Short: "Fit a linear (or ridge) regression on CSV or Parquet data, streaming; the model is served natively by endpoints",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if features != "" {
				cfg.Features = strings.Split(features, ",")
			}
			cfg.Tracking = steps.TrackingFromEnv()
			res, err := steps.TrainLinearRegression(cmd.Context(), cfg, a.stderr)
			if err != nil {
				return err
			}
			return a.print(res)
		},
	}
	f := lr.Flags()
	f.StringVar(&cfg.TrainData, "train-data", "", "CSV or Parquet file, or a folder of them, with the same columns")
	f.StringVar(&cfg.TestData, "test-data", "", "CSV or Parquet file or folder to score the model on")
	f.StringVar(&cfg.Target, "target", "", "the column to predict")
	f.StringVar(&features, "features", "", "comma-separated feature columns (default: every other numeric, non-constant column)")
	f.Float64Var(&cfg.Alpha, "alpha", 0, "ridge penalty (0: ordinary least squares)")
	f.StringVar(&cfg.Solver, "solver", linear.SolverAuto, "auto (Cholesky on streamed moments, QR if collinear), cholesky or qr")
	f.StringVar(&cfg.ModelOutput, "model-output", "", "folder to write the model to (MLflow model layout)")
	for _, n := range []string{"train-data", "target", "model-output"} {
		_ = lr.MarkFlagRequired(n)
	}
	train.AddCommand(lr)
	return train
}
