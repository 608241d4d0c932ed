package main

import (
	"os"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf/steps"
)

// parallelRunCommand is the program a parallel job step runs: the entry
// script over the input's mini-batches. Arguments after -- are the
// script's program_arguments.
func (a *app) parallelRunCommand() *cobra.Command {
	var cfg steps.ParallelConfig
	var timeoutS, instances, concurrency int
	cmd := &cobra.Command{
		Use:    "parallel-run [flags] -- [program arguments]",
		Short:  "Run an entry script's run(mini_batch) over a folder or table (what parallel job steps run)",
		Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dash := cmd.ArgsLenAtDash(); dash > 0 || (dash < 0 && len(args) > 0) {
				return usagef("program arguments go after --")
			}
			cfg.ProgramArgs = args
			cfg.Workers = max(instances, 1) * concurrency
			if concurrency <= 0 {
				cfg.Workers = max(instances, 1) * runtime.NumCPU()
			}
			cfg.Timeout = time.Duration(timeoutS) * time.Second
			cfg.StateDir = os.Getenv("WHARF_JOB_STATE_DIR")
			cfg.WarmDir = os.Getenv("WHARF_WARM_DIR")
			_, err := steps.Parallel(cmd.Context(), cfg, a.stdout)
			return reportStepError(err)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Input, "input", "", "input_data: a folder of files, or CSV or Parquet data")
	f.StringVar(&cfg.Code, "code", ".", "the task's code folder")
	f.StringVar(&cfg.EntryScript, "entry-script", "", "entry script in --code, with init() and run(mini_batch)")
	f.StringVar(&cfg.MiniBatchSize, "mini-batch-size", "1", "files per mini-batch, or a size of rows (10kb, 1mb)")
	f.IntVar(&instances, "instances", 1, "resources.instance_count")
	f.IntVar(&concurrency, "max-concurrency", 0, "max_concurrency_per_instance; 0 is this machine's cores")
	f.IntVar(&cfg.MaxRetries, "max-retries", 2, "retries of a failed mini-batch")
	f.IntVar(&timeoutS, "timeout", 60, "seconds per mini-batch attempt")
	f.IntVar(&cfg.MiniBatchErrorThreshold, "mini-batch-error-threshold", -1, "failed mini-batches that end the run (-1: never)")
	f.IntVar(&cfg.ErrorThreshold, "error-threshold", -1, "failed items that end the run (-1: never)")
	f.StringVar(&cfg.LoggingLevel, "logging-level", "INFO", "Python logging level of the entry script")
	f.StringVar(&cfg.AppendRowTo, "append-row-to", "", "file or folder the returned rows are appended to")
	for _, n := range []string{"input", "entry-script"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}
