package main

import (
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf/steps"
)

// batchScoreCommand is the program a batch endpoint's job runs: it scores
// the job's input with the deployment's model.
func (a *app) batchScoreCommand() *cobra.Command {
	var cfg steps.BatchScoreConfig
	var timeoutS int
	cmd := &cobra.Command{
		Use:    "batch-score",
		Short:  "Score a file or folder in mini-batches with a model (what batch endpoint jobs run)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (cfg.Code == "") != (cfg.ScoringScript == "") {
				return usagef("--code and --scoring-script go together")
			}
			cfg.Timeout = time.Duration(timeoutS) * time.Second
			if cfg.StateDir == "" {
				cfg.StateDir = os.Getenv("WHARF_JOB_STATE_DIR")
			}
			cfg.WarmDir = os.Getenv("WHARF_WARM_DIR")
			_, err := steps.BatchScore(cmd.Context(), cfg, a.stdout)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Model, "model", "", "model folder")
	f.StringVar(&cfg.Code, "code", "", "code folder of a batch driver (code_configuration.code)")
	f.StringVar(&cfg.ScoringScript, "scoring-script", "", "batch driver in --code, with init() and run(mini_batch) (code_configuration.scoring_script)")
	f.StringVar(&cfg.Input, "input", "", "input file or folder")
	f.StringVar(&cfg.Output, "output", "", "output folder")
	f.StringVar(&cfg.OutputFile, "output-file-name", "predictions.csv", "output file name")
	f.BoolVar(&cfg.SummaryOnly, "summary-only", false, "write only summary.json (output_action: summary_only)")
	f.StringVar(&cfg.StateDir, "state-dir", "", "where finished mini-batches are kept across attempts (default $WHARF_JOB_STATE_DIR)")
	f.IntVar(&cfg.MiniBatchSize, "mini-batch-size", 10, "files per mini-batch")
	f.IntVar(&cfg.RowsPerBatch, "rows-per-batch", 100000, "rows per mini-batch of a single file")
	f.IntVar(&cfg.Workers, "workers", 1, "mini-batches scored at once")
	f.IntVar(&cfg.MaxRetries, "max-retries", 3, "retries of a failed mini-batch")
	f.IntVar(&timeoutS, "timeout", 30, "seconds per mini-batch attempt")
	f.IntVar(&cfg.ErrorThreshold, "error-threshold", -1, "failed items that end the run (-1: never)")
	for _, n := range []string{"model", "input", "output"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}
