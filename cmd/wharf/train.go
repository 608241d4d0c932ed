package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/linear"
)

// trainCommand holds Wharf's built-in trainers, which run as pipeline
// steps without Python and produce models the router serves natively.
func (a *app) trainCommand() *cobra.Command {
	train := &cobra.Command{Use: "train", Short: "Built-in trainers (run as pipeline steps; no Python needed)"}
	var data, test, target, features, output string
	lr := &cobra.Command{
		Use:   "linear-regression",
		Short: "Fit a least-squares linear model on CSV data; the model is served natively by online endpoints",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			header, rows, err := readCSVs(data)
			if err != nil {
				return err
			}
			cols, err := featureColumns(header, rows, target, features)
			if err != nil {
				return err
			}
			x, y, err := matrix(header, rows, cols, target)
			if err != nil {
				return fmt.Errorf("%s: %w", data, err)
			}
			m, err := linear.Fit(cols, x, y)
			if err != nil {
				return err
			}
			if err := m.Save(output); err != nil {
				return err
			}
			metrics := map[string]float64{}
			fit := m.Evaluate(x, y)
			metrics["training_r2"], metrics["training_rmse"], metrics["training_mae"] = fit.R2, fit.RMSE, fit.MAE
			if test != "" {
				th, trows, err := readCSVs(test)
				if err != nil {
					return err
				}
				tx, ty, err := matrix(th, trows, cols, target)
				if err != nil {
					return fmt.Errorf("%s: %w", test, err)
				}
				ev := m.Evaluate(tx, ty)
				metrics["r2"], metrics["rmse"], metrics["mae"] = ev.R2, ev.RMSE, ev.MAE
			}
			params := map[string]string{"model": "linear_regression", "target": target, "features": strings.Join(cols, ",")}
			if err := logToTracking(cmd.Context(), metrics, params); err != nil {
				fmt.Fprintf(a.stderr, "warning: metrics not logged to tracking: %v\n", err)
			}
			return a.print(map[string]any{"model_output": output, "columns": cols, "coef": m.Coef,
				"intercept": m.Intercept, "rows": len(rows), "metrics": metrics})
		},
	}
	f := lr.Flags()
	f.StringVar(&data, "train-data", "", "CSV file, or a folder of CSV files, with a header row")
	f.StringVar(&test, "test-data", "", "CSV file or folder to score the model on")
	f.StringVar(&target, "target", "", "the column to predict")
	f.StringVar(&features, "features", "", "comma-separated feature columns (default: every other numeric column)")
	f.StringVar(&output, "model-output", "", "folder to write the model to")
	for _, n := range []string{"train-data", "target", "model-output"} {
		_ = lr.MarkFlagRequired(n)
	}
	train.AddCommand(lr)
	return train
}

// readCSVs reads a CSV file, or every .csv file of a folder in name order,
// all with the same header.
func readCSVs(path string) ([]string, [][]string, error) {
	files := []string{path}
	if st, err := os.Stat(path); err != nil {
		return nil, nil, wharf.Errorf(wharf.EINVALID, "%s: %s", path, unwrapPathErr(err))
	} else if st.IsDir() {
		matches, _ := filepath.Glob(filepath.Join(path, "*.csv"))
		if len(matches) == 0 {
			return nil, nil, wharf.Errorf(wharf.EINVALID, "%s holds no .csv file", path)
		}
		sort.Strings(matches)
		files = matches
	}
	var header []string
	var rows [][]string
	for _, name := range files {
		fh, err := os.Open(name)
		if err != nil {
			return nil, nil, err
		}
		r := csv.NewReader(fh)
		h, err := r.Read()
		if err != nil {
			fh.Close()
			return nil, nil, wharf.Errorf(wharf.EINVALID, "%s: no header row: %v", name, err)
		}
		if header == nil {
			header = h
		} else if strings.Join(h, ",") != strings.Join(header, ",") {
			fh.Close()
			return nil, nil, wharf.Errorf(wharf.EINVALID, "%s: header differs from the first file's", name)
		}
		for {
			rec, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				fh.Close()
				return nil, nil, wharf.Errorf(wharf.EINVALID, "%s: %v", name, err)
			}
			rows = append(rows, rec)
		}
		fh.Close()
	}
	return header, rows, nil
}

// featureColumns picks the features: the named ones, or every column but
// the target whose values are all numbers.
func featureColumns(header []string, rows [][]string, target, features string) ([]string, error) {
	idx := map[string]int{}
	for i, h := range header {
		idx[h] = i
	}
	if _, ok := idx[target]; !ok {
		return nil, wharf.Errorf(wharf.EINVALID, "target column %q is not in the data (columns: %s)", target, strings.Join(header, ", "))
	}
	if features != "" {
		cols := strings.Split(features, ",")
		for _, c := range cols {
			if _, ok := idx[c]; !ok {
				return nil, wharf.Errorf(wharf.EINVALID, "feature column %q is not in the data", c)
			}
		}
		return cols, nil
	}
	var cols []string
	for i, h := range header {
		if h == target {
			continue
		}
		numeric := true
		for _, r := range rows {
			if _, err := strconv.ParseFloat(r[i], 64); err != nil {
				numeric = false
				break
			}
		}
		if numeric {
			cols = append(cols, h)
		}
	}
	if len(cols) == 0 {
		return nil, wharf.Errorf(wharf.EINVALID, "no numeric feature column besides %q", target)
	}
	return cols, nil
}

func matrix(header []string, rows [][]string, cols []string, target string) ([][]float64, []float64, error) {
	idx := map[string]int{}
	for i, h := range header {
		idx[h] = i
	}
	ti, ok := idx[target]
	if !ok {
		return nil, nil, fmt.Errorf("no column %q", target)
	}
	x := make([][]float64, len(rows))
	y := make([]float64, len(rows))
	for r, rec := range rows {
		row := make([]float64, len(cols))
		for j, c := range cols {
			ci, ok := idx[c]
			if !ok {
				return nil, nil, fmt.Errorf("no column %q", c)
			}
			v, err := strconv.ParseFloat(rec[ci], 64)
			if err != nil {
				return nil, nil, fmt.Errorf("row %d column %s: %q is not a number", r+2, c, rec[ci])
			}
			row[j] = v
		}
		v, err := strconv.ParseFloat(rec[ti], 64)
		if err != nil {
			return nil, nil, fmt.Errorf("row %d column %s: %q is not a number", r+2, target, rec[ti])
		}
		x[r], y[r] = row, v
	}
	return x, y, nil
}

// logToTracking logs metrics and params to the run a job step runs in,
// through the MLflow REST API, when the executor has set one up.
func logToTracking(ctx context.Context, metrics map[string]float64, params map[string]string) error {
	uri, run := os.Getenv("MLFLOW_TRACKING_URI"), os.Getenv("MLFLOW_RUN_ID")
	if uri == "" || run == "" || !strings.HasPrefix(uri, "http") {
		return nil
	}
	now := time.Now().UnixMilli()
	body := map[string]any{"run_id": run}
	var ms []map[string]any
	for k, v := range metrics {
		ms = append(ms, map[string]any{"key": k, "value": v, "timestamp": now, "step": 0})
	}
	var ps []map[string]string
	for k, v := range params {
		ps = append(ps, map[string]string{"key": k, "value": v})
	}
	body["metrics"], body["params"] = ms, ps
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(uri, "/")+"/api/2.0/mlflow/runs/log-batch", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if tok := os.Getenv("MLFLOW_TRACKING_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, msg)
	}
	return nil
}
