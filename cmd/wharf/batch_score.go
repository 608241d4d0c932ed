package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/batch"
	"github.com/wharfml/wharf/linear"
	"github.com/wharfml/wharf/pyworker"
	"github.com/wharfml/wharf/scoring"
	"github.com/wharfml/wharf/tabular"
)

// batchScoreCommand is the program a batch endpoint's job runs: it scores
// the job's input with the deployment's model.
func (a *app) batchScoreCommand() *cobra.Command {
	var cfg batch.Config
	var model, code, script string
	var timeoutS int
	cmd := &cobra.Command{
		Use:    "batch-score",
		Short:  "Score a file or folder in mini-batches with a model (what batch endpoint jobs run)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.Timeout = time.Duration(timeoutS) * time.Second
			cfg.Progress = a.stdout
			if cfg.StateDir == "" {
				cfg.StateDir = os.Getenv("WHARF_JOB_STATE_DIR")
			}
			if cfg.StateDir == "" {
				cfg.StateDir = filepath.Join(cfg.Output, ".state")
			}
			if (code == "") != (script == "") {
				return usagef("--code and --scoring-script go together")
			}
			sum, err := a.runBatch(cmd.Context(), cfg, model, code, script)
			if sum != nil {
				b, _ := json.MarshalIndent(sum, "", "  ")
				_ = os.MkdirAll(cfg.Output, 0o755)
				_ = os.WriteFile(filepath.Join(cfg.Output, "summary.json"), b, 0o644)
				fmt.Fprintf(a.stdout, "[batch] done: %d mini-batches (%d reused), %d rows scored, %d failed items in %.1f s\n",
					sum.MiniBatches, sum.Reused, sum.Rows, sum.FailedItems, sum.Seconds)
				for _, e := range sum.Errors {
					fmt.Fprintf(a.stdout, "[batch] failed: %s\n", e)
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "model folder")
	f.StringVar(&code, "code", "", "code folder of a batch driver (code_configuration.code)")
	f.StringVar(&script, "scoring-script", "", "batch driver in --code, with init() and run(mini_batch) (code_configuration.scoring_script)")
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

// runBatch scores with the batch driver when a scoring script is given,
// else with the model itself.
func (a *app) runBatch(ctx context.Context, cfg batch.Config, model, code, script string) (*batch.Summary, error) {
	if script != "" {
		driver, err := startBatchDriver(ctx, model, code, script, cfg.Output, cfg.Workers, a.stdout)
		if err != nil {
			return nil, err
		}
		defer driver.Close()
		fmt.Fprintf(a.stdout, "[batch] scoring %s with %d workers running %s\n", cfg.Input, cfg.Workers, script)
		return batch.RunFiles(ctx, cfg, driver)
	}
	scorer, closeScorer, err := batchScorer(ctx, model, cfg.Workers, a.stdout)
	if err != nil {
		return nil, err
	}
	defer closeScorer()
	fmt.Fprintf(a.stdout, "[batch] scoring %s with %d workers\n", cfg.Input, cfg.Workers)
	return batch.Run(ctx, cfg, scorer)
}

// batchScorer picks the runtime from the model folder: a Wharf linear
// model is scored in this process, an MLflow model by Python workers,
// whose output goes to log.
func batchScorer(ctx context.Context, dir string, workers int, log io.Writer) (batch.Scorer, func(), error) {
	mm, err := scoring.ReadMLmodel(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("model %s has no MLmodel file (%w); a model that is not an MLflow model needs a batch driver "+
			"(code_configuration with a scoring_script that has init() and run(mini_batch))", dir, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("model %s: %w", dir, err)
	}
	if mm.Native() {
		data, _ := mm.Flavors[linear.Flavor]["data"].(string)
		m, err := linear.Load(dir, data)
		if err != nil {
			return nil, nil, err
		}
		return &nativeBatchScorer{m: m}, func() {}, nil
	}
	if !mm.Pyfunc() {
		return nil, nil, fmt.Errorf("model %s is neither a Wharf linear model nor an MLflow pyfunc model; "+
			"score it with a batch driver (code_configuration with a scoring_script that has init() and run(mini_batch))", dir)
	}
	var types map[string]string
	var names []string
	if in := mm.SignatureInputs(); in != "" {
		if sig, err := scoring.ParseMLflowSignature(in); err == nil {
			types = map[string]string{}
			for _, c := range sig.Inputs {
				types[c.Name] = c.Type
				names = append(names, c.Name)
			}
		}
	}
	pool, err := pyworker.Start(ctx, pyworker.Config{Mode: pyworker.ModePyfunc, ModelDir: dir, Instances: max(workers, 1),
		Env: os.Environ(), Log: log, ZygoteDir: os.Getenv("WHARF_WARM_DIR")})
	if err != nil {
		return nil, nil, fmt.Errorf("model %s: %w", dir, startError(err))
	}
	rows := &pyfuncBatchScorer{pool: pool, types: types}
	if len(names) == 0 || slices.Contains(names, "") {
		// Without named inputs the columns to send are not known: rows.
		return rows, func() { pool.Close() }, nil
	}
	text := make([]bool, len(names))
	for j, n := range names {
		switch types[n] {
		case "double", "float", "long", "integer", "boolean":
		default:
			text[j] = true
		}
	}
	return &pyfuncFrameScorer{pyfuncBatchScorer: rows, names: names, text: text, log: log}, func() { pool.Close() }, nil
}

// startError shortens a worker's start error to its one line: the
// traceback is in the log already, just above.
func startError(err error) error {
	var se *pyworker.StartError
	if errors.As(err, &se) {
		return errors.New("the Python worker failed to start: " + se.Message)
	}
	return err
}

// batchDriver runs an Azure ML batch driver (code_configuration's
// scoring_script) in Python workers: init() once per worker, then
// run(mini_batch) with each mini-batch's file paths.
type batchDriver struct{ pool *pyworker.Pool }

// startBatchDriver starts one worker per concurrent mini-batch. Their
// output (the driver's prints, tracebacks) goes to log, the job's own
// log. The model folder is AZUREML_MODEL_DIR, whatever its format, and
// the output folder AZUREML_BI_OUTPUT_PATH, where Azure ML's drivers that
// write files of their own put them.
func startBatchDriver(ctx context.Context, model, code, script, output string, workers int, log io.Writer) (*batchDriver, error) {
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
		ScoringScript: script, Instances: max(workers, 1), Env: append(os.Environ(), "AZUREML_BI_OUTPUT_PATH="+outDir), Log: log,
		ZygoteDir: os.Getenv("WHARF_WARM_DIR")})
	if err != nil {
		return nil, fmt.Errorf("batch driver %s: %w", script, startError(err))
	}
	return &batchDriver{pool: pool}, nil
}

// ScoreFiles calls run() with the files; its exception fails the attempt.
func (d *batchDriver) ScoreFiles(ctx context.Context, files []string) ([]string, error) {
	return d.pool.RunBatch(ctx, files)
}

// Close stops the workers.
func (d *batchDriver) Close() { d.pool.Close() }

// nativeBatchScorer scores rows with a linear model, mapping columns by
// name; a row with a value that is not a number is a failed item. It
// takes frames, so CSV and Parquet input is scored column by column.
type nativeBatchScorer struct{ m *linear.Model }

// Inputs are the model's columns, all numbers.
func (s *nativeBatchScorer) Inputs() ([]string, []bool) { return s.m.Columns, nil }

// ScoreFrame scores every row at once; a row with a missing value (an
// empty CSV field, a Parquet null) is a failed item naming the column.
func (s *nativeBatchScorer) ScoreFrame(ctx context.Context, f *tabular.Frame) (batch.Predictions, []error, error) {
	preds, err := s.m.PredictFrame(f)
	if err != nil {
		return batch.Predictions{}, nil, err
	}
	var errs []error
	for r, p := range preds {
		if !math.IsNaN(p) {
			continue
		}
		if errs == nil {
			errs = make([]error, len(preds))
		}
		errs[r] = errors.New("the prediction is NaN")
		for _, c := range s.m.Columns {
			if col, err := f.Numeric(f.Index(c)); err == nil && math.IsNaN(col[r]) {
				errs[r] = fmt.Errorf("column %s is empty (a missing value)", c)
				break
			}
		}
	}
	return batch.Predictions{Num: preds}, errs, nil
}

func (s *nativeBatchScorer) Score(ctx context.Context, header []string, rows [][]string) ([]string, []error, error) {
	idx := make([]int, len(s.m.Columns))
	pos := map[string]int{}
	for i, h := range header {
		pos[h] = i
	}
	var missing []string
	for j, c := range s.m.Columns {
		i, ok := pos[c]
		if !ok {
			missing = append(missing, c)
		}
		idx[j] = i
	}
	if len(missing) > 0 {
		return nil, nil, &batch.ColumnsError{Msg: "missing columns " + strings.Join(missing, ", ")}
	}
	preds := make([]string, len(rows))
	var errs []error
	x := make([]float64, len(idx))
	for r, rec := range rows {
		var bad error
		for j, i := range idx {
			if i >= len(rec) {
				bad = fmt.Errorf("has %d fields, fewer than the header's %d", len(rec), len(header))
				break
			}
			v, err := strconv.ParseFloat(rec[i], 64)
			if err != nil {
				bad = fmt.Errorf("column %s: %q is not a number", s.m.Columns[j], rec[i])
				break
			}
			x[j] = v
		}
		if bad != nil {
			if errs == nil {
				errs = make([]error, len(rows))
			}
			errs[r] = bad
			continue
		}
		preds[r] = strconv.FormatFloat(s.m.Predict(x), 'g', -1, 64)
	}
	return preds, errs, nil
}

// floatValue is a value of a float column in the JSON sent to a pyfunc
// worker. It is always written as a float (5.0, not 5): pandas reads a
// whole number as int64, which MLflow's schema enforcement refuses for a
// double column. NaN and infinities, which JSON cannot spell, are null.
type floatValue float64

// MarshalJSON writes the value with a decimal point or exponent.
func (f floatValue) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	b := strconv.AppendFloat(nil, v, 'g', -1, 64)
	if !bytes.ContainsAny(b, ".eE") {
		b = append(b, '.', '0')
	}
	return b, nil
}

// pyfuncBatchScorer sends each mini-batch to an MLflow model in Python
// workers as one table.
type pyfuncBatchScorer struct {
	pool  *pyworker.Pool
	types map[string]string
}

func (s *pyfuncBatchScorer) Score(ctx context.Context, header []string, rows [][]string) ([]string, []error, error) {
	body, err := s.rowsBody(header, rows)
	if err != nil {
		return nil, nil, err
	}
	preds, err := s.predict(ctx, body, len(rows))
	if err != nil {
		return nil, nil, err
	}
	res := make([]string, preds.Len())
	for i := range res {
		if preds.Text != nil {
			res[i] = tabular.QuoteCSV(preds.Text[i])
		} else {
			res[i] = strconv.FormatFloat(preds.Num[i], 'g', -1, 64)
		}
	}
	return res, nil, nil
}

// rowsBody is the JSON table of a mini-batch's rows, each value typed as
// the model's signature says (numbers unquoted when there is none).
func (s *pyfuncBatchScorer) rowsBody(header []string, rows [][]string) ([]byte, error) {
	data := make([][]any, len(rows))
	for r, rec := range rows {
		row := make([]any, len(rec))
		for c, v := range rec {
			row[c] = v
			if c >= len(header) {
				continue
			}
			switch s.types[header[c]] {
			case "double", "float":
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					row[c] = floatValue(f)
				}
			case "long", "integer":
				if n, err := strconv.ParseInt(v, 10, 64); err == nil {
					row[c] = n
				}
			case "", "string":
				if s.types == nil {
					if f, err := strconv.ParseFloat(v, 64); err == nil {
						row[c] = f
					}
				}
			}
		}
		data[r] = row
	}
	return json.Marshal(map[string]any{"columns": header, "data": data})
}

// predict sends a request to a worker and reads its n predictions:
// numbers, or, when any is not a number, each one's JSON text.
func (s *pyfuncBatchScorer) predict(ctx context.Context, body []byte, n int) (batch.Predictions, error) {
	out, err := s.pool.Predict(ctx, body)
	if err != nil {
		var ie *pyworker.InputError
		if errors.As(err, &ie) {
			return batch.Predictions{}, &batch.ColumnsError{Msg: ie.Message}
		}
		return batch.Predictions{}, err
	}
	var preds []any
	if err := json.Unmarshal(out, &preds); err != nil || len(preds) != n {
		return batch.Predictions{}, fmt.Errorf("the model answered %d predictions for %d rows", len(preds), n)
	}
	num := make([]float64, len(preds))
	for i, p := range preds {
		v, ok := p.(float64)
		if !ok {
			text := make([]string, len(preds))
			for k, p := range preds {
				if v, ok := p.(float64); ok {
					text[k] = strconv.FormatFloat(v, 'g', -1, 64)
				} else {
					b, _ := json.Marshal(p)
					text[k] = string(b)
				}
			}
			return batch.Predictions{Text: text}, nil
		}
		num[i] = v
	}
	return batch.Predictions{Num: num}, nil
}

// pyfuncFrameScorer sends an MLflow model with named inputs each
// mini-batch as a Parquet file of its input columns, which the worker reads
// with pyarrow: no text or JSON round trip of the data. A model whose
// environment lacks pyarrow gets JSON rows instead.
type pyfuncFrameScorer struct {
	*pyfuncBatchScorer
	names     []string
	text      []bool
	log       io.Writer
	noParquet atomic.Bool
}

// Inputs are the signature's columns; strings and other non-numbers are
// read as text.
func (s *pyfuncFrameScorer) Inputs() ([]string, []bool) { return s.names, s.text }

// ScoreFrame writes the frame to a Parquet file for the worker.
func (s *pyfuncFrameScorer) ScoreFrame(ctx context.Context, f *tabular.Frame) (batch.Predictions, []error, error) {
	if !s.noParquet.Load() {
		preds, err := s.viaParquet(ctx, f)
		var ce *batch.ColumnsError
		if !errors.As(err, &ce) || !strings.Contains(ce.Msg, "pyarrow is not installed") {
			return preds, nil, err
		}
		if s.noParquet.CompareAndSwap(false, true) {
			fmt.Fprintln(s.log, "[batch] the model's environment has no pyarrow: mini-batches go to it as JSON rows, which is slower")
		}
	}
	body, err := s.rowsBody(f.Columns, batch.FrameRows(f))
	if err != nil {
		return batch.Predictions{}, nil, err
	}
	preds, err := s.predict(ctx, body, f.Len)
	return preds, nil, err
}

func (s *pyfuncFrameScorer) viaParquet(ctx context.Context, f *tabular.Frame) (batch.Predictions, error) {
	dir, err := os.MkdirTemp("", "wharf-mini-batch-")
	if err != nil {
		return batch.Predictions{}, err
	}
	defer os.RemoveAll(dir)
	numeric := make([]bool, len(f.Columns))
	for j := range numeric {
		numeric[j] = f.Num[j] != nil
	}
	path := filepath.Join(dir, "mini-batch.parquet")
	w, err := tabular.CreateParquet(path, f.Columns, numeric)
	if err != nil {
		return batch.Predictions{}, err
	}
	if err := w.Write(f); err != nil {
		w.Abort()
		return batch.Predictions{}, err
	}
	if err := w.Close(); err != nil {
		return batch.Predictions{}, err
	}
	body, err := json.Marshal(map[string]string{"parquet_file": path})
	if err != nil {
		return batch.Predictions{}, err
	}
	return s.predict(ctx, body, f.Len)
}
