// Package linear fits and stores linear regression models in the format
// Wharf's router serves natively, in process: an MLflow-style model folder
// whose MLmodel file declares the wharf_linear flavor, next to model.json
// with the coefficients.
package linear

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/gonum/mat"
)

// Flavor is the MLmodel flavor of a Wharf linear model.
const Flavor = "wharf_linear"

// DataFile is the model's coefficients file in its folder.
const DataFile = "model.json"

// Model is y = Intercept + sum(Coef[i] * x[Columns[i]]).
type Model struct {
	Columns   []string  `json:"columns"`
	Coef      []float64 `json:"coef"`
	Intercept float64   `json:"intercept"`
}

// Fit finds the least-squares coefficients and intercept for rows x and
// targets y, by QR decomposition (stable where the normal equations lose
// precision). columns names x's columns. It is the in-memory reference
// the streaming fits are checked against and wants a full-rank design: it
// refuses a constant or repeated column, which Train fits (minimum norm).
func Fit(columns []string, x [][]float64, y []float64) (*Model, error) {
	n, k := len(x), len(columns)
	switch {
	case n == 0:
		return nil, errors.New("linear: no rows to fit")
	case len(y) != n:
		return nil, fmt.Errorf("linear: %d rows but %d targets", n, len(y))
	case n <= k:
		return nil, fmt.Errorf("linear: %d rows cannot determine %d coefficients and an intercept", n, k)
	}
	a := mat.NewDense(n, k+1, nil)
	for i, row := range x {
		if len(row) != k {
			return nil, fmt.Errorf("linear: row %d has %d values, want %d", i, len(row), k)
		}
		a.Set(i, 0, 1)
		for j, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("linear: row %d column %s is %v", i, columns[j], v)
			}
			a.Set(i, j+1, v)
		}
	}
	var qr mat.QR
	qr.Factorize(a)
	var beta mat.Dense
	if err := qr.SolveTo(&beta, false, mat.NewDense(n, 1, y)); err != nil {
		return nil, fmt.Errorf("linear: %w (are two columns the same, or one constant?)", err)
	}
	m := &Model{Columns: append([]string(nil), columns...), Intercept: beta.At(0, 0), Coef: make([]float64, k)}
	for j := range m.Coef {
		m.Coef[j] = beta.At(j+1, 0)
	}
	return m, nil
}

// Predict scores one row, given in Columns order.
func (m *Model) Predict(row []float64) float64 {
	s := m.Intercept
	for j, v := range row {
		s += v * m.Coef[j]
	}
	return s
}

// Metrics are a model's scores on labelled rows.
type Metrics struct {
	R2   float64 `json:"r2"`
	RMSE float64 `json:"rmse"`
	MAE  float64 `json:"mae"`
}

// Evaluate scores the model on rows x with targets y.
func (m *Model) Evaluate(x [][]float64, y []float64) Metrics {
	var mean float64
	for _, v := range y {
		mean += v
	}
	mean /= float64(len(y))
	var ssRes, ssTot, abs float64
	for i, row := range x {
		d := m.Predict(row) - y[i]
		ssRes += d * d
		abs += math.Abs(d)
		ssTot += (y[i] - mean) * (y[i] - mean)
	}
	r2 := 1.0
	if ssTot > 0 {
		r2 = 1 - ssRes/ssTot
	}
	return Metrics{R2: r2, RMSE: math.Sqrt(ssRes / float64(len(y))), MAE: abs / float64(len(y))}
}

// Save writes the model folder: MLmodel (the flavor and an input
// signature of double columns, which the router checks requests against)
// and model.json.
func (m *Model) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, DataFile), data, 0o644); err != nil {
		return err
	}
	type col struct {
		Type     string `json:"type"`
		Name     string `json:"name"`
		Required bool   `json:"required"`
	}
	sig := make([]col, len(m.Columns))
	for i, c := range m.Columns {
		sig[i] = col{"double", c, true}
	}
	sigJSON, err := json.Marshal(sig)
	if err != nil {
		return err
	}
	mlmodel := "flavors:\n  " + Flavor + ":\n    data: " + DataFile + "\nsignature:\n  inputs: '" +
		strings.ReplaceAll(string(sigJSON), "'", "''") + "'\n  outputs: '[{\"type\": \"double\", \"required\": true}]'\n"
	return os.WriteFile(filepath.Join(dir, "MLmodel"), []byte(mlmodel), 0o644)
}

// Load reads the coefficients file of a model folder; data is its path
// relative to dir ("" for DataFile).
func Load(dir, data string) (*Model, error) {
	if data == "" {
		data = DataFile
	}
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(data)))
	if err != nil {
		return nil, err
	}
	var m Model
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", data, err)
	}
	if len(m.Coef) == 0 || (len(m.Columns) > 0 && len(m.Columns) != len(m.Coef)) {
		return nil, fmt.Errorf("%s: %d columns for %d coefficients", data, len(m.Columns), len(m.Coef))
	}
	return &m, nil
}
