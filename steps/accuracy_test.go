package steps

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wharfml/wharf/linear"
)

// sklearnFit fits scikit-learn's LinearRegression on the same split as
// TestAccuracyLinearRegressionMatchesScikitLearn and prints the model, its
// held-out scores and predictions, and a hash of the training matrix as
// parsed, as JSON. float_precision="round_trip" parses numbers exactly, as
// strconv.ParseFloat does; pandas' default parser may be one bit off.
const sklearnFit = `
import hashlib, json, sys
import numpy as np, pandas as pd, sklearn
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

path, target, features = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
d = pd.read_csv(path, float_precision="round_trip")
test = np.arange(len(d)) % 5 == 4
X = d[features].to_numpy(dtype="<f8")
y = d[target].to_numpy(dtype="<f8")
m = LinearRegression().fit(X[~test], y[~test])
p = m.predict(X[test])
json.dump({
    "sklearn": sklearn.__version__,
    "train_sha256": hashlib.sha256(np.ascontiguousarray(X[~test]).tobytes() + y[~test].tobytes()).hexdigest(),
    "coef": m.coef_.tolist(),
    "intercept": float(m.intercept_),
    "r2": float(r2_score(y[test], p)),
    "mse": float(mean_squared_error(y[test], p)),
    "mae": float(mean_absolute_error(y[test], p)),
    "pred": p.tolist(),
}, sys.stdout)
`

// accuracyRel is the relative tolerance of every comparison with
// scikit-learn.
const accuracyRel = 1e-8

// TestAccuracyLinearRegressionMatchesScikitLearn fits the built-in linear
// regression on the real taxi sample and checks it against scikit-learn's
// LinearRegression fitted on the same rows.
//
// Data: ../shared/data/taxi/taxi-data.csv from the repository root, read
// with strconv.ParseFloat, as the tabular reader parses numbers; the
// split is also written back as CSV and fitted by the streaming trainer.
// Split: data row i (0-based, header excluded) is a test row when i%5 == 4
// (1,954 rows), a training row otherwise (7,819 rows). Features: the 20
// feature columns less pickup_month and dropoff_month, which are 1 in every
// row; the unnamed index column is not a feature.
//
// Tolerances, all relative 1e-8: the intercept, test R², MSE and MAE within
// 1e-8 of scikit-learn's value's magnitude; a coefficient b_j within
// 1e-8·max(|b_j|, sd(y)/sd(x_j)), sd over the training rows, so that a
// coefficient near zero is held to an absolute 1e-8 on the standardized
// scale (the change in predicted cost, in standard deviations of cost, per
// standard deviation of the feature); each test prediction within 1e-8·sd(y).
func TestAccuracyLinearRegressionMatchesScikitLearn(t *testing.T) {
	py := testPython(t, "WHARF_TEST_MLFLOW2_PYTHON")
	// The repository's parent, from this package's folder.
	path := filepath.Join("..", "..", "shared", "data", "taxi", "taxi-data.csv")
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the taxi sample data is missing: %v", err)
		}
		t.Skipf("the taxi sample data is not here (%v); it lives outside the repository, in ../shared/data/taxi", err)
	}

	header, rows := readCSVFile(t, path)
	all := []string{"distance", "dropoff_latitude", "dropoff_longitude", "passengers", "pickup_latitude", "pickup_longitude",
		"store_forward", "vendor", "pickup_weekday", "pickup_month", "pickup_monthday", "pickup_hour", "pickup_minute", "pickup_second",
		"dropoff_weekday", "dropoff_month", "dropoff_monthday", "dropoff_hour", "dropoff_minute", "dropoff_second"}
	var cols []string
	for _, c := range all {
		if c != "pickup_month" && c != "dropoff_month" {
			cols = append(cols, c)
		}
	}
	var trainRows, testRows [][]string
	for i, r := range rows {
		if i%5 == 4 {
			testRows = append(testRows, r)
		} else {
			trainRows = append(trainRows, r)
		}
	}
	x, y := numericRows(t, header, trainRows, cols, "cost")
	tx, ty := numericRows(t, header, testRows, cols, "cost")
	if len(rows) != 9773 || len(x) != 7819 || len(tx) != 1954 {
		t.Fatalf("%d rows split %d/%d, want 9773 split 7819/1954", len(rows), len(x), len(tx))
	}

	// The month columns, constant, cannot be fitted beside an intercept.
	allX, allY := numericRows(t, header, trainRows, all, "cost")
	if _, err := linear.Fit(all, allX, allY); err == nil {
		t.Error("a fit with the constant month columns succeeded; the comparison below assumes it fails")
	}

	m, err := linear.Fit(cols, x, y)
	if err != nil {
		t.Fatal(err)
	}
	ev := m.Evaluate(tx, ty)

	// The streaming trainer `wharf train linear-regression` runs, on the
	// same split written back as CSV text, choosing its features itself:
	// it must drop the unnamed index column and the two constant month
	// columns, and land on the same model.
	dir := t.TempDir()
	trainPath, testPath := filepath.Join(dir, "train.csv"), filepath.Join(dir, "test.csv")
	writeCSVFile(t, trainPath, header, trainRows)
	writeCSVFile(t, testPath, header, testRows)
	streamed, rep, err := linear.Train(OpenTable(trainPath), linear.TrainOptions{Target: "cost"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(streamed.Columns, ",") != strings.Join(all, ",") || strings.Join(rep.Dropped, ",") != "pickup_month,dropoff_month" {
		t.Fatalf("streaming trainer chose %v, dropped %v", streamed.Columns, rep.Dropped)
	}
	// A dropped column stays in the model with coefficient 0, as in
	// scikit-learn's least squares, so the model takes the data's rows.
	streamedCoef := map[string]float64{}
	for j, c := range streamed.Columns {
		streamedCoef[c] = streamed.Coef[j]
	}
	if streamedCoef["pickup_month"] != 0 || streamedCoef["dropoff_month"] != 0 {
		t.Errorf("constant month columns got coefficients %v, %v", streamedCoef["pickup_month"], streamedCoef["dropoff_month"])
	}
	t.Logf("streaming trainer: solver %s, %d rows", rep.Solver, rep.Rows)
	streamedScores, err := ScoreTable(streamed, testPath, "cost", nil)
	if err != nil {
		t.Fatal(err)
	}

	var sk struct {
		Sklearn     string    `json:"sklearn"`
		TrainSHA256 string    `json:"train_sha256"`
		Coef        []float64 `json:"coef"`
		Intercept   float64   `json:"intercept"`
		R2          float64   `json:"r2"`
		MSE         float64   `json:"mse"`
		MAE         float64   `json:"mae"`
		Pred        []float64 `json:"pred"`
	}
	runPython(t, py, sklearnFit, &sk, path, "cost", strings.Join(cols, ","))
	if h := trainHash(x, y); h != sk.TrainSHA256 {
		t.Fatalf("Go and pandas parsed different training data: sha256 %s and %s", h, sk.TrainSHA256)
	}
	if len(sk.Coef) != len(cols) || len(sk.Pred) != len(tx) {
		t.Fatalf("scikit-learn gave %d coefficients and %d predictions", len(sk.Coef), len(sk.Pred))
	}

	sdY := stddev(y)
	t.Logf("scikit-learn %s; %d training rows, %d test rows", sk.Sklearn, len(x), len(tx))
	t.Logf("%-18s %24s %24s %10s %10s", "", "Go (gonum QR)", "scikit-learn", "diff/scale", "tolerance")
	check := func(name string, got, want, scale float64) {
		t.Helper()
		tol := accuracyRel * scale
		diff := math.Abs(got - want)
		t.Logf("%-18s %24.15g %24.15g %10.2e %10.2e", name, got, want, diff/scale, accuracyRel)
		if !(diff <= tol) {
			t.Errorf("%s: Go %.17g, scikit-learn %.17g: differ by %.3g, tolerance %.3g", name, got, want, diff, tol)
		}
	}
	for j, c := range cols {
		col := make([]float64, len(x))
		for i := range x {
			col[i] = x[i][j]
		}
		check(c, m.Coef[j], sk.Coef[j], math.Max(math.Abs(sk.Coef[j]), sdY/stddev(col)))
	}
	check("intercept", m.Intercept, sk.Intercept, math.Abs(sk.Intercept))
	check("test R²", ev.R2, sk.R2, math.Abs(sk.R2))
	check("test MSE", ev.RMSE*ev.RMSE, sk.MSE, sk.MSE)
	check("test MAE", ev.MAE, sk.MAE, sk.MAE)
	var worst float64
	for i, row := range tx {
		worst = math.Max(worst, math.Abs(m.Predict(row)-sk.Pred[i]))
	}
	check("worst prediction", worst, 0, sdY)

	t.Logf("streaming trainer (%s) and the evaluate step's streaming scores:", rep.Solver)
	for j, c := range cols {
		col := make([]float64, len(x))
		for i := range x {
			col[i] = x[i][j]
		}
		check(c, streamedCoef[c], sk.Coef[j], math.Max(math.Abs(sk.Coef[j]), sdY/stddev(col)))
	}
	check("intercept", streamed.Intercept, sk.Intercept, math.Abs(sk.Intercept))
	check("test R²", streamedScores.R2, sk.R2, math.Abs(sk.R2))
	check("test MSE", streamedScores.MSE, sk.MSE, sk.MSE)
	check("test MAE", streamedScores.MAE, sk.MAE, sk.MAE)
	if streamedScores.Rows != int64(len(tx)) {
		t.Errorf("scored %d test rows, want %d", streamedScores.Rows, len(tx))
	}
}

// testPython is the Python named by env, a venv with scikit-learn. Under
// CI a missing one fails the test, so that a comparison never silently
// stops running; elsewhere the test is skipped.
func testPython(t *testing.T, env string) string {
	t.Helper()
	py := os.Getenv(env)
	if py == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set; run the suite with ./scripts/test", env)
		}
		t.Skipf("%s not set; ./scripts/test builds the mlflow venvs with scikit-learn", env)
	}
	return py
}

// runPython runs script with args and decodes the JSON it prints into
// out; its errors go to the test's stderr.
func runPython(t *testing.T, py, script string, out any, args ...string) {
	t.Helper()
	cmd := exec.Command(py, append([]string{"-c", script}, args...)...)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("python output %.200s: %v", b, err)
	}
}

func readCSVFile(t *testing.T, path string) ([]string, [][]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("%s: %v", path, err)
	}
	return rows[0], rows[1:]
}

func writeCSVFile(t *testing.T, path string, header []string, rows [][]string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.Write(header)
	w.WriteAll(rows)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// numericRows parses the named columns of rows, as strconv.ParseFloat
// reads them, into a row-major matrix and the target (none when target is
// "").
func numericRows(t *testing.T, header []string, rows [][]string, cols []string, target string) ([][]float64, []float64) {
	t.Helper()
	idx := map[string]int{}
	for i, h := range header {
		idx[h] = i
	}
	parse := func(rec []string, c string) float64 {
		i, ok := idx[c]
		if !ok {
			t.Fatalf("no column %q", c)
		}
		v, err := strconv.ParseFloat(rec[i], 64)
		if err != nil {
			t.Fatalf("column %s: %v", c, err)
		}
		return v
	}
	x := make([][]float64, len(rows))
	y := make([]float64, len(rows))
	for r, rec := range rows {
		x[r] = make([]float64, len(cols))
		for j, c := range cols {
			x[r][j] = parse(rec, c)
		}
		if target != "" {
			y[r] = parse(rec, target)
		}
	}
	return x, y
}

// trainHash is the sha256 of x's rows then y, as little-endian float64s,
// the bytes numpy's tobytes gives for the same arrays.
func trainHash(x [][]float64, y []float64) string {
	h := sha256.New()
	var b [8]byte
	for _, row := range x {
		for _, v := range row {
			binary.LittleEndian.PutUint64(b[:], math.Float64bits(v))
			h.Write(b[:])
		}
	}
	for _, v := range y {
		binary.LittleEndian.PutUint64(b[:], math.Float64bits(v))
		h.Write(b[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// stddev is the population standard deviation of v.
func stddev(v []float64) float64 {
	var mean, ss float64
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return math.Sqrt(ss / float64(len(v)))
}
