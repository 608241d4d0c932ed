package batch

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

	"github.com/wharfml/wharf/linear"
	"github.com/wharfml/wharf/pyworker"
	"github.com/wharfml/wharf/scoring"
	"github.com/wharfml/wharf/tabular"
)

// Workers are the Python processes a model or batch driver is scored in.
type Workers struct {
	N   int       // processes, one per mini-batch scored at once (at least 1)
	Log io.Writer // their output: the model's prints and tracebacks
	// Env is their environment; nil is this process's.
	Env []string
	// WarmDir is where warm processes wait to be forked (the job's
	// WHARF_WARM_DIR); "" starts every worker cold.
	WarmDir string
}

// orDefaults fills in what the zero value leaves out.
func (w Workers) orDefaults() Workers {
	if w.Log == nil {
		w.Log = io.Discard
	}
	if w.Env == nil {
		w.Env = os.Environ()
	}
	return w
}

// closer is an io.Closer of a function, so OpenModel returns one Close
// whatever the runtime.
type closer func() error

func (c closer) Close() error { return c() }

// OpenModel picks the runtime from the model folder's MLmodel file (in
// dir, or in its one sub-folder as in a deployment's model folder, see
// scoring.FindMLmodel): a Wharf linear model is scored in this process,
// column by column; an MLflow pyfunc model by Python workers, which get
// each mini-batch as a Parquet file of the signature's columns when it
// names them, else as JSON rows. Closing the io.Closer stops the workers.
func OpenModel(ctx context.Context, dir string, w Workers) (Scorer, io.Closer, error) {
	w = w.orDefaults()
	folder, mm, err := scoring.FindMLmodel(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("model %s has no MLmodel file (%w); a model that is not an MLflow model needs a batch driver "+
			"(code_configuration with a scoring_script that has init() and run(mini_batch))", dir, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("model %s: %w", dir, err)
	}
	if mm.Native() {
		data, _ := mm.Flavors[linear.Flavor]["data"].(string)
		m, err := linear.Load(folder, data)
		if err != nil {
			return nil, nil, err
		}
		return &nativeScorer{m: m}, closer(func() error { return nil }), nil
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
	pool, err := pyworker.Start(ctx, pyworker.Config{Mode: pyworker.ModePyfunc, ModelDir: dir, Instances: max(w.N, 1),
		Env: w.Env, Log: w.Log, ZygoteDir: w.WarmDir})
	if err != nil {
		return nil, nil, fmt.Errorf("model %s: %w", dir, startError(err))
	}
	rows := &pyfuncScorer{pool: pool, types: types}
	if len(names) == 0 || slices.Contains(names, "") {
		// Without named inputs the columns to send are not known: rows.
		return rows, closer(pool.Close), nil
	}
	text := make([]bool, len(names))
	for j, n := range names {
		switch types[n] {
		case "double", "float", "long", "integer", "boolean":
		default:
			text[j] = true
		}
	}
	return &pyfuncFrameScorer{pyfuncScorer: rows, names: names, text: text, log: w.Log}, closer(pool.Close), nil
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

// nativeScorer scores rows with a linear model, mapping columns by
// name; a row with a value that is not a number is a failed item. It
// takes frames, so CSV and Parquet input is scored column by column.
type nativeScorer struct{ m *linear.Model }

var (
	_ FrameScorer = (*nativeScorer)(nil)
	_ Scorer      = (*pyfuncScorer)(nil)
	_ FrameScorer = (*pyfuncFrameScorer)(nil)
)

// Inputs are the model's columns, all numbers.
func (s *nativeScorer) Inputs() ([]string, []bool) { return s.m.Columns, nil }

// ScoreFrame scores every row at once; a row with a missing value (an
// empty CSV field, a Parquet null) is a failed item naming the column.
func (s *nativeScorer) ScoreFrame(ctx context.Context, f *tabular.Frame) (Predictions, []error, error) {
	preds, err := s.m.PredictFrame(f)
	if err != nil {
		return Predictions{}, nil, err
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
	return Predictions{Num: preds}, errs, nil
}

// Score parses the model's columns of each text row as numbers; a row
// with a field that is not one is a failed item.
func (s *nativeScorer) Score(ctx context.Context, header []string, rows [][]string) ([]string, []error, error) {
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
		return nil, nil, &ColumnsError{Msg: "missing columns " + strings.Join(missing, ", ")}
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

// pyfuncScorer sends each mini-batch to an MLflow model in Python
// workers as one table.
type pyfuncScorer struct {
	pool  *pyworker.Pool
	types map[string]string
}

// Score sends the rows as one JSON table; text predictions come back as
// CSV fields.
func (s *pyfuncScorer) Score(ctx context.Context, header []string, rows [][]string) ([]string, []error, error) {
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
func (s *pyfuncScorer) rowsBody(header []string, rows [][]string) ([]byte, error) {
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
func (s *pyfuncScorer) predict(ctx context.Context, body []byte, n int) (Predictions, error) {
	out, err := s.pool.Predict(ctx, body)
	if err != nil {
		var ie *pyworker.InputError
		if errors.As(err, &ie) {
			return Predictions{}, &ColumnsError{Msg: ie.Message}
		}
		return Predictions{}, err
	}
	var preds []any
	if err := json.Unmarshal(out, &preds); err != nil || len(preds) != n {
		return Predictions{}, fmt.Errorf("the model answered %d predictions for %d rows", len(preds), n)
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
			return Predictions{Text: text}, nil
		}
		num[i] = v
	}
	return Predictions{Num: num}, nil
}

// pyfuncFrameScorer sends an MLflow model with named inputs each
// mini-batch as a Parquet file of its input columns, which the worker reads
// with pyarrow: no text or JSON round trip of the data. A model whose
// environment lacks pyarrow gets JSON rows instead.
type pyfuncFrameScorer struct {
	*pyfuncScorer
	names     []string
	text      []bool
	log       io.Writer
	noParquet atomic.Bool
}

// Inputs are the signature's columns; strings and other non-numbers are
// read as text.
func (s *pyfuncFrameScorer) Inputs() ([]string, []bool) { return s.names, s.text }

// ScoreFrame writes the frame to a Parquet file for the worker.
func (s *pyfuncFrameScorer) ScoreFrame(ctx context.Context, f *tabular.Frame) (Predictions, []error, error) {
	if !s.noParquet.Load() {
		preds, err := s.viaParquet(ctx, f)
		var ce *ColumnsError
		if !errors.As(err, &ce) || !strings.Contains(ce.Msg, "pyarrow is not installed") {
			return preds, nil, err
		}
		if s.noParquet.CompareAndSwap(false, true) {
			fmt.Fprintln(s.log, "[batch] the model's environment has no pyarrow: mini-batches go to it as JSON rows, which is slower")
		}
	}
	body, err := s.rowsBody(f.Columns, FrameRows(f))
	if err != nil {
		return Predictions{}, nil, err
	}
	preds, err := s.predict(ctx, body, f.Len)
	return preds, nil, err
}

func (s *pyfuncFrameScorer) viaParquet(ctx context.Context, f *tabular.Frame) (Predictions, error) {
	dir, err := os.MkdirTemp("", "wharf-mini-batch-")
	if err != nil {
		return Predictions{}, err
	}
	defer os.RemoveAll(dir)
	numeric := make([]bool, len(f.Columns))
	for j := range numeric {
		numeric[j] = f.Num[j] != nil
	}
	path := filepath.Join(dir, "mini-parquet")
	w, err := tabular.CreateParquet(path, f.Columns, numeric)
	if err != nil {
		return Predictions{}, err
	}
	if err := w.Write(f); err != nil {
		w.Abort()
		return Predictions{}, err
	}
	if err := w.Close(); err != nil {
		return Predictions{}, err
	}
	body, err := json.Marshal(map[string]string{"parquet_file": path})
	if err != nil {
		return Predictions{}, err
	}
	return s.predict(ctx, body, f.Len)
}
