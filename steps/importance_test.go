package steps

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wharfml/wharf/linear"
)

// importanceRows are n rows of features a, b and c with the given
// standard deviations and the label 3a + 0b + 0.5c + 1 plus noise.
func importanceRows(seed uint64, n int, sa, sb, sc float64) [][]string {
	r := rand.New(rand.NewPCG(seed, 1))
	rows := make([][]string, n)
	for i := range rows {
		a, b, c := r.NormFloat64()*sa, r.NormFloat64()*sb, r.NormFloat64()*sc
		y := 3*a + 0.5*c + 1 + r.NormFloat64()*0.1
		rows[i] = []string{fmtFloat(a), fmtFloat(b), fmtFloat(c), fmtFloat(y)}
	}
	return rows
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// TestFeatureImportanceByPermutation: on the reference the feature with
// the largest coefficient times spread ranks first; on production data
// whose spreads changed, the ranking follows, each importance near the
// value permuting a linear model's feature gives in expectation,
// 2·coef²·var(x)/var(y); a feature the model ignores is 0 exactly.
func TestFeatureImportanceByPermutation(t *testing.T) {
	dir := t.TempDir()
	model := &linear.Model{Columns: []string{"a", "b", "c"}, Coef: []float64{3, 0, 0.5}, Intercept: 1}
	if err := model.Save(filepath.Join(dir, "model")); err != nil {
		t.Fatal(err)
	}
	header := []string{"a", "b", "c", "y"}
	writeCSVFile(t, filepath.Join(dir, "ref.csv"), header, importanceRows(1, 3000, 1, 1, 1))
	prodRows := importanceRows(2, 3000, 0.1, 1, 4)
	writeCSVFile(t, filepath.Join(dir, "prod.csv"), header, prodRows)
	var log strings.Builder
	out := filepath.Join(dir, "out")
	imp, err := FeatureImportance(t.Context(), ImportanceConfig{Model: filepath.Join(dir, "model"), Reference: []string{filepath.Join(dir, "ref.csv")},
		Target: "y", Production: []string{filepath.Join(dir, "prod.csv")}, Output: out}, &log)
	if err != nil {
		t.Fatal(err)
	}
	ref, prod := imp.Reference, imp.Production
	if !(ref["a"] > ref["c"] && ref["c"] > ref["b"]) || ref["b"] != 0 {
		t.Errorf("reference importances %v: want a > c > b = 0", ref)
	}
	if !(prod["c"] > prod["a"] && prod["a"] > prod["b"]) || prod["b"] != 0 {
		t.Errorf("production importances %v: want c > a > b = 0", prod)
	}
	// Against the model's own outputs: y = 3a + 0.5c + 1 exactly.
	var va, vc float64
	for _, r := range prodRows {
		a, _ := strconv.ParseFloat(r[0], 64)
		c, _ := strconv.ParseFloat(r[2], 64)
		va += a * a
		vc += c * c
	}
	va, vc = va/3000, vc/3000
	vy := 9*va + 0.25*vc
	for f, want := range map[string]float64{"a": 2 * 9 * va / vy, "c": 2 * 0.25 * vc / vy} {
		if math.Abs(prod[f]-want) > 0.15*want {
			t.Errorf("production importance of %s = %g, want about %g", f, prod[f], want)
		}
	}
	if imp.ReferenceRows != 3000 || imp.ProductionRows != 3000 || imp.RowsScored != 3000 || imp.Repeats != 5 {
		t.Errorf("importances %+v", imp)
	}
	b, err := os.ReadFile(filepath.Join(out, ImportanceFile))
	if err != nil {
		t.Fatal(err)
	}
	var written Importances
	if err := json.Unmarshal(b, &written); err != nil || written.Reference["a"] != ref["a"] || written.Production["c"] != prod["c"] {
		t.Errorf("%s = %s (%v)", ImportanceFile, b, err)
	}

	// At most MaxRows rows are scored, spread over the data.
	few, err := FeatureImportance(t.Context(), ImportanceConfig{Model: filepath.Join(dir, "model"), Reference: []string{filepath.Join(dir, "ref.csv")},
		Target: "y", MaxRows: 700}, &log)
	if err != nil {
		t.Fatal(err)
	}
	if few.RowsScored != 700 || few.ReferenceRows != 3000 || few.Production != nil || !(few.Reference["a"] > few.Reference["c"]) {
		t.Errorf("importances over 700 rows: %+v", few)
	}
}

// TestFeatureImportanceRefusesWhatItCannotScore: a model of another
// flavor, and a reference without the target, are refused by name.
func TestFeatureImportanceRefusesWhatItCannotScore(t *testing.T) {
	dir := t.TempDir()
	writeCSVFile(t, filepath.Join(dir, "ref.csv"), []string{"a", "b", "y"}, [][]string{{"1", "2", "3"}, {"2", "3", "5"}, {"4", "1", "5"}})
	sk := filepath.Join(dir, "sk")
	if err := os.MkdirAll(sk, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sk, "MLmodel"), []byte("flavors:\n  sklearn:\n    pickled_model: model.pkl\n  python_function:\n    loader_module: mlflow.sklearn\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := FeatureImportance(t.Context(), ImportanceConfig{Model: sk, Reference: []string{filepath.Join(dir, "ref.csv")}, Target: "y"}, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "Wharf linear models") || !strings.Contains(err.Error(), "sklearn") {
		t.Errorf("sklearn model: %v", err)
	}
	lin := filepath.Join(dir, "lin")
	if err := (&linear.Model{Columns: []string{"a", "b"}, Coef: []float64{1, 1}}).Save(lin); err != nil {
		t.Fatal(err)
	}
	_, err = FeatureImportance(t.Context(), ImportanceConfig{Model: lin, Reference: []string{filepath.Join(dir, "ref.csv")}, Target: "fare"}, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "no column fare (it has a, b, y)") {
		t.Errorf("missing target: %v", err)
	}
}
