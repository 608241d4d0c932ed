package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf/drift"
)

// monitorComputeCommand computes one monitoring signal over files on
// this machine, without a server.
func (a *app) monitorComputeCommand() *cobra.Command {
	var ref, prod, features, thresholds []string
	var sig drift.Signal
	var importance, prodImportance, collected, collection, start, end string
	cmd := &cobra.Command{
		Use:   "compute",
		Short: "Compute a model monitoring signal (data drift, prediction drift, data quality, model performance, feature attribution drift) over local data",
		Long: `Computes Azure ML's monitoring metrics as Azure does, one result per
feature and metric, each judged against its threshold (Azure's defaults
when --threshold names none for a data type).

Data: CSV, JSONL (rows, or the data collector's records) and Parquet
files or folders; --collected reads a deployment's data collector folder
(modelDataCollector/<endpoint>/<deployment>) for the window instead of
--production.

  wharf monitor compute --reference train.parquet --production today/ \
    --signal data_drift --threshold numerical.normalized_wasserstein_distance=0.1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sig.Features = features
			var err error
			if sig.Thresholds, err = parseThresholds(thresholds); err != nil {
				return err
			}
			if sig.Importance, err = readImportance(importance); err != nil {
				return err
			}
			if sig.ProductionImportance, err = readImportance(prodImportance); err != nil {
				return err
			}
			var refData, prodData drift.Dataset
			if len(ref) > 0 {
				if refData, err = drift.OpenFiles(ref); err != nil {
					return err
				}
				defer drift.Close(refData)
			}
			switch {
			case collected != "":
				from, err1 := time.Parse(time.RFC3339, start)
				to, err2 := time.Parse(time.RFC3339, end)
				if err1 != nil || err2 != nil {
					return fmt.Errorf("--window-start and --window-end: want RFC 3339 times with --collected (got %q, %q)", start, end)
				}
				prodData, err = drift.OpenCollected(collected, from, to, collection)
			case len(prod) > 0:
				prodData, err = drift.OpenFiles(prod)
			default:
				return fmt.Errorf("give --production or --collected")
			}
			if err != nil {
				return err
			}
			defer drift.Close(prodData)
			res, err := drift.Evaluate(cmd.Context(), sig, refData, prodData)
			if err != nil {
				return err
			}
			return a.print(res)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&ref, "reference", nil, "reference data file or folder (repeatable)")
	f.StringArrayVar(&prod, "production", nil, "production data file or folder (repeatable)")
	f.StringVar(&collected, "collected", "", "a deployment's data collector folder, read for the window instead of --production")
	f.StringVar(&collection, "collection", "model_inputs", "the collection read with --collected (model_inputs, model_outputs)")
	f.StringVar(&start, "window-start", "", "with --collected: the window's start (RFC 3339, inclusive)")
	f.StringVar(&end, "window-end", "", "with --collected: the window's end (RFC 3339, exclusive)")
	f.StringVar(&sig.Type, "signal", drift.DataDrift, "data_drift, prediction_drift, data_quality, model_performance or feature_attribution_drift")
	f.StringSliceVar(&features, "features", nil, "comma-separated features (default: every column both datasets have)")
	f.IntVar(&sig.TopN, "top-n", 0, "the N features of highest importance (needs --importance)")
	f.StringVar(&importance, "importance", "", `JSON file of the reference's feature importances, {"feature": importance}`)
	f.StringVar(&prodImportance, "production-importance", "", "JSON file of the production data's feature importances (feature_attribution_drift)")
	f.StringArrayVar(&thresholds, "threshold", nil, "METRIC=VALUE, METRIC optionally qualified numerical. or categorical. (repeatable)")
	f.StringVar(&sig.Target, "target", "", "ground-truth column (model_performance)")
	f.StringVar(&sig.Prediction, "prediction", "", "prediction column (model_performance)")
	f.StringVar(&sig.MLTask, "task", "classification", "classification or regression (model_performance)")
	return cmd
}

// parseThresholds reads METRIC=VALUE pairs.
func parseThresholds(pairs []string) (map[string]float64, error) {
	out := map[string]float64{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if !ok || err != nil || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("--threshold %q: want METRIC=NUMBER", p)
		}
		out[strings.TrimSpace(k)] = x
	}
	return out, nil
}

// readImportance reads a JSON object of feature importances.
func readImportance(path string) (map[string]float64, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m map[string]float64
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: want a JSON object of feature: number: %v", path, err)
	}
	return m, nil
}
