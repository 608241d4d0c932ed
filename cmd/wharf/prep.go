package main

import (
	"github.com/spf13/cobra"

	"github.com/wharfml/wharf/steps"
)

// prepCommand holds the built-in data preparation steps.
func (a *app) prepCommand() *cobra.Command {
	prep := &cobra.Command{Use: "prep", Short: "Built-in data preparation steps (run as pipeline steps)"}
	var cfg steps.SplitConfig
	split := &cobra.Command{
		Use:   "split",
		Short: "Split CSV or Parquet data into train, validation and test sets, streaming, by a seeded draw per row",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfg.TrainFraction <= 0 || cfg.ValFraction < 0 || cfg.TrainFraction+cfg.ValFraction > 1 {
				return usagef("--train-fraction %g and --val-fraction %g must be positive and sum to at most 1", cfg.TrainFraction, cfg.ValFraction)
			}
			if cfg.Format != "parquet" && cfg.Format != "csv" {
				return usagef("--format must be parquet or csv")
			}
			cfg.Tracking = steps.TrackingFromEnv()
			res, err := steps.Split(cmd.Context(), cfg, a.stderr)
			if err != nil {
				return err
			}
			return a.print(res)
		},
	}
	f := split.Flags()
	f.StringVar(&cfg.RawData, "raw-data", "", "CSV or Parquet file, or a folder of them")
	f.StringVar(&cfg.TrainData, "train-data", "", "folder for the training set")
	f.StringVar(&cfg.ValData, "val-data", "", "folder for the validation set")
	f.StringVar(&cfg.TestData, "test-data", "", "folder for the test set")
	f.StringVar(&cfg.Format, "format", "parquet", "output format: parquet or csv")
	f.Uint64Var(&cfg.Seed, "seed", 42, "random seed of the split")
	f.Float64Var(&cfg.TrainFraction, "train-fraction", 0.7, "share of rows for training")
	f.Float64Var(&cfg.ValFraction, "val-fraction", 0.15, "share of rows for validation (the rest is the test set)")
	for _, n := range []string{"raw-data", "train-data", "val-data", "test-data"} {
		_ = split.MarkFlagRequired(n)
	}
	prep.AddCommand(split)
	return prep
}
