package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/wharfml/wharf/batch"
	"github.com/wharfml/wharf/linear"
	"github.com/wharfml/wharf/pyworker"
	"github.com/wharfml/wharf/scoring"
)

// batchScoreCommand is the program a batch endpoint's job runs: it scores
// the job's input with the deployment's model.
func (a *app) batchScoreCommand() *cobra.Command {
	var cfg batch.Config
	var model string
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
			scorer, closeScorer, err := batchScorer(cmd.Context(), model, cfg.Workers)
			if err != nil {
				return err
			}
			defer closeScorer()
			fmt.Fprintf(a.stdout, "[batch] scoring %s with %d workers\n", cfg.Input, cfg.Workers)
			sum, err := batch.Run(cmd.Context(), cfg, scorer)
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

// batchScorer picks the runtime from the model folder: a Wharf linear
// model is scored in this process, an MLflow model by Python workers.
func batchScorer(ctx context.Context, dir string, workers int) (batch.Scorer, func(), error) {
	var mm struct {
		Flavors   map[string]map[string]any `yaml:"flavors"`
		Signature *struct {
			Inputs string `yaml:"inputs"`
		} `yaml:"signature"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "MLmodel"))
	if err != nil {
		return nil, nil, fmt.Errorf("model %s has no MLmodel file: %w", dir, err)
	}
	if err := yaml.Unmarshal(b, &mm); err != nil {
		return nil, nil, fmt.Errorf("model %s: MLmodel: %w", dir, err)
	}
	if fl, ok := mm.Flavors[linear.Flavor]; ok {
		data, _ := fl["data"].(string)
		m, err := linear.Load(dir, data)
		if err != nil {
			return nil, nil, err
		}
		return &nativeBatchScorer{m: m}, func() {}, nil
	}
	if _, ok := mm.Flavors["python_function"]; !ok {
		return nil, nil, fmt.Errorf("model %s is neither a Wharf linear model nor an MLflow pyfunc model", dir)
	}
	var types map[string]string
	if mm.Signature != nil {
		if sig, err := scoring.ParseMLflowSignature(mm.Signature.Inputs); err == nil {
			types = map[string]string{}
			for _, c := range sig.Inputs {
				types[c.Name] = c.Type
			}
		}
	}
	pool, err := pyworker.Start(ctx, pyworker.Config{Mode: pyworker.ModePyfunc, ModelDir: dir, Instances: max(workers, 1),
		Env: os.Environ(), LogPath: filepath.Join(os.TempDir(), "wharf-batch-workers.log")})
	if err != nil {
		return nil, nil, err
	}
	return &pyfuncBatchScorer{pool: pool, types: types}, func() { pool.Close() }, nil
}

// nativeBatchScorer scores rows with a linear model, mapping columns by
// name; a row with a value that is not a number is a failed item.
type nativeBatchScorer struct{ m *linear.Model }

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

// pyfuncBatchScorer sends each mini-batch to an MLflow model in Python
// workers as one table.
type pyfuncBatchScorer struct {
	pool  *pyworker.Pool
	types map[string]string
}

func (s *pyfuncBatchScorer) Score(ctx context.Context, header []string, rows [][]string) ([]string, []error, error) {
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
					row[c] = f
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
	body, err := json.Marshal(map[string]any{"columns": header, "data": data})
	if err != nil {
		return nil, nil, err
	}
	out, err := s.pool.Predict(ctx, body)
	if err != nil {
		var ie *pyworker.InputError
		if errors.As(err, &ie) {
			return nil, nil, &batch.ColumnsError{Msg: ie.Message}
		}
		return nil, nil, err
	}
	var preds []any
	if err := json.Unmarshal(out, &preds); err != nil || len(preds) != len(rows) {
		return nil, nil, fmt.Errorf("the model answered %d predictions for %d rows", len(preds), len(rows))
	}
	res := make([]string, len(preds))
	for i, p := range preds {
		switch t := p.(type) {
		case float64:
			res[i] = strconv.FormatFloat(t, 'g', -1, 64)
		default:
			b, _ := json.Marshal(t)
			res[i] = batch.CSVField(string(b))
		}
	}
	return res, nil, nil
}
