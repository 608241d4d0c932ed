package steps

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wharfml/wharf/linear"
	"github.com/wharfml/wharf/taxigen"
)

// sklearnPredict fits scikit-learn's LinearRegression on the named
// columns of a CSV file and predicts the rows of another, printing JSON.
// Numbers are parsed by Python's float(), exactly as strconv.ParseFloat
// parses them, whatever the pandas version.
const sklearnPredict = `
import csv, json, sys
import numpy as np, sklearn
from sklearn.linear_model import LinearRegression

def read(path, cols):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return np.array([[float(r[c]) for c in cols] for r in rows], dtype="<f8")

train, target, cols, other = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4]
X, y = read(train, cols), read(train, [target])[:, 0]
m = LinearRegression().fit(X, y)
json.dump({
    "sklearn": sklearn.__version__,
    "rank": int(m.rank_),
    "coef": m.coef_.tolist(),
    "intercept": float(m.intercept_),
    "pred_train": m.predict(X).tolist(),
    "pred_other": m.predict(read(other, cols)).tolist(),
}, sys.stdout)
`

// TestTrainMatchesScikitLearnOnRankDeficientDesigns trains with the
// train step on designs whose least-squares coefficients are not unique
// and checks every prediction against scikit-learn's LinearRegression,
// fitted on the same file, to 1e-8 of the target's standard deviation:
//
//   - taxi trips generated over the whole of 2016 (generate without
//     --days 31), every feature included: dropoff_month equals
//     pickup_month in every row, and both vary;
//   - a synthetic table with a copied column, a constant 0.1 and a linear
//     combination of two others, all named as features.
//
// Predictions are checked on the training rows and on other rows of the
// same shape (taxi-batch.csv, a second synthetic file). scikit-learn must
// find the design rank-deficient too, or the test would not test it. It
// runs with each Python of the mlflow test environments that is set.
func TestTrainMatchesScikitLearnOnRankDeficientDesigns(t *testing.T) {
	dir := t.TempDir()
	gen, err := GenerateTaxi(t.Context(), GenerateConfig{Out: filepath.Join(dir, "taxi"), Rows: 20000, BatchRows: 2000,
		Spec: taxigen.Spec{Seed: 5}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	synthTrain, synthOther := filepath.Join(dir, "synthetic.csv"), filepath.Join(dir, "synthetic-other.csv")
	synthCols := writeSynthetic(t, synthTrain, 4000, 1)
	writeSynthetic(t, synthOther, 500, 2)
	cases := []struct {
		name, train, other string
		features           []string // nil: chosen by the trainer
		wantRank           int
	}{
		{"taxi over 2016", gen.Files[0], gen.Files[1], nil, 19},
		{"copy, constant and combination", synthTrain, synthOther, synthCols, 3},
	}
	for _, env := range []string{"WHARF_TEST_MLFLOW2_PYTHON", "WHARF_TEST_MLFLOW3_PYTHON"} {
		t.Run(env, func(t *testing.T) {
			py := testPython(t, env)
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					res, err := TrainLinearRegression(t.Context(), TrainConfig{TrainData: c.train, Target: "cost",
						Features: c.features, ModelOutput: filepath.Join(t.TempDir(), "model")}, nil)
					if err != nil {
						t.Fatal(err)
					}
					m := &linear.Model{Columns: res.Columns, Coef: res.Coef, Intercept: res.Intercept}
					var sk struct {
						Sklearn   string    `json:"sklearn"`
						Rank      int       `json:"rank"`
						Coef      []float64 `json:"coef"`
						Intercept float64   `json:"intercept"`
						PredTrain []float64 `json:"pred_train"`
						PredOther []float64 `json:"pred_other"`
					}
					runPython(t, py, sklearnPredict, &sk, c.train, "cost", strings.Join(m.Columns, ","), c.other)
					if sk.Rank != c.wantRank || sk.Rank >= len(m.Columns) {
						t.Fatalf("scikit-learn %s finds rank %d for %d features, want %d", sk.Sklearn, sk.Rank, len(m.Columns), c.wantRank)
					}
					header, rows := readCSVFile(t, c.train)
					x, y := numericRows(t, header, rows, m.Columns, "cost")
					header, rows = readCSVFile(t, c.other)
					other, _ := numericRows(t, header, rows, m.Columns, "")
					scale := stddev(y)
					for _, set := range []struct {
						name string
						x    [][]float64
						want []float64
					}{{"training rows", x, sk.PredTrain}, {"other rows", other, sk.PredOther}} {
						if len(set.want) != len(set.x) {
							t.Fatalf("%s: scikit-learn predicted %d rows of %d", set.name, len(set.want), len(set.x))
						}
						var worst float64
						for i, row := range set.x {
							worst = math.Max(worst, math.Abs(m.Predict(row)-set.want[i]))
						}
						t.Logf("scikit-learn %s, rank %d of %d, solver %s: %s differ by at most %.3g (%.3g of sd(y))",
							sk.Sklearn, sk.Rank, len(m.Columns), res.Solver, set.name, worst, worst/scale)
						if worst > 1e-8*scale {
							t.Errorf("%s: predictions differ from scikit-learn's by up to %g, more than 1e-8·sd(y) = %g", set.name, worst, 1e-8*scale)
						}
					}
				})
			}
		})
	}
}

// writeSynthetic writes n rows of cost and the features a, b, copy_b (b
// again), constant (0.1) and comb (a + 2b - 3), plus an independent d,
// and returns the feature names. a and b are whole numbers so that comb
// is their combination to the bit: scikit-learn before 1.9 counts
// singular values down to ε of the largest as signal, so it would fit
// the rounding of a combination of fractions, which no two solvers round
// alike (1.9 and Wharf leave it out).
func writeSynthetic(t *testing.T, path string, n int, seed uint64) []string {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 99))
	var b strings.Builder
	cols := []string{"a", "b", "copy_b", "constant", "comb", "d"}
	b.WriteString("cost," + strings.Join(cols, ",") + "\n")
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	for range n {
		a, bb, d := float64(r.IntN(100)), float64(r.IntN(24)), r.NormFloat64()
		cost := 3 + 2*a + 0.5*bb - 0.2*d + r.NormFloat64()
		fmt.Fprintf(&b, "%s,%s,%s,%s,%s,%s,%s\n", g(cost), g(a), g(bb), g(bb), g(0.1), g(a+2*bb-3), g(d))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return cols
}
