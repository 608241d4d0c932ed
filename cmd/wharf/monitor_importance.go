package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf/steps"
)

// monitorImportanceCommand computes a model's feature importances, the
// step a monitor runs for feature_attribution_drift and
// top_n_feature_importance.
func (a *app) monitorImportanceCommand() *cobra.Command {
	var cfg steps.ImportanceConfig
	var start, end string
	cmd := &cobra.Command{
		Use:   "importance",
		Short: "Compute a model's permutation feature importances on reference and production data (run as a monitor's step)",
		Long: `Computes each feature's permutation importance, as scikit-learn's
permutation_importance does with R² scoring: on --reference against its
--target column, and on --production against the model's own outputs.
Writes ` + steps.ImportanceFile + ` to --output. A model monitor runs this as a
sandboxed step of its own for feature_attribution_drift signals and for
features: {top_n_feature_importance: N}. The model must be a Wharf linear
model (wharf_linear).

  wharf monitor importance --model model/ --reference train.csv --target cost \
    --production modelDataCollector/taxi/blue/model_inputs \
    --window-start 2024-03-05T00:00:00Z --window-end 2024-03-06T00:00:00Z --output out/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (start == "") != (end == "") {
				return fmt.Errorf("--window-start and --window-end go together")
			}
			if start != "" {
				var err1, err2 error
				cfg.WindowStart, err1 = time.Parse(time.RFC3339Nano, start)
				cfg.WindowEnd, err2 = time.Parse(time.RFC3339Nano, end)
				if err1 != nil || err2 != nil {
					return fmt.Errorf("--window-start and --window-end: want RFC 3339 times (got %q, %q)", start, end)
				}
			}
			res, err := steps.FeatureImportance(cmd.Context(), cfg, a.stderr)
			if err != nil {
				return reportStepError(err)
			}
			return a.print(res)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Model, "model", "", "the model folder")
	f.StringArrayVar(&cfg.Reference, "reference", nil, "labelled reference data file or folder (repeatable)")
	f.StringVar(&cfg.Target, "target", "", "the reference data's label column")
	f.StringArrayVar(&cfg.Production, "production", nil, "production data file or folder (repeatable), or with the window a data collector's model_inputs folder")
	f.StringVar(&start, "window-start", "", "the production window's start (RFC 3339, inclusive): --production is collected data")
	f.StringVar(&end, "window-end", "", "the production window's end (RFC 3339, exclusive)")
	f.StringVar(&cfg.Output, "output", "", "folder to write "+steps.ImportanceFile+" to")
	f.IntVar(&cfg.Repeats, "repeats", 5, "shuffles of each feature")
	f.IntVar(&cfg.MaxRows, "max-rows", 10000, "rows scored at most, evenly spaced over the data")
	f.Uint64Var(&cfg.Seed, "seed", 0, "seed of the shuffles")
	for _, n := range []string{"model", "reference", "target"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

// reportStepError writes err, when a step's command fails with one, to
// the file the scheduler reads the step's error from: the job then says
// why the step failed, not only its exit code.
func reportStepError(err error) error {
	if p := os.Getenv("WHARF_STEP_ERROR_FILE"); err != nil && p != "" {
		_ = os.MkdirAll(filepath.Dir(p), 0o700)
		_ = os.WriteFile(p, []byte(err.Error()+"\n"), 0o600)
	}
	return err
}
