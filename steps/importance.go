package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/drift"
	"github.com/wharfml/wharf/linear"
)

// ImportanceFile is the file FeatureImportance writes in its output
// folder.
const ImportanceFile = "feature_importance.json"

// ImportanceConfig says which model's feature importances to compute on
// which data.
type ImportanceConfig struct {
	// Model is the model folder (its MLmodel file and data).
	Model string
	// Reference is the labelled reference (training) data, Target its
	// label column.
	Reference []string
	Target    string
	// Production is the production data: files or folders of rows, or,
	// with WindowStart and WindowEnd set, a data collector's folder of
	// model_inputs read for [WindowStart, WindowEnd). Its targets are the
	// model's own outputs. None computes the reference's alone.
	Production             []string
	WindowStart, WindowEnd time.Time
	Output                 string
	Repeats, MaxRows       int
	Seed                   uint64
}

// Importances are the permutation importances of a model's features on
// the reference data and on the production data.
type Importances struct {
	Model string `json:"model"`
	// Method and Scoring say how importances were computed: the mean
	// drop of the R² score over Repeats shuffles of a feature's values.
	Method     string             `json:"method"`
	Scoring    string             `json:"scoring"`
	Repeats    int                `json:"repeats"`
	Reference  map[string]float64 `json:"reference"`
	Production map[string]float64 `json:"production,omitempty"`
	// ReferenceRows and ProductionRows are the rows read; at most
	// MaxRows of them, evenly spaced, are scored.
	ReferenceRows  int64 `json:"reference_rows"`
	ProductionRows int64 `json:"production_rows"`
	RowsScored     int   `json:"rows_scored"`
}

// FeatureImportance computes the permutation importance of each of a
// model's features, as scikit-learn's permutation_importance does with a
// regressor's default R² score: the mean, over Repeats shuffles of the
// feature's values, of how much the score drops. On the reference data
// the score is against Target; on the production data, which has no
// label, against the model's own outputs, so that it says what the model
// relies on in production. A drop below 0 (shuffling happened to help) is
// 0. It writes ImportanceFile to Output.
//
// Wharf linear models (the wharf_linear flavor) are the models it
// scores; any other is refused, naming its flavors.
func FeatureImportance(ctx context.Context, cfg ImportanceConfig, log io.Writer) (*Importances, error) {
	if cfg.Repeats <= 0 {
		cfg.Repeats = 5
	}
	if cfg.MaxRows <= 0 {
		cfg.MaxRows = 10000
	}
	m, err := loadLinearModel(cfg.Model)
	if err != nil {
		var nl *notLinearError
		if errors.As(err, &nl) {
			return nil, wharf.Errorf(wharf.EINVALID, "feature importances are computed for Wharf linear models (flavor %s); "+
				"this model's flavors are %s", linear.Flavor, strings.Join(nl.flavors, ", "))
		}
		return nil, err
	}
	if len(m.Columns) < 2 {
		return nil, wharf.Errorf(wharf.EINVALID, "the model has %d feature: importances rank two or more", len(m.Columns))
	}
	out := &Importances{Model: cfg.Model, Method: "permutation", Scoring: "r2", Repeats: cfg.Repeats}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	ref, err := drift.OpenFiles(cfg.Reference)
	if err != nil {
		return nil, wharf.Errorf(wharf.EINVALID, "reference data: %v", err)
	}
	defer drift.Close(ref)
	x, y, err := readRows(ctx, ref, m.Columns, cfg.Target, cfg.MaxRows)
	if err != nil {
		return nil, wharf.Errorf(wharf.EINVALID, "reference data: %v", err)
	}
	out.ReferenceRows, out.RowsScored = ref.Rows(), len(y)
	out.Reference = permutationImportance(m, x, y, cfg.Repeats, rng)
	fmt.Fprintf(log, "reference: %d rows, %d scored, importances %v\n", ref.Rows(), len(y), out.Reference)
	if len(cfg.Production) > 0 {
		var prod drift.Dataset
		if !cfg.WindowStart.IsZero() {
			prod, err = drift.OpenCollected(cfg.Production[0], cfg.WindowStart, cfg.WindowEnd, "model_inputs")
		} else {
			prod, err = drift.OpenFiles(cfg.Production)
		}
		if err != nil {
			return nil, wharf.Errorf(wharf.EINVALID, "production data: %v", err)
		}
		defer drift.Close(prod)
		if prod.Rows() == 0 {
			return nil, wharf.Errorf(wharf.EINVALID, "production data: no rows in %s%s", strings.Join(cfg.Production, ", "), windowText(cfg))
		}
		px, _, err := readRows(ctx, prod, m.Columns, "", cfg.MaxRows)
		if err != nil {
			return nil, wharf.Errorf(wharf.EINVALID, "production data: %v", err)
		}
		py := make([]float64, len(px))
		for i, row := range px {
			py[i] = m.Predict(row)
		}
		out.ProductionRows = prod.Rows()
		out.Production = permutationImportance(m, px, py, cfg.Repeats, rng)
		fmt.Fprintf(log, "production: %d rows, %d scored against the model's outputs, importances %v\n", prod.Rows(), len(py), out.Production)
	}
	if cfg.Output != "" {
		if err := os.MkdirAll(cfg.Output, 0o755); err != nil {
			return nil, err
		}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(cfg.Output, ImportanceFile), b, 0o644); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readRows reads the columns (and target, when named) of up to maxRows
// rows spread evenly over d, leaving out rows with a missing value.
func readRows(ctx context.Context, d drift.Dataset, columns []string, target string, maxRows int) ([][]float64, []float64, error) {
	have := map[string]bool{}
	var names []string
	for _, c := range d.Columns() {
		have[c.Name] = true
		names = append(names, c.Name)
	}
	want := append([]string(nil), columns...)
	if target != "" {
		want = append(want, target)
	}
	for _, c := range want {
		if !have[c] {
			return nil, nil, fmt.Errorf("no column %s (it has %s)", c, strings.Join(names, ", "))
		}
	}
	n := d.Rows()
	// Row r is kept when it starts a new stride of n/maxRows rows.
	keep := func(r int64) bool {
		return n <= int64(maxRows) || r*int64(maxRows)/n != (r+1)*int64(maxRows)/n
	}
	cols := make([][]float64, len(want))
	for j, c := range want {
		var row int64
		err := d.ScanFloat(ctx, c, func(b drift.Floats) error {
			for i, v := range b.Values {
				if keep(row + int64(i)) {
					if b.Invalid != nil && b.Invalid[i] {
						return fmt.Errorf("column %s, row %d: not a number", c, row+int64(i)+1)
					}
					cols[j] = append(cols[j], v)
				}
			}
			row += int64(len(b.Values))
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
	}
	var x [][]float64
	var y []float64
rows:
	for r := range cols[0] {
		row := make([]float64, len(columns))
		for j := range want {
			if math.IsNaN(cols[j][r]) {
				continue rows
			}
			if j < len(columns) {
				row[j] = cols[j][r]
			}
		}
		x = append(x, row)
		if target != "" {
			y = append(y, cols[len(columns)][r])
		}
	}
	if len(x) < 2 {
		return nil, nil, fmt.Errorf("%d rows without a missing value: importances need at least 2", len(x))
	}
	return x, y, nil
}

// permutationImportance is the mean drop of the model's R² on (x, y)
// when one feature's values are shuffled, over repeats shuffles, per
// feature; a negative mean is 0.
func permutationImportance(m *linear.Model, x [][]float64, y []float64, repeats int, rng *rand.Rand) map[string]float64 {
	base := r2(m, x, y, -1, nil)
	out := make(map[string]float64, len(m.Columns))
	perm := make([]int, len(x))
	for j, name := range m.Columns {
		var drop float64
		for range repeats {
			for i := range perm {
				perm[i] = i
			}
			rng.Shuffle(len(perm), func(a, b int) { perm[a], perm[b] = perm[b], perm[a] })
			drop += base - r2(m, x, y, j, perm)
		}
		out[name] = max(drop/float64(repeats), 0)
	}
	return out
}

// r2 is the model's R² score on (x, y), as scikit-learn's r2_score; with
// col >= 0, column col of row i is read from row perm[i].
func r2(m *linear.Model, x [][]float64, y []float64, col int, perm []int) float64 {
	var mean float64
	for _, v := range y {
		mean += v
	}
	mean /= float64(len(y))
	row := make([]float64, len(m.Columns))
	var res, tot float64
	for i := range x {
		copy(row, x[i])
		if col >= 0 {
			row[col] = x[perm[i]][col]
		}
		d := y[i] - m.Predict(row)
		res += d * d
		tot += (y[i] - mean) * (y[i] - mean)
	}
	if tot == 0 {
		if res == 0 {
			return 1
		}
		return 0
	}
	return 1 - res/tot
}

// windowText is the production window as an error names it.
func windowText(cfg ImportanceConfig) string {
	if cfg.WindowStart.IsZero() {
		return ""
	}
	var files []string
	_ = filepath.WalkDir(cfg.Production[0], func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && len(files) < 5 {
			files = append(files, p)
		}
		return nil
	})
	return fmt.Sprintf(" from %s to %s (files: %s)", cfg.WindowStart.Format(time.RFC3339Nano), cfg.WindowEnd.Format(time.RFC3339Nano), strings.Join(files, ", "))
}
