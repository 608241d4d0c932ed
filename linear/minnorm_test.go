package linear

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/wharfml/wharf/tabular"
)

// rankDeficient is a design whose least-squares coefficients are not
// unique: dup copies b, c is the constant 0.1 (whose mean a sum of rows
// does not give back to the bit), and, with comb, comb is a + 2b - 3.
func rankDeficient(n int, comb bool) ([]string, [][]float64, []float64) {
	r := rand.New(rand.NewPCG(7, 8))
	names := []string{"a", "b", "dup", "c", "d"}
	if comb {
		names = append(names, "comb")
	}
	x := make([][]float64, n)
	y := make([]float64, n)
	for i := range x {
		a, b, d := 40.7+r.Float64()*0.1, r.Float64()*24, r.NormFloat64()
		x[i] = []float64{a, b, b, 0.1, d}
		if comb {
			x[i] = append(x[i], a+2*b-3)
		}
		y[i] = 3 + 2*a + 0.5*b - 0.2*d + r.NormFloat64()
	}
	return names, x, y
}

// minNormFit is the independent computation: scikit-learn's recipe done
// in memory on the whole design, not on the streamed R factor. The
// features and target are centred on their means, the coefficients are
// pinv(Xc)·yc from the SVD of the n×k matrix Xc, singular values up to
// max(n, k)·ε of the largest left out, and the intercept is
// mean(y) - mean(x)·w.
func minNormFit(t *testing.T, x [][]float64, y []float64) ([]float64, float64) {
	t.Helper()
	n, k := len(x), len(x[0])
	mx := make([]float64, k)
	var my float64
	for i, row := range x {
		for j, v := range row {
			mx[j] += v / float64(n)
		}
		my += y[i] / float64(n)
	}
	xc := mat.NewDense(n, k, nil)
	yc := mat.NewVecDense(n, nil)
	for i, row := range x {
		for j, v := range row {
			xc.Set(i, j, v-mx[j])
		}
		yc.SetVec(i, y[i]-my)
	}
	var svd mat.SVD
	if !svd.Factorize(xc, mat.SVDThin) {
		t.Fatal("SVD did not converge")
	}
	var u, v mat.Dense
	svd.UTo(&u)
	svd.VTo(&v)
	sv := svd.Values(nil)
	w := make([]float64, k)
	for c, s := range sv {
		if s <= float64(max(n, k))*eps*sv[0] {
			break
		}
		z := mat.Dot(u.ColView(c), yc) / s
		for j := range w {
			w[j] += v.At(j, c) * z
		}
	}
	b := my
	for j := range w {
		b -= mx[j] * w[j]
	}
	return w, b
}

// writeTable writes rows as a CSV file, every number as it round-trips.
func writeTable(t *testing.T, names []string, x [][]float64, y []float64) func() (tabular.Reader, error) {
	t.Helper()
	var b strings.Builder
	b.WriteString(strings.Join(names, ",") + ",y\n")
	for i, row := range x {
		for _, v := range row {
			b.WriteString(strconv.FormatFloat(v, 'g', -1, 64) + ",")
		}
		b.WriteString(strconv.FormatFloat(y[i], 'g', -1, 64) + "\n")
	}
	path := filepath.Join(t.TempDir(), "train.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// Small batches over several workers: the streamed factors are merged.
	return func() (tabular.Reader, error) { return tabular.Open(path, tabular.Options{BatchRows: 700}) }
}

func sd(v []float64) float64 {
	var mean, ss float64
	for _, x := range v {
		mean += x / float64(len(v))
	}
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return math.Sqrt(ss / float64(len(v)))
}

// TestTrainFitsRankDeficientDesignsWithMinimumNorm: a copied column, a
// constant one and a linear combination of others leave many
// least-squares solutions; the trainer, with every solver that fits
// without a penalty, must give the minimum-norm one, whose predictions
// are the least-squares predictions and whose coefficients are those of
// the in-memory SVD.
func TestTrainFitsRankDeficientDesignsWithMinimumNorm(t *testing.T) {
	for _, comb := range []bool{false, true} {
		names, x, y := rankDeficient(5000, comb)
		open := writeTable(t, names, x, y)
		wantW, wantB := minNormFit(t, x, y)
		scale := sd(y)

		// Without the combination, the answer is also known in closed
		// form from the full-rank design without dup and c: b's
		// coefficient is shared equally by b and dup (the shortest split)
		// and c's is 0, whatever its rounding residues.
		if !comb {
			reduced := make([][]float64, len(x))
			for i, row := range x {
				reduced[i] = []float64{row[0], row[1], row[4]}
			}
			full, err := Fit([]string{"a", "b", "d"}, reduced, y)
			if err != nil {
				t.Fatal(err)
			}
			closed := []float64{full.Coef[0], full.Coef[1] / 2, full.Coef[1] / 2, 0, full.Coef[2]}
			for j := range closed {
				if math.Abs(closed[j]-wantW[j]) > 1e-9*math.Max(math.Abs(closed[j]), 1) {
					t.Fatalf("the in-memory SVD's coefficient %s is %v, the closed form's %v", names[j], wantW[j], closed[j])
				}
			}
		}

		for _, opt := range []TrainOptions{
			{Target: "y", Workers: 3},                  // features chosen, constant c dropped
			{Target: "y", Workers: 3, Features: names}, // c kept, coefficient 0
			{Target: "y", Workers: 3, Features: names, Solver: SolverQR},
		} {
			m, rep, err := Train(open, opt)
			if err != nil {
				t.Fatalf("comb %v, %+v: %v", comb, opt, err)
			}
			if rep.Solver != SolverQR {
				t.Errorf("comb %v, %+v: solver %s, want the QR fallback", comb, opt, rep.Solver)
			}
			if opt.Features == nil && strings.Join(rep.Dropped, ",") != "c" {
				t.Errorf("comb %v: dropped %v, want c", comb, rep.Dropped)
			}
			if strings.Join(m.Columns, ",") != strings.Join(names, ",") {
				t.Fatalf("columns %v", m.Columns)
			}
			if m.Coef[3] != 0 {
				t.Errorf("comb %v, %+v: the constant column's coefficient is %v", comb, opt, m.Coef[3])
			}
			for j := range wantW {
				if d := math.Abs(m.Coef[j] - wantW[j]); d > 1e-8*math.Max(math.Abs(wantW[j]), 1) {
					t.Errorf("comb %v, %+v: coefficient %s %v, minimum norm %v", comb, opt, names[j], m.Coef[j], wantW[j])
				}
			}
			var worst float64
			for _, row := range x {
				want := wantB
				for j, v := range row {
					want += wantW[j] * v
				}
				worst = math.Max(worst, math.Abs(m.Predict(row)-want))
			}
			if worst > 1e-8*scale {
				t.Errorf("comb %v, %+v: predictions differ by up to %g, %g of sd(y)", comb, opt, worst, worst/scale)
			}
			ev := m.Evaluate(x, y)
			if math.Abs(rep.Fitted.R2-ev.R2) > 1e-9 || math.Abs(rep.Fitted.RMSE-ev.RMSE) > 1e-9*ev.RMSE {
				t.Errorf("comb %v, %+v: fitted %+v, evaluated %+v", comb, opt, rep.Fitted, ev)
			}
		}
		if _, _, err := Train(open, TrainOptions{Target: "y", Features: names, Solver: SolverCholesky}); err == nil {
			t.Errorf("comb %v: the Cholesky solver, which cannot find the minimum norm, fitted", comb)
		}
	}
}

// TestTrainFitsFewerRowsThanCoefficients: with no more rows than
// coefficients every fit is exact, and the minimum-norm one is chosen.
func TestTrainFitsFewerRowsThanCoefficients(t *testing.T) {
	names := []string{"a", "b", "c", "d", "e"}
	x := [][]float64{{1, 2, 3, 4, 5}, {2, 1, 0, 1, 2}, {0, 0, 1, 3, 1}, {5, 4, 4, 2, 0}}
	y := []float64{1, 4, 2, 3}
	open := writeTable(t, names, x, y)
	m, rep, err := Train(open, TrainOptions{Target: "y"})
	if err != nil {
		t.Fatal(err)
	}
	wantW, wantB := minNormFit(t, x, y)
	for j := range wantW {
		if math.Abs(m.Coef[j]-wantW[j]) > 1e-12 {
			t.Errorf("coefficient %s %v, minimum norm %v", names[j], m.Coef[j], wantW[j])
		}
	}
	if math.Abs(m.Intercept-wantB) > 1e-12 {
		t.Errorf("intercept %v, want %v", m.Intercept, wantB)
	}
	for i, row := range x {
		if math.Abs(m.Predict(row)-y[i]) > 1e-12 {
			t.Errorf("row %d predicted %v, not its target %v", i, m.Predict(row), y[i])
		}
	}
	if rep.Fitted.R2 < 1-1e-12 || rep.Fitted.RMSE > 1e-12 {
		t.Errorf("fitted %+v, want an exact fit", rep.Fitted)
	}
	_, _, err = Train(open, TrainOptions{Target: "y", Solver: SolverCholesky})
	if err == nil || err.Error() != "linear: 4 rows cannot determine 5 coefficients and an intercept" {
		t.Errorf("Cholesky: %v", err)
	}
}

// TestMomentsTellConstantsExactly: a constant whose batch means are a bit
// off it leaves centred residues; the moments still know the column is
// constant, across batches and merges, and give it coefficient 0 (for
// ridge too) instead of fitting its rounding.
func TestMomentsTellConstantsExactly(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	const n = 3000
	c, a, y := make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range c {
		c[i], a[i] = 0.1, r.Float64()
		y[i] = 1 + 3*a[i] + r.NormFloat64()*0.1
	}
	m, other := NewMoments(2), NewMoments(2)
	for lo := 0; lo < n; lo += 333 {
		hi := min(lo+333, n)
		acc := m
		if lo/333%2 == 1 {
			acc = other
		}
		if err := acc.Add([][]float64{c[lo:hi], a[lo:hi]}, y[lo:hi]); err != nil {
			t.Fatal(err)
		}
	}
	m.Merge(other)
	if m.c[0] == 0 {
		t.Log("the centred sum of squares of the constant came out exactly 0 this time")
	}
	for _, alpha := range []float64{0, 2} {
		model, _, err := m.Solve([]string{"c", "a"}, alpha)
		if err != nil {
			t.Fatalf("alpha %v: %v", alpha, err)
		}
		if model.Coef[0] != 0 || math.Abs(model.Coef[1]-3) > 0.05 {
			t.Errorf("alpha %v: coefficients %v", alpha, model.Coef)
		}
	}
	// A value that differs, in a later batch, makes the column vary.
	last := NewMoments(2)
	if err := last.Add([][]float64{{0.1, 0.2}, {0.5, 0.6}}, []float64{1, 2}); err != nil {
		t.Fatal(err)
	}
	m.Merge(last)
	if !m.varies[0] {
		t.Error("a column with 0.1 and 0.2 is still constant")
	}
}
