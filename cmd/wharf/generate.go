package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf/steps"
	"github.com/wharfml/wharf/taxigen"
)

// generateCommand writes synthetic data sets, the same bytes for the same
// seed, to try pipelines and endpoints on without real data.
func (a *app) generateCommand() *cobra.Command {
	gen := &cobra.Command{Use: "generate", Short: "Write synthetic data sets (deterministic by seed)"}
	var (
		cfg           steps.GenerateConfig
		start, format string
	)
	taxi := &cobra.Command{
		Use:   "taxi",
		Short: "Write NYC taxi trips shaped like the Azure MLOps v2 taxi sample: taxi-data.csv, taxi-batch.csv, taxi-request.json",
		Long: `Write synthetic New York taxi trips into --out:

  taxi-data.csv      --rows trips: cost (the fare, the label), then the 20 features
  taxi-batch.csv     --batch-rows other trips, the features only, for batch scoring
  taxi-request.json  --request-rows more trips (2) as an online endpoint request {"input_data": [[...], ...]}

With --drift every trip is shifted as production data drifts from what a
model was trained on: distance is 2.5 times as long and each trip has 2
more passengers (at most 7); every other feature keeps its distribution. A
model monitor comparing such trips with the training data finds data drift
on distance and passengers only.

With --format parquet the first two are taxi-data.parquet and
taxi-batch.parquet instead: the same columns and values, every column a
DOUBLE, Snappy-compressed, written as the rows are generated.

Distances follow from the coordinates, durations from distance and hour, and
the fare from the meter's rates per mile and per slow minute, plus noise. The
same --seed, --start and --days give byte-identical files, whatever --workers.

Pickups fall in the --days days from --start (default: the whole of 2016; the
sample's trips are all in January). A trip ends in the month it starts in, so
dropoff_month equals pickup_month: wharf train linear-regression, like
scikit-learn's LinearRegression, then gives the two the same coefficient (the
minimum-norm least-squares fit), or leave one out with --features.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfg.Rows < 1 {
				return usagef("--rows must be at least 1")
			}
			if cfg.BatchRows < 0 {
				return usagef("--batch-rows must not be negative")
			}
			if cfg.Spec.Days < 1 {
				return usagef("--days must be at least 1")
			}
			if format != string(taxigen.CSV) && format != string(taxigen.Parquet) {
				return usagef("--format %q is not csv or parquet", format)
			}
			first, err := time.Parse(time.DateOnly, start)
			if err != nil {
				return usagef("--start %q is not a date like 2016-01-01", start)
			}
			cfg.Spec.Start, cfg.Spec.Format = first, taxigen.Format(format)
			res, err := steps.GenerateTaxi(cmd.Context(), cfg, a.stderr)
			if err != nil {
				return err
			}
			return a.print(res)
		},
	}
	f := taxi.Flags()
	f.Int64Var(&cfg.Rows, "rows", 0, "number of trips in the data file")
	f.Uint64Var(&cfg.Spec.Seed, "seed", 1, "random seed; the same seed writes the same files")
	f.StringVar(&cfg.Out, "out", "", "folder to write the files into (created if missing)")
	f.Int64Var(&cfg.BatchRows, "batch-rows", 1000, "number of trips in the batch file")
	f.StringVar(&start, "start", taxigen.DefaultStart.Format(time.DateOnly), "first day pickups fall on")
	f.IntVar(&cfg.Spec.Days, "days", taxigen.DefaultDays, "number of days pickups fall in (31 for January only, like the sample)")
	f.StringVar(&format, "format", string(taxigen.CSV), "format of the data and batch files: csv or parquet")
	f.IntVar(&cfg.Spec.RequestRows, "request-rows", taxigen.RequestRows, "number of trips in the request file")
	f.BoolVar(&cfg.Spec.Drift, "drift", false, "shift some features in every trip, as production data drifts from training data: "+
		"distance 2.5 times as long, 2 more passengers (at most 7); the other features keep their distribution")
	f.IntVar(&cfg.Spec.Workers, "workers", 0, "goroutines formatting rows (default: one per CPU); the output does not depend on it")
	for _, n := range []string{"rows", "out"} {
		_ = taxi.MarkFlagRequired(n)
	}
	gen.AddCommand(taxi)
	return gen
}
