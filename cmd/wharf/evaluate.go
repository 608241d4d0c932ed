package main

import (
	"github.com/spf13/cobra"

	"github.com/wharfml/wharf/steps"
)

// evaluateCommand holds the built-in evaluation steps.
func (a *app) evaluateCommand() *cobra.Command {
	ev := &cobra.Command{Use: "evaluate", Short: "Built-in evaluation steps (run as pipeline steps)"}
	var cfg steps.EvaluateConfig
	reg := &cobra.Command{
		Use:   "regression",
		Short: "Score a regression model on test data and compare it with every registered version of its name",
		Long: `Scores the candidate model on the test set (R², MSE, RMSE, MAE, as
scikit-learn computes them), then every registered version of --model-name
on the same rows, and writes to --evaluation-output:

  metrics.json     the scores of the candidate and of each version
  predictions.csv  row, actual, predicted for the candidate
  deploy_flag      1 when the candidate is at least as good (R²) as every
                   registered version, else 0
  perf_comparison.svg   predicted against actual, and R² by version
  perf_comparison.png   the same picture as PNG

Registered versions are read through the job's MLflow tracking server;
versions in a format this step cannot score (not a Wharf linear model) are
listed as skipped, not compared.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.Tracking = steps.TrackingFromEnv()
			res, err := steps.EvaluateRegression(cmd.Context(), cfg, a.stderr)
			if err != nil {
				return err
			}
			return a.print(res)
		},
	}
	f := reg.Flags()
	f.StringVar(&cfg.ModelName, "model-name", "", "registered model name to compare with")
	f.StringVar(&cfg.ModelInput, "model-input", "", "the candidate model folder")
	f.StringVar(&cfg.TestData, "test-data", "", "labelled CSV or Parquet file or folder")
	f.StringVar(&cfg.Target, "target", "", "the label column")
	f.StringVar(&cfg.Output, "evaluation-output", "", "folder for metrics.json, predictions.csv, deploy_flag and the plots")
	for _, n := range []string{"model-name", "model-input", "test-data", "target", "evaluation-output"} {
		_ = reg.MarkFlagRequired(n)
	}
	ev.AddCommand(reg)
	return ev
}
