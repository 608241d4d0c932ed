package batch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/pyworker"
)

// Driver runs an Azure ML batch driver (code_configuration's
// scoring_script) in Python workers: init() once per worker, then
// run(mini_batch) with each mini-batch's file paths. It is the FileScorer
// of a deployment with a scoring script.
type Driver struct{ pool *pyworker.Pool }

var _ TableScorer = (*Driver)(nil)

// DriverOptions are what an Azure ML parallel job's entry script adds to
// a batch driver.
type DriverOptions struct {
	// ProgramArgs are the script's sys.argv after its path.
	ProgramArgs []string
	// SpaceRows writes returned rows space-separated, as a parallel job
	// appends them, rather than as CSV lines.
	SpaceRows bool
	// LoggingLevel configures Python's logging (DEBUG, INFO, WARNING).
	LoggingLevel string
}

// StartDriver starts one worker per concurrent mini-batch running script
// from the code folder. Their output (the driver's prints, tracebacks)
// goes to w.Log, the job's own log. The model folder is AZUREML_MODEL_DIR,
// whatever its format, and the output folder AZUREML_BI_OUTPUT_PATH, where
// Azure ML's drivers that write files of their own put them.
func StartDriver(ctx context.Context, model, code, script, output string, w Workers, opt DriverOptions) (*Driver, error) {
	w = w.orDefaults()
	codeDir, err := filepath.Abs(code)
	if err != nil {
		return nil, err
	}
	modelDir, err := filepath.Abs(model)
	if err != nil {
		return nil, err
	}
	outDir, err := filepath.Abs(output)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(filepath.Join(codeDir, script)); err != nil || st.IsDir() {
		return nil, wharf.Errorf(wharf.EINVALID, "scoring_script %s is not a file in the code folder %s", script, codeDir)
	}
	pool, err := pyworker.Start(ctx, pyworker.Config{Mode: pyworker.ModeBatch, ModelDir: modelDir, CodeDir: codeDir,
		ScoringScript: script, Instances: max(w.N, 1), Env: append(slices.Clip(w.Env), "AZUREML_BI_OUTPUT_PATH="+outDir), Log: w.Log,
		ZygoteDir: w.WarmDir, ProgramArgs: opt.ProgramArgs, SpaceRows: opt.SpaceRows, LoggingLevel: opt.LoggingLevel})
	if err != nil {
		return nil, fmt.Errorf("batch driver %s: %w", script, startError(err))
	}
	return &Driver{pool: pool}, nil
}

// ScoreFiles calls run() with the files; its exception fails the attempt.
func (d *Driver) ScoreFiles(ctx context.Context, files []string) ([]string, error) {
	return d.pool.RunBatch(ctx, files)
}

// ScoreTable calls run() with the rows of the CSV file at path as a
// pandas DataFrame.
func (d *Driver) ScoreTable(ctx context.Context, path string) ([]string, error) {
	return d.pool.RunTable(ctx, path)
}

// Close stops the workers.
func (d *Driver) Close() error { return d.pool.Close() }
