package linear

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func TestFitRecoversKnownCoefficients(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var x [][]float64
	var y []float64
	for i := 0; i < 500; i++ {
		d, h := r.Float64()*20, float64(r.IntN(24))
		x = append(x, []float64{d, h})
		y = append(y, 2.5+2.1*d+0.3*h+r.NormFloat64()*0.01)
	}
	m, err := Fit([]string{"distance", "hour"}, x, y)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(m.Intercept-2.5) > 0.01 || math.Abs(m.Coef[0]-2.1) > 0.001 || math.Abs(m.Coef[1]-0.3) > 0.001 {
		t.Errorf("fit %+v, want intercept 2.5, coef [2.1 0.3]", m)
	}
	met := m.Evaluate(x, y)
	if met.R2 < 0.9999 || met.RMSE > 0.02 {
		t.Errorf("metrics %+v", met)
	}
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	back, err := Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if back.Predict([]float64{3, 10}) != m.Predict([]float64{3, 10}) {
		t.Error("saved model predicts differently")
	}
}

func TestFitRejectsDegenerateData(t *testing.T) {
	if _, err := Fit([]string{"a"}, [][]float64{{1}}, []float64{1}); err == nil {
		t.Error("one row fit two parameters")
	}
	if _, err := Fit([]string{"a"}, [][]float64{{1}, {2}, {math.NaN()}}, []float64{1, 2, 3}); err == nil {
		t.Error("NaN accepted")
	}
	if _, err := Fit([]string{"a", "b"}, [][]float64{{1, 1}, {2, 2}, {3, 3}, {4, 4}}, []float64{1, 2, 3, 4}); err == nil {
		t.Error("two identical columns fit")
	}
}

// collinearData has two nearly equal columns besides independent ones, as
// the taxi data has (pickup and dropoff times of short trips).
func collinearData(n int, noise float64) ([][]float64, [][]float64, []float64) {
	r := rand.New(rand.NewPCG(3, 4))
	rows := make([][]float64, n)
	cols := [][]float64{make([]float64, n), make([]float64, n), make([]float64, n)}
	y := make([]float64, n)
	for i := range rows {
		a := 40.7 + r.Float64()*0.1 // latitude-like: large mean, small spread
		b := r.Float64() * 24
		c := b + r.NormFloat64()*noise
		rows[i] = []float64{a, b, c}
		cols[0][i], cols[1][i], cols[2][i] = a, b, c
		y[i] = 3 + 50*a + 0.7*b - 0.2*c + r.NormFloat64()
	}
	return rows, cols, y
}

func TestStreamingFitsMatchInMemoryQR(t *testing.T) {
	names := []string{"a", "b", "c"}
	rows, cols, y := collinearData(10000, 0.5)
	want, err := Fit(names, rows, y)
	if err != nil {
		t.Fatal(err)
	}
	// Two accumulators over interleaved batches, merged, as the trainer's
	// parallel readers use them.
	m1, m2 := NewMoments(3), NewMoments(3)
	qr, qr2 := NewQRAccumulator(3), NewQRAccumulator(3)
	for lo, i := 0, 0; lo < len(y); lo, i = lo+1700, i+1 {
		hi := min(lo+1700, len(y))
		batch := [][]float64{cols[0][lo:hi], cols[1][lo:hi], cols[2][lo:hi]}
		acc, qacc := m1, qr
		if i%2 == 1 {
			acc, qacc = m2, qr2
		}
		if err := acc.Add(batch, y[lo:hi]); err != nil {
			t.Fatal(err)
		}
		if err := qacc.Add(batch, y[lo:hi]); err != nil {
			t.Fatal(err)
		}
	}
	m1.Merge(m2)
	qr.Merge(qr2)
	// One more accumulator fed batches that span several of its
	// cache-sized row blocks.
	qrBig := NewQRAccumulator(3)
	for lo := 0; lo < len(y); lo += 4500 {
		hi := min(lo+4500, len(y))
		if err := qrBig.Add([][]float64{cols[0][lo:hi], cols[1][lo:hi], cols[2][lo:hi]}, y[lo:hi]); err != nil {
			t.Fatal(err)
		}
	}
	viaBig, err := qrBig.Solve(names)
	if err != nil {
		t.Fatal(err)
	}
	got, fitted, err := m1.Solve(names, 0)
	if err != nil {
		t.Fatal(err)
	}
	viaQR, err := qr.Solve(names)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*Model{got, viaQR, viaBig} {
		if rel := math.Abs(m.Intercept-want.Intercept) / math.Abs(want.Intercept); rel > 1e-9 {
			t.Errorf("intercept %v, want %v (rel %g)", m.Intercept, want.Intercept, rel)
		}
		for j := range want.Coef {
			if rel := math.Abs(m.Coef[j]-want.Coef[j]) / math.Abs(want.Coef[j]); rel > 1e-9 {
				t.Errorf("coef %d: %v, want %v (rel %g)", j, m.Coef[j], want.Coef[j], rel)
			}
		}
	}
	ev := want.Evaluate(rows, y)
	if qf := qr.Fitted(); math.Abs(qf.R2-ev.R2) > 1e-9 || math.Abs(qf.RMSE-ev.RMSE)/ev.RMSE > 1e-9 || qf.Rows != 10000 {
		t.Errorf("QR fitted %+v, evaluated %+v", qf, ev)
	}
	if math.Abs(fitted.R2-ev.R2) > 1e-9 || math.Abs(fitted.RMSE-ev.RMSE)/ev.RMSE > 1e-9 || fitted.Rows != 10000 {
		t.Errorf("fitted %+v, evaluated %+v", fitted, ev)
	}
}

func TestQRAccumulatorNamesTheRowOfABadValue(t *testing.T) {
	_, cols, y := collinearData(5000, 0.5)
	cols[1][4100] = math.NaN()
	err := NewQRAccumulator(3).Add(cols, y)
	var ve *ValueError
	if !errors.As(err, &ve) || ve.Column != 1 || ve.Row != 4100 {
		t.Fatalf("got %v, want a ValueError at column 1, row 4100", err)
	}
}

func TestMomentsRefuseNearlyCollinearFeatures(t *testing.T) {
	_, cols, y := collinearData(2000, 1e-7)
	m := NewMoments(3)
	if err := m.Add(cols, y); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Solve([]string{"a", "b", "c"}, 0); err != ErrIllConditioned {
		t.Fatalf("err = %v, want ErrIllConditioned", err)
	}
	// Ridge regularises the same data into a solvable problem.
	if _, _, err := m.Solve([]string{"a", "b", "c"}, 1); err != nil {
		t.Fatalf("ridge: %v", err)
	}
}

func TestRidgeShrinksTowardsZeroWithUnpenalisedIntercept(t *testing.T) {
	names := []string{"a", "b", "c"}
	_, cols, y := collinearData(500, 0.5)
	m := NewMoments(3)
	m.Add(cols, y)
	ols, _, err := m.Solve(names, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The ridge solution satisfies (Xcᵀ Xc + αI) w = Xcᵀ yc on the centred
	// data; check that residual directly.
	const alpha = 25.0
	r, _, err := m.Solve(names, alpha)
	if err != nil {
		t.Fatal(err)
	}
	n := len(y)
	mean := func(v []float64) float64 {
		s := 0.0
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	}
	mx := []float64{mean(cols[0]), mean(cols[1]), mean(cols[2])}
	my := mean(y)
	for i := 0; i < 3; i++ {
		lhs := alpha * r.Coef[i]
		rhs := 0.0
		for k := 0; k < n; k++ {
			xi := cols[i][k] - mx[i]
			pred := 0.0
			for j := 0; j < 3; j++ {
				pred += (cols[j][k] - mx[j]) * r.Coef[j]
			}
			lhs += xi * pred
			rhs += xi * (y[k] - my)
		}
		if math.Abs(lhs-rhs) > 1e-6*math.Abs(rhs) {
			t.Errorf("normal equation %d: %v vs %v", i, lhs, rhs)
		}
	}
	var normOLS, normRidge float64
	for j := range r.Coef {
		normOLS += ols.Coef[j] * ols.Coef[j]
		normRidge += r.Coef[j] * r.Coef[j]
	}
	if normRidge >= normOLS {
		t.Errorf("ridge |w|² %v not below OLS %v", normRidge, normOLS)
	}
	if want := my - r.Coef[0]*mx[0] - r.Coef[1]*mx[1] - r.Coef[2]*mx[2]; math.Abs(r.Intercept-want) > 1e-9*math.Abs(want) {
		t.Errorf("intercept %v, want %v", r.Intercept, want)
	}
}

func benchBatch(k, n int) ([][]float64, []float64) {
	r := rand.New(rand.NewPCG(5, 6))
	x := make([][]float64, k)
	for j := range x {
		x[j] = make([]float64, n)
		for i := range x[j] {
			x[j][i] = r.Float64()
		}
	}
	y := make([]float64, n)
	for i := range y {
		y[i] = r.Float64()
	}
	return x, y
}

// BenchmarkMomentsAdd measures the streaming fit's cost per row for the
// taxi data's 19 features.
func BenchmarkMomentsAdd(b *testing.B) {
	x, y := benchBatch(19, 65536)
	m := NewMoments(19)
	b.SetBytes(int64(len(y)) * 20 * 8)
	for b.Loop() {
		m.Add(x, y)
	}
}

func BenchmarkQRAccumulatorAdd(b *testing.B) {
	x, y := benchBatch(19, 65536)
	q := NewQRAccumulator(19)
	b.SetBytes(int64(len(y)) * 20 * 8)
	for b.Loop() {
		q.Add(x, y)
	}
}
