package steps

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/batch"
	"github.com/wharfml/wharf/jobspec"
)

// ParallelConfig is one run of Parallel (`wharf parallel-run`, what an
// Azure ML parallel job step runs).
type ParallelConfig struct {
	// Input is input_data: a folder (or file) whose files are the items,
	// or tabular data (CSV or Parquet files) whose rows are.
	Input string
	// Code is the folder of the entry script, EntryScript its path there.
	Code, EntryScript string
	// MiniBatchSize is mini_batch_size as written: a number of files, or
	// a size with a unit for mini-batches of rows (see
	// jobspec.ParseMiniBatchSize).
	MiniBatchSize string
	// Workers is instance_count × max_concurrency_per_instance.
	Workers int
	// MaxRetries and Timeout are retry_settings, per mini-batch.
	MaxRetries int
	Timeout    time.Duration
	// MiniBatchErrorThreshold is mini_batch_error_threshold (-1: none);
	// ErrorThreshold is error_threshold, failed items (-1: none), which
	// --error_threshold in ProgramArgs sets too, as does
	// --allowed_failed_percent the share of failed mini-batches.
	MiniBatchErrorThreshold int
	ErrorThreshold          int
	LoggingLevel            string
	// AppendRowTo is the file, or folder, that append_row_to names: the
	// rows run() returned go there, in mini-batch order (to
	// parallel_run_step.txt in a folder). "" keeps none.
	AppendRowTo string
	// ProgramArgs are program_arguments, the entry script's sys.argv.
	ProgramArgs []string
	// StateDir keeps finished mini-batches across attempts of the step;
	// WarmDir is where warm Python processes wait.
	StateDir, WarmDir string
}

// AppendRowFile is the file a parallel job's rows go to when append_row_to
// names a folder, as Azure ML's parallel run step names it.
const AppendRowFile = "parallel_run_step.txt"

// Parallel runs an Azure ML parallel job: the entry script's init() once
// in each of cfg.Workers Python workers, then run(mini_batch) with each
// mini-batch of the input (a list of file paths, or a pandas DataFrame of
// rows when mini_batch_size is a size), retrying failed ones, and appends
// what run() returns to AppendRowTo. Progress, each mini-batch's outcome
// and the script's output and tracebacks go to log. It fails when the
// failed mini-batches or items cross their thresholds.
func Parallel(ctx context.Context, cfg ParallelConfig, log io.Writer) (*batch.Summary, error) {
	log = orDiscard(log)
	files, bytes, err := jobspec.ParseMiniBatchSize(cfg.MiniBatchSize)
	if err != nil {
		return nil, wharf.Errorf(wharf.EINVALID, "%v", err)
	}
	limits := &batch.MiniBatchLimits{ErrorThreshold: cfg.MiniBatchErrorThreshold, AllowedFailedPercent: 100}
	itemThreshold := cfg.ErrorThreshold
	if v, ok, err := programArg(cfg.ProgramArgs, "error_threshold"); err != nil {
		return nil, err
	} else if ok {
		itemThreshold = v
	}
	if v, ok, err := programArg(cfg.ProgramArgs, "allowed_failed_percent"); err != nil {
		return nil, err
	} else if ok {
		if v < 0 || v > 100 {
			return nil, wharf.Errorf(wharf.EINVALID, "--allowed_failed_percent must be 0 to 100, got %d", v)
		}
		limits.AllowedFailedPercent = v
	}
	if st, err := os.Stat(filepath.Join(cfg.Code, cfg.EntryScript)); err != nil || st.IsDir() {
		return nil, wharf.Errorf(wharf.EINVALID, "entry_script %s is not a file in the task's code folder", cfg.EntryScript)
	}
	workers := max(cfg.Workers, 1)
	if n := runtime.NumCPU(); workers > n {
		fmt.Fprintf(log, "[parallel] %d workers asked for; this machine runs %d at once\n", workers, n)
		workers = n
	}
	stateDir := cfg.StateDir
	if stateDir == "" {
		if stateDir, err = os.MkdirTemp("", "wharf-parallel-state-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(stateDir)
	}
	out, outFile, summaryOnly := "", "", cfg.AppendRowTo == ""
	switch st, err := os.Stat(cfg.AppendRowTo); {
	case summaryOnly:
		if out, err = os.MkdirTemp("", "wharf-parallel-out-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(out)
	case err == nil && st.IsDir():
		out, outFile = cfg.AppendRowTo, AppendRowFile
	default:
		out, outFile = filepath.Dir(cfg.AppendRowTo), filepath.Base(cfg.AppendRowTo)
	}
	bc := batch.Config{Input: cfg.Input, Output: out, OutputFile: outFile, SummaryOnly: summaryOnly, StateDir: stateDir,
		MiniBatchSize: files, BytesPerBatch: bytes, Tabular: bytes > 0, Workers: workers, MaxRetries: cfg.MaxRetries,
		Timeout: cfg.Timeout, ErrorThreshold: itemThreshold, MiniBatchLimits: limits, Progress: log, Label: "parallel"}
	w := batch.Workers{N: workers, Log: log, WarmDir: cfg.WarmDir}
	driver, err := batch.StartDriver(ctx, cfg.Code, cfg.Code, cfg.EntryScript, out, w,
		batch.DriverOptions{ProgramArgs: cfg.ProgramArgs, SpaceRows: true, LoggingLevel: cfg.LoggingLevel})
	if err != nil {
		return nil, err
	}
	defer driver.Close()
	kind := fmt.Sprintf("files, %d to a mini-batch", files)
	if bytes > 0 {
		kind = fmt.Sprintf("rows as DataFrames, about %s to a mini-batch", cfg.MiniBatchSize)
	}
	fmt.Fprintf(log, "[parallel] running %s on %s (%s) with %d workers\n", cfg.EntryScript, cfg.Input, kind, workers)
	sum, err := batch.RunFiles(ctx, bc, driver)
	if sum != nil {
		fmt.Fprintf(log, "[parallel] done: %d mini-batches (%d reused), %d failed, %d rows returned, %d failed items in %.1f s\n",
			sum.MiniBatches, sum.Reused, sum.FailedMiniBatches, sum.Rows, sum.FailedItems, sum.Seconds)
		for _, e := range sum.Errors {
			fmt.Fprintf(log, "[parallel] failed: %s\n", e)
		}
	}
	return sum, err
}

// programArg finds an integer predefined argument (--name V or
// --name=V) among a parallel job's program arguments.
func programArg(args []string, name string) (int, bool, error) {
	flag := "--" + name
	for i, a := range args {
		v, found := "", false
		switch {
		case a == flag && i+1 < len(args):
			v, found = args[i+1], true
		case strings.HasPrefix(a, flag+"="):
			v, found = strings.TrimPrefix(a, flag+"="), true
		}
		if found {
			n, err := strconv.Atoi(v)
			if err != nil {
				return 0, false, wharf.Errorf(wharf.EINVALID, "program_arguments: %s takes a whole number, got %q", flag, v)
			}
			return n, true, nil
		}
	}
	return 0, false, nil
}
