package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/batch"
)

// BatchScoreConfig is one run of BatchScore (`wharf batch-score`, what a
// batch endpoint's job runs).
type BatchScoreConfig struct {
	batch.Config
	Model string // the model folder
	// Code and ScoringScript, set together, are a batch driver
	// (code_configuration) that scores whole mini-batches of files; else
	// the model scores rows itself.
	Code, ScoringScript string
	// WarmDir is where warm Python processes wait (the job's
	// WHARF_WARM_DIR); "" starts them cold.
	WarmDir string
}

// BatchScore scores the input in mini-batches with the deployment's batch
// driver, or with the model when there is none, and writes summary.json
// next to the predictions. Progress, the workers' output and the summary
// lines go to log. A run that crossed its error threshold returns its
// summary with the error.
func BatchScore(ctx context.Context, cfg BatchScoreConfig, log io.Writer) (*batch.Summary, error) {
	if (cfg.Code == "") != (cfg.ScoringScript == "") {
		return nil, wharf.Errorf(wharf.EINVALID, "a batch driver needs both its code folder and its scoring script")
	}
	log = orDiscard(log)
	if cfg.Progress == nil {
		cfg.Progress = log
	}
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(cfg.Output, ".state")
	}
	sum, err := runBatch(ctx, cfg, log)
	if sum != nil {
		b, _ := json.MarshalIndent(sum, "", "  ")
		_ = os.MkdirAll(cfg.Output, 0o755)
		_ = os.WriteFile(filepath.Join(cfg.Output, "summary.json"), b, 0o644)
		fmt.Fprintf(log, "[batch] done: %d mini-batches (%d reused), %d rows scored, %d failed items in %.1f s\n",
			sum.MiniBatches, sum.Reused, sum.Rows, sum.FailedItems, sum.Seconds)
		for _, e := range sum.Errors {
			fmt.Fprintf(log, "[batch] failed: %s\n", e)
		}
	}
	return sum, err
}

// runBatch scores with the batch driver when a scoring script is given,
// else with the model itself.
func runBatch(ctx context.Context, cfg BatchScoreConfig, log io.Writer) (*batch.Summary, error) {
	w := batch.Workers{N: cfg.Workers, Log: log, WarmDir: cfg.WarmDir}
	if cfg.ScoringScript != "" {
		driver, err := batch.StartDriver(ctx, cfg.Model, cfg.Code, cfg.ScoringScript, cfg.Output, w, batch.DriverOptions{})
		if err != nil {
			return nil, err
		}
		defer driver.Close()
		fmt.Fprintf(log, "[batch] scoring %s with %d workers running %s\n", cfg.Input, cfg.Workers, cfg.ScoringScript)
		return batch.RunFiles(ctx, cfg.Config, driver)
	}
	scorer, closer, err := batch.OpenModel(ctx, cfg.Model, w)
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	fmt.Fprintf(log, "[batch] scoring %s with %d workers\n", cfg.Input, cfg.Workers)
	return batch.Run(ctx, cfg.Config, scorer)
}
