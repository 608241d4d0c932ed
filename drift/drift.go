// Package drift computes Azure ML's model monitoring metrics (data drift,
// prediction drift, data quality, model performance and feature
// attribution drift) over tabular data read a column at a time, in
// memory that does not grow with the number of rows.
//
// Every metric is computed as Azure's Spark components compute it, and
// checked against scipy and numpy on the same data:
//
//   - Rows holding a null (or NaN, or a value that is not of the
//     column's type) in any selected feature are dropped from both
//     datasets before drift is computed, as Azure's dropna() does.
//   - Numerical histograms (Jensen-Shannon, PSI) share ceil(log2(n)+1)
//     equal-width bins over [min, max] of both datasets, n being the row
//     count of the smaller one; a single bin when min == max.
//   - PSI adds 1 to every bin or category count and divides by the
//     dataset's row count.
//   - Normalized Wasserstein is scipy's wasserstein_distance on the raw
//     values divided by max(sample stddev of the reference, 0.001).
//   - The two-sample Kolmogorov-Smirnov test and Pearson's chi-squared
//     test report p-values; KS is computed only when both datasets have
//     fewer than 10,000 rows, as in Azure (otherwise the Result carries a
//     Detail and is not a breach).
//
// # Exact results in bounded memory
//
// Wasserstein and KS need the exact distribution. Each numerical column
// is sorted: up to ChunkValues values in memory (a bucket sort), and
// beyond that in sorted runs written to temporary files and merged, so a
// column of 100 M rows is computed exactly with a fixed amount of memory
// (two chunks per column in flight) plus 1 bit per row for the rows
// dropped for a null, kept only when some row has one. Histograms,
// Wasserstein and the KS statistic all come from one merge of the two
// sorted columns. Categorical counts are held one entry per distinct
// value.
//
// # Signals
//
// data_drift and prediction_drift compare every selected feature (the
// same code: prediction drift's datasets are the model outputs).
// data_quality gives, per feature, the share of production rows that are
// null, of another type than the reference's column, or outside the
// reference's [min, max] (numbers) or set of values (categories).
// model_performance reads the Target and Prediction columns of the
// production data: classification accuracy, precision, recall and f1_score
// as scikit-learn computes them (binary for two labels, the positive one
// being "1", "true" or "yes" when present, else the last in order; macro
// averages for more), regression mae, mse and rmse.
// feature_attribution_drift is scikit-learn's ndcg_score of the
// production importances against the reference's. The last two give Results whose Feature and
// DataType are empty.
//
// # Datasets
//
// OpenFiles reads Parquet in place, one column at a time, and reads CSV
// and JSONL once into one temporary file per column, so that each column
// is then read alone; Close removes those files. OpenCollected reads the
// data collector's JSONL for a time window the same way.
//
// # Refinements to the contract
//
// Thresholds keys may be qualified by data type, "numerical.<metric>" or
// "categorical.<metric>", since Azure's YAML sets thresholds per type; an
// unqualified key applies to both types that have the metric. Every
// metric named for a type is computed (Azure's SDK sends only the first);
// a type with none named gets Azure's default. "chi_squared_test" is
// accepted for "pearsons_chi_squared_test", and the long regression names
// (mean_absolute_error...) for mae, mse and rmse.
//
// Signal.ProductionImportance carries the production ranking that
// feature_attribution_drift compares with Signal.Importance.
//
// A Result with a non-empty Detail was not computed (or carries a note):
// its Value is 0 and it is never a breach when not computed. A Result
// whose Threshold is NaN has no threshold (regression metrics with none
// named) and is never a breach; it is marshalled to JSON as null.
package drift

import (
	"context"
	"encoding/json"
	"errors"
	"math"
)

// Kind is how a column is compared: as numbers or as categories.
type Kind int

// The kinds of column.
const (
	Numerical Kind = iota
	Categorical
)

// String names the kind as Azure's metric_thresholds keys do.
func (k Kind) String() string {
	if k == Categorical {
		return "categorical"
	}
	return "numerical"
}

// The storage types of a column, as Spark would infer them; a value of
// another type in a column counts toward data_type_error_rate.
const (
	TypeInteger = "integer"
	TypeDouble  = "double"
	TypeString  = "string"
	TypeBoolean = "boolean"
)

// Column is one column of a Dataset.
type Column struct {
	Name string
	// Kind is inferred as Azure infers it: doubles are numerical,
	// strings and booleans categorical, integers categorical when fewer
	// than 5% of the rows hold distinct values.
	Kind Kind
	// Type is the storage type: TypeInteger, TypeDouble, TypeString or
	// TypeBoolean.
	Type string
}

// Floats is a batch of one column's values read as numbers, in row order.
type Floats struct {
	// Values holds the numbers; NaN where the value is missing.
	Values []float64
	// Invalid marks the values that are present but not numbers (also
	// NaN in Values); nil when there is none in the batch.
	Invalid []bool
}

// Strings is a batch of one column's values read as text, in row order.
type Strings struct {
	Values []string
	// Null marks the missing values; nil when there is none in the batch.
	Null []bool
}

// Dataset is tabular data that can be read one column at a time.
type Dataset interface {
	// Columns names the columns with their kinds, in order.
	Columns() []Column
	// Rows is the number of rows.
	Rows() int64
	// ScanFloat streams a column's values as numbers, in row order, a
	// batch at a time. A batch is valid only during the call.
	ScanFloat(ctx context.Context, column string, fn func(Floats) error) error
	// ScanString streams a column's values as text (numbers in Go's
	// shortest form), in row order, a batch at a time. A batch is valid
	// only during the call.
	ScanString(ctx context.Context, column string, fn func(Strings) error) error
}

// ErrEmptyWindow is the error (wrapped) when the production data has no
// rows: there is nothing to compare.
var ErrEmptyWindow = errors.New("the production window holds no rows")

// Signal types.
const (
	DataDrift               = "data_drift"
	PredictionDrift         = "prediction_drift"
	DataQuality             = "data_quality"
	ModelPerformance        = "model_performance"
	FeatureAttributionDrift = "feature_attribution_drift"
)

// Signal says what to compute.
type Signal struct {
	// Type is data_drift, prediction_drift, data_quality,
	// model_performance or feature_attribution_drift.
	Type string
	// Features selects the columns; nil means every column the two
	// datasets share (but Target and correlationid). With TopN > 0, the
	// TopN columns of highest Importance.
	Features []string
	TopN     int
	// Importance is each feature's importance in the reference
	// (training) data: for TopN, and the reference ranking of
	// feature_attribution_drift.
	Importance map[string]float64
	// ProductionImportance is each feature's importance in the
	// production data, for feature_attribution_drift.
	ProductionImportance map[string]float64
	// Thresholds maps an Azure metric name (optionally qualified
	// "numerical." or "categorical.") to its threshold; a data type with
	// no metric named gets Azure's defaults.
	Thresholds map[string]float64
	// Target and Prediction name the ground-truth and prediction columns
	// of the production data for model_performance (joined by
	// correlationid beforehand).
	Target, Prediction string
	// MLTask is classification or regression.
	MLTask string
}

// Directions of a metric: which side of the threshold is a breach.
const (
	HigherIsWorse = "higher_is_worse"
	LowerIsWorse  = "lower_is_worse"
)

// Result is one metric of one feature.
type Result struct {
	Feature   string  `json:"feature"`
	DataType  string  `json:"data_type"`
	Metric    string  `json:"metric"`
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	Direction string  `json:"direction"`
	Passed    bool    `json:"passed"`
	// Detail says why a metric was not computed, or notes something
	// about its value.
	Detail string `json:"detail,omitempty"`
}

// MarshalJSON writes a NaN or infinite value or threshold as null, which
// JSON has no number for.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	type out struct {
		plain
		Value     *float64 `json:"value"`
		Threshold *float64 `json:"threshold"`
	}
	finite := func(v float64) *float64 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return &v
	}
	return json.Marshal(out{plain: plain(r), Value: finite(r.Value), Threshold: finite(r.Threshold)})
}
