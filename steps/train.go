package steps

import (
	"context"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/linear"
)

// TrainConfig is one run of TrainLinearRegression
// (`wharf train linear-regression`).
type TrainConfig struct {
	TrainData string // CSV or Parquet file, or a folder of them
	TestData  string // optional: labelled data to score the model on
	Target    string
	// Features are the columns to fit on; empty means every other
	// numeric, non-constant column.
	Features    []string
	Alpha       float64 // ridge penalty; 0 is ordinary least squares
	Solver      string  // linear.SolverAuto (""), SolverCholesky or SolverQR
	ModelOutput string  // folder the model is written to
	Tracking    *Tracking
}

// TrainResult is the fitted model and how it scored.
type TrainResult struct {
	ModelOutput string    `json:"model_output"`
	Columns     []string  `json:"columns"`
	Coef        []float64 `json:"coef"`
	Intercept   float64   `json:"intercept"`
	Rows        int64     `json:"rows"`
	Solver      string    `json:"solver"`
	Dropped     []string  `json:"dropped_constant_columns"`
	// Metrics are training_r2, training_rmse, training_rows and
	// training_seconds, and with TestData r2, mse, rmse and mae.
	Metrics map[string]float64 `json:"metrics"`
}

// TrainLinearRegression fits a linear (or ridge) regression on the
// training data, streaming, writes it as a Wharf linear model (served
// natively by endpoints), scores it on the test data when there is some,
// and logs the metrics and parameters to the step's run. Warnings go to
// log.
func TrainLinearRegression(ctx context.Context, cfg TrainConfig, log io.Writer) (*TrainResult, error) {
	opt := linear.TrainOptions{Target: cfg.Target, Features: cfg.Features, Alpha: cfg.Alpha, Solver: cfg.Solver}
	start := time.Now()
	m, rep, err := linear.Train(OpenTable(cfg.TrainData), opt)
	if err != nil {
		return nil, wharf.Errorf(wharf.EINVALID, "%s: %v", cfg.TrainData, err)
	}
	if err := m.Save(cfg.ModelOutput); err != nil {
		return nil, err
	}
	metrics := map[string]float64{"training_r2": rep.Fitted.R2, "training_rmse": rep.Fitted.RMSE,
		"training_rows": float64(rep.Rows), "training_seconds": time.Since(start).Seconds()}
	if cfg.TestData != "" {
		sc, err := ScoreTable(m, cfg.TestData, cfg.Target, nil)
		if err != nil {
			return nil, err
		}
		metrics["r2"], metrics["mse"], metrics["rmse"], metrics["mae"] = sc.R2, sc.MSE, sc.RMSE, sc.MAE
	}
	params := map[string]string{"model": "linear_regression", "target": cfg.Target, "features": strings.Join(m.Columns, ","),
		"alpha": strconv.FormatFloat(cfg.Alpha, 'g', -1, 64), "solver": rep.Solver}
	cfg.Tracking.logOrWarn(ctx, orDiscard(log), "metrics not logged to tracking", metrics, params)
	return &TrainResult{ModelOutput: cfg.ModelOutput, Columns: m.Columns, Coef: m.Coef, Intercept: m.Intercept,
		Rows: rep.Rows, Solver: rep.Solver, Dropped: rep.Dropped, Metrics: metrics}, nil
}
