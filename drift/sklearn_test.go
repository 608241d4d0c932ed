package drift

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// sklearnOracle runs testdata/oracle_sklearn.py on a spec.
func sklearnOracle(t *testing.T, py string, spec map[string]any) map[string]float64 {
	t.Helper()
	b, _ := json.Marshal(spec)
	p := filepath.Join(t.TempDir(), "spec.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "testdata/oracle_sklearn.py", p).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("oracle: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var want map[string]float64
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("oracle output %q: %v", out, err)
	}
	return want
}

func evaluate(t *testing.T, s Signal, ref, prod Dataset) map[string]Result {
	t.Helper()
	got, err := Evaluate(context.Background(), s, ref, prod)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]Result{}
	for _, r := range got {
		key := r.Metric
		if r.Feature != "" {
			key = r.Feature + "/" + key
		}
		m[key] = r
	}
	return m
}

func compareAll(t *testing.T, got map[string]Result, want map[string]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d results, scikit-learn has %d", len(got), len(want))
	}
	for k, w := range want {
		r, ok := got[k]
		if !ok {
			t.Errorf("%s: not computed", k)
			continue
		}
		if !near(r.Value, w) {
			t.Errorf("%s = %.17g, scikit-learn %.17g", k, r.Value, w)
		}
	}
}

func TestModelPerformanceMatchesSklearn(t *testing.T) {
	py := scipyPython(t)
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(7, 7))
	binary := [][]string{{"label", "pred"}}
	multi := [][]string{{"label", "pred"}}
	regr := [][]string{{"y", "yhat"}}
	animals := []string{"cat", "dog", "bird", "fish"}
	for i := 0; i < 3000; i++ {
		y := r.IntN(2)
		p := y
		if r.IntN(4) == 0 {
			p = 1 - y
		}
		row := []string{strconv.Itoa(y), strconv.Itoa(p)}
		if i%97 == 0 {
			row[1] = ""
		}
		binary = append(binary, row)
		a := r.IntN(4)
		b := a
		if r.IntN(3) == 0 {
			b = r.IntN(3) // fish is never predicted
		}
		multi = append(multi, []string{animals[a], animals[b]})
		v := r.NormFloat64() * 100
		regr = append(regr, []string{strconv.FormatFloat(v, 'g', -1, 64), strconv.FormatFloat(v+r.NormFloat64()*7, 'g', -1, 64)})
	}
	regr[5][1] = ""
	paths := map[string]string{}
	for name, rows := range map[string][][]string{"binary": binary, "multi": multi, "regression": regr} {
		paths[name] = writeCSV(t, dir, name+".csv", rows)
	}
	cls := Signal{Type: ModelPerformance, MLTask: "classification", Target: "label", Prediction: "pred",
		Thresholds: map[string]float64{"accuracy": 0.9, "precision": 0.7, "recall": 0.7, "f1_score": 0.7}}
	for _, name := range []string{"binary", "multi"} {
		d := open(t, paths[name])
		got := evaluate(t, cls, nil, d)
		compareAll(t, got, sklearnOracle(t, py, map[string]any{"classification": paths[name]}))
		if a := got["accuracy"]; a.Passed || a.Direction != LowerIsWorse {
			t.Errorf("%s accuracy below 0.9 passed: %+v", name, a)
		}
	}
	reg := Signal{Type: ModelPerformance, MLTask: "regression", Target: "y", Prediction: "yhat"}
	got := evaluate(t, reg, nil, open(t, paths["regression"]))
	compareAll(t, got, sklearnOracle(t, py, map[string]any{"regression": paths["regression"]}))
	if r := got["rmse"]; !math.IsNaN(r.Threshold) || !r.Passed || r.Detail == "" {
		t.Errorf("rmse without a threshold, one row left out: %+v", r)
	}
	reg.Thresholds = map[string]float64{"root_mean_squared_error": 5}
	if got := evaluate(t, reg, nil, open(t, paths["regression"])); len(got) != 1 || got["rmse"].Passed {
		t.Errorf("rmse over its threshold: %+v", got)
	}
}

func TestNDCGMatchesSklearn(t *testing.T) {
	py := scipyPython(t)
	names := []string{"a", "b", "c", "d", "e", "f"}
	truth := []float64{0.4, 0.25, 0.15, 0.1, 0.06, 0.04}
	score := []float64{0.1, 0.3, 0.3, 0.1, 0.05, 0.2} // ties
	s := Signal{Type: FeatureAttributionDrift, Importance: map[string]float64{}, ProductionImportance: map[string]float64{}}
	for i, n := range names {
		s.Importance[n], s.ProductionImportance[n] = truth[i], score[i]
	}
	got := evaluate(t, s, nil, open(t, writeCSV(t, t.TempDir(), "p.csv", [][]string{{"a"}, {"1"}})))
	want := sklearnOracle(t, py, map[string]any{"ndcg": [][]float64{truth, score}})
	r := got[NormalizedDCG]
	if !near(r.Value, want["ndcg"]) || r.Threshold != 0.9 || r.Passed != (r.Value >= 0.9) {
		t.Errorf("NDCG %+v, scikit-learn %.17g", r, want["ndcg"])
	}
}

func TestDataQualityMatchesNumpy(t *testing.T) {
	py := scipyPython(t)
	dir := t.TempDir()
	refPath := writeCSV(t, dir, "ref.csv", driftTable(11, 2000, 0, false))
	prodPath := writeCSV(t, dir, "prod.csv", driftTable(12, 1500, 0.8, true))
	kinds := map[string]string{"x": "numerical", "y": "numerical", "wide": "numerical", "color": "categorical", "fruit": "categorical"}
	s := Signal{Type: DataQuality, Features: []string{"x", "y", "wide", "color", "fruit"}}
	got := evaluate(t, s, open(t, refPath), open(t, prodPath))
	compareAll(t, got, sklearnOracle(t, py, map[string]any{"quality": []any{refPath, prodPath, kinds}}))
	if r := got["fruit/out_of_bounds_rate"]; r.Value == 0 || r.Passed || r.Threshold != 0 {
		t.Errorf("unseen fruit: %+v", r)
	}
	if r := got["y/data_type_error_rate"]; r.Value == 0 || r.Passed {
		t.Errorf("text in a numerical column: %+v", r)
	}
}
