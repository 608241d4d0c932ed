package drift

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// Metric names, as Azure's YAML spells them.
const (
	JensenShannonDistance         = "jensen_shannon_distance"
	NormalizedWassersteinDistance = "normalized_wasserstein_distance"
	PopulationStabilityIndex      = "population_stability_index"
	TwoSampleKolmogorovSmirnov    = "two_sample_kolmogorov_smirnov_test"
	PearsonsChiSquaredTest        = "pearsons_chi_squared_test"
	NullValueRate                 = "null_value_rate"
	DataTypeErrorRate             = "data_type_error_rate"
	OutOfBoundsRate               = "out_of_bounds_rate"
	NormalizedDCG                 = "normalized_discounted_cumulative_gain"
	Accuracy                      = "accuracy"
	Precision                     = "precision"
	Recall                        = "recall"
	F1Score                       = "f1_score"
	MAE                           = "mae"
	MSE                           = "mse"
	RMSE                          = "rmse"
)

// Row count metrics, as Azure's monitoring components name them: how
// many rows of the reference (baseline) and production (target) data a
// signal read. They have no threshold and always pass.
const (
	BaselineRowCount = "BaselineRowCount"
	TargetRowCount   = "TargetRowCount"
)

// RowCounts are the row count results of a signal over reference and
// production; a nil dataset has no result.
func RowCounts(reference, production Dataset) []Result {
	var out []Result
	for _, d := range []struct {
		metric string
		data   Dataset
	}{{BaselineRowCount, reference}, {TargetRowCount, production}} {
		if d.data != nil {
			out = append(out, Result{Metric: d.metric, Value: float64(d.data.Rows()), Threshold: math.NaN(), Passed: true})
		}
	}
	return out
}

// metricAliases are other spellings of metric names that Azure's
// documents or REST API use.
var metricAliases = map[string]string{
	"chi_squared_test":        PearsonsChiSquaredTest,
	"mean_absolute_error":     MAE,
	"mean_squared_error":      MSE,
	"root_mean_squared_error": RMSE,
}

// lowerIsWorse are the metrics whose breach is a value below the
// threshold (p-values and scores); every other metric breaches above it.
var lowerIsWorse = map[string]bool{
	TwoSampleKolmogorovSmirnov: true, PearsonsChiSquaredTest: true, NormalizedDCG: true,
	Accuracy: true, Precision: true, Recall: true, F1Score: true,
}

// metricSet is the metrics a signal type offers for a data type, in the
// order results are reported, and Azure's defaults when none is named.
type metricSet struct {
	names    []string
	defaults map[string]float64
}

// signalMetrics lists, per signal type, the metric sets of numerical and
// categorical features (one set for signals that have no data types).
func signalMetrics(signal, task string) (num, cat metricSet, err error) {
	switch signal {
	case DataDrift, PredictionDrift:
		num = metricSet{[]string{JensenShannonDistance, NormalizedWassersteinDistance, PopulationStabilityIndex, TwoSampleKolmogorovSmirnov},
			map[string]float64{NormalizedWassersteinDistance: 0.1}}
		cat = metricSet{[]string{JensenShannonDistance, PearsonsChiSquaredTest, PopulationStabilityIndex},
			map[string]float64{JensenShannonDistance: 0.1}}
	case DataQuality:
		q := metricSet{[]string{NullValueRate, DataTypeErrorRate, OutOfBoundsRate},
			map[string]float64{NullValueRate: 0, DataTypeErrorRate: 0, OutOfBoundsRate: 0}}
		num, cat = q, q
	case FeatureAttributionDrift:
		num = metricSet{[]string{NormalizedDCG}, map[string]float64{NormalizedDCG: 0.9}}
	case ModelPerformance:
		switch task {
		case "classification":
			num = metricSet{[]string{Accuracy, Precision, Recall, F1Score}, map[string]float64{Accuracy: 0.9}}
		case "regression":
			num = metricSet{[]string{MAE, MSE, RMSE}, map[string]float64{MAE: math.NaN(), MSE: math.NaN(), RMSE: math.NaN()}}
		default:
			err = fmt.Errorf("model_performance: ml_task %q: want classification or regression", task)
		}
	default:
		err = fmt.Errorf("signal type %q: want data_drift, prediction_drift, data_quality, model_performance or feature_attribution_drift", signal)
	}
	return num, cat, err
}

// chosen is a metric to compute with its threshold.
type chosen struct {
	name      string
	threshold float64
}

// chooseMetrics resolves a signal's thresholds into the metrics to
// compute per data type.
func chooseMetrics(s Signal) (num, cat []chosen, err error) {
	numSet, catSet, err := signalMetrics(s.Type, s.MLTask)
	if err != nil {
		return nil, nil, err
	}
	named := [2]map[string]float64{{}, {}}
	keys := make([]string, 0, len(s.Thresholds))
	for k := range s.Thresholds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		v := s.Thresholds[key]
		if math.IsNaN(v) {
			return nil, nil, fmt.Errorf("%s: threshold %s is not a number", s.Type, key)
		}
		kinds := []int{0, 1}
		name := key
		if q, rest, ok := strings.Cut(key, "."); ok {
			switch q {
			case "numerical":
				kinds = []int{0}
			case "categorical":
				kinds = []int{1}
			default:
				return nil, nil, fmt.Errorf("%s: threshold %s: the qualifier must be numerical or categorical", s.Type, key)
			}
			name = rest
		}
		if a, ok := metricAliases[name]; ok {
			name = a
		}
		found := false
		for _, k := range kinds {
			set := numSet
			if k == 1 {
				set = catSet
			}
			if slices.Contains(set.names, name) {
				named[k][name] = v
				found = true
			}
		}
		if !found {
			all := append(append([]string(nil), numSet.names...), catSet.names...)
			slices.Sort(all)
			all = slices.Compact(all)
			return nil, nil, fmt.Errorf("%s: unknown metric %s (known: %s)", s.Type, key, strings.Join(all, ", "))
		}
	}
	pick := func(set metricSet, named map[string]float64) []chosen {
		src := named
		if len(src) == 0 {
			src = set.defaults
		}
		var out []chosen
		for _, n := range set.names {
			if t, ok := src[n]; ok {
				out = append(out, chosen{n, t})
			}
		}
		return out
	}
	return pick(numSet, named[0]), pick(catSet, named[1]), nil
}

// result makes a Result, judging it against its threshold.
func result(feature, dataType string, m chosen, value float64, detail string) Result {
	r := Result{Feature: feature, DataType: dataType, Metric: m.name, Value: value, Threshold: m.threshold, Direction: HigherIsWorse, Detail: detail}
	if lowerIsWorse[m.name] {
		r.Direction = LowerIsWorse
	}
	switch {
	case math.IsNaN(value) || math.IsNaN(m.threshold):
		r.Passed = true
	case r.Direction == LowerIsWorse:
		r.Passed = !(value < m.threshold)
	default:
		r.Passed = !(value > m.threshold)
	}
	return r
}

// notComputed is a Result for a metric that could not be computed.
func notComputed(feature, dataType string, m chosen, detail string) Result {
	r := result(feature, dataType, m, 0, detail)
	r.Passed = true
	return r
}

// isIDColumn tells the columns that identify rows rather than describe
// them, which "all features" leaves out.
func isIDColumn(name string) bool {
	return strings.EqualFold(name, "correlationid")
}

// selectFeatures picks the signal's features among the columns both
// datasets have, with the reference's kinds.
func selectFeatures(s Signal, ref, prod Dataset) ([]Column, error) {
	prodCols := map[string]bool{}
	var prodNames []string
	for _, c := range prod.Columns() {
		prodCols[c.Name] = true
		prodNames = append(prodNames, c.Name)
	}
	refCols := map[string]Column{}
	var common []Column
	for _, c := range ref.Columns() {
		refCols[c.Name] = c
		if prodCols[c.Name] {
			common = append(common, c)
		}
	}
	switch {
	case len(s.Features) > 0:
		var out []Column
		for _, f := range s.Features {
			c, inRef := refCols[f]
			if !inRef {
				return nil, fmt.Errorf("%s: feature %s is not in the reference data", s.Type, f)
			}
			if !prodCols[f] {
				return nil, fmt.Errorf("%s: feature %s is not in the production data (it has %s)", s.Type, f, strings.Join(prodNames, ", "))
			}
			out = append(out, c)
		}
		return out, nil
	case s.TopN > 0:
		if len(s.Importance) == 0 {
			return nil, fmt.Errorf("%s: top_n_feature_importance %d needs feature importances", s.Type, s.TopN)
		}
		var ranked []Column
		for _, c := range common {
			if _, ok := s.Importance[c.Name]; ok && c.Name != s.Target {
				ranked = append(ranked, c)
			}
		}
		sort.SliceStable(ranked, func(i, j int) bool {
			a, b := s.Importance[ranked[i].Name], s.Importance[ranked[j].Name]
			if a != b {
				return a > b
			}
			return ranked[i].Name < ranked[j].Name
		})
		if len(ranked) > s.TopN {
			ranked = ranked[:s.TopN]
		}
		return ranked, nil
	}
	var out []Column
	for _, c := range common {
		if c.Name != s.Target && !isIDColumn(c.Name) {
			out = append(out, c)
		}
	}
	return out, nil
}
