package linear

import (
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
