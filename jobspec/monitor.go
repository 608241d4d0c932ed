package jobspec

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Monitor is a schedule's create_monitor: what a model monitor watches,
// which signals it computes against which thresholds, and whom it alerts.
// Parts the file leaves out hold Azure ML's defaults once loaded.
type Monitor struct {
	Compute MonitorCompute `json:"compute"`
	Target  MonitorTarget  `json:"monitoring_target"`
	// Signals are in file order; the out-of-box ones when the file names
	// none.
	Signals []*MonitorSignal `json:"monitoring_signals"`
	// Emails are alert_notification.emails; AzMonitoring is set for
	// alert_notification: azmonitoring, which Wharf logs only.
	Emails       []string `json:"emails,omitempty"`
	AzMonitoring bool     `json:"azmonitoring,omitempty"`
	// Webhooks receive each breach as a signed JSON POST.
	Webhooks []MonitorWebhook `json:"webhooks,omitempty"`
}

// MonitorCompute is the serverless Spark pool Azure ML runs a monitor on;
// Wharf runs monitors on its own compute and records what was asked.
type MonitorCompute struct {
	InstanceType   string `json:"instance_type"`
	RuntimeVersion string `json:"runtime_version,omitempty"`
}

// MonitorTarget is the model and deployment a monitor watches.
type MonitorTarget struct {
	MLTask string `json:"ml_task,omitempty"`
	// Endpoint and Deployment come from endpoint_deployment_id
	// (azureml:<endpoint>:<deployment>).
	Endpoint   string `json:"endpoint,omitempty"`
	Deployment string `json:"deployment,omitempty"`
	// Model is model_id as written (azureml:<name>:<version>).
	Model string `json:"model_id,omitempty"`
}

// MonitorWebhook is an address that receives alerts, and the workspace
// secret whose value signs them (X-Wharf-Signature: sha256=<HMAC>).
type MonitorWebhook struct {
	URL    string `json:"url"`
	Secret string `json:"secret,omitempty"`
}

// MonitorSignal is one monitoring signal.
type MonitorSignal struct {
	Name string `json:"name"`
	// Type is data_drift, prediction_drift, data_quality,
	// model_performance, feature_attribution_drift or custom.
	Type string `json:"type"`
	// Production is the data watched: one entry, or for feature
	// attribution drift the model inputs and outputs; empty means the
	// deployment's collected data of the signal's default context.
	Production []MonitorData `json:"production_data,omitempty"`
	// Reference is the baseline; nil means the training data in the
	// model's lineage, else past production data.
	Reference *MonitorData `json:"reference_data,omitempty"`
	// Features: AllFeatures, a list, or the TopN most important.
	AllFeatures bool     `json:"all_features,omitempty"`
	Features    []string `json:"features,omitempty"`
	TopN        int      `json:"top_n_feature_importance,omitempty"`
	// TopNDefault says TopN is Azure ML's default (features left out
	// with training reference data), not the file's.
	TopNDefault bool `json:"top_n_default,omitempty"`
	// Thresholds are metric thresholds by data type ("numerical",
	// "categorical"), or under "" for signals whose metrics are not per
	// data type (feature attribution drift, model performance, custom).
	Thresholds   map[string]map[string]float64 `json:"metric_thresholds"`
	AlertEnabled bool                          `json:"alert_enabled"`
	// ComponentID is a custom signal's component; CustomInputs its
	// input_data by input name.
	ComponentID  string                 `json:"component_id,omitempty"`
	CustomInputs map[string]MonitorData `json:"custom_inputs,omitempty"`
	// SegmentFeature and SegmentValues restrict the data to rows whose
	// feature holds one of the values.
	SegmentFeature string   `json:"segment_feature,omitempty"`
	SegmentValues  []string `json:"segment_values,omitempty"`
}

// MonitorData is a signal's production or reference data.
type MonitorData struct {
	// Path and Type are input_data (an asset reference or URI, and
	// uri_folder, uri_file or mltable); empty Path means collected data.
	Path string `json:"path,omitempty"`
	Type string `json:"type,omitempty"`
	// Context is data_context: model_inputs, model_outputs,
	// model_inputs_outputs, training, test, validation or ground_truth.
	Context string `json:"data_context,omitempty"`
	// LookbackSize and LookbackOffset are a rolling window, WindowStart
	// and WindowEnd a fixed one; all zero means the default window.
	LookbackSize   Duration  `json:"lookback_window_size,omitempty"`
	LookbackOffset Duration  `json:"lookback_window_offset,omitempty"`
	WindowStart    time.Time `json:"window_start,omitzero"`
	WindowEnd      time.Time `json:"window_end,omitzero"`
	// PreProcessing is the component that turns the data into a table.
	PreProcessing string `json:"pre_processing_component,omitempty"`
	TargetColumn  string `json:"target_column,omitempty"`
	// CorrelationColumn names the column joining production data to
	// ground truth (default correlationid).
	CorrelationColumn string `json:"correlation_id,omitempty"`
	PredictionColumn  string `json:"prediction_column,omitempty"`
}

// Monitor signal types.
const (
	SignalDataDrift          = "data_drift"
	SignalPredictionDrift    = "prediction_drift"
	SignalDataQuality        = "data_quality"
	SignalModelPerformance   = "model_performance"
	SignalFeatureAttribution = "feature_attribution_drift"
	SignalCustom             = "custom"
)

// Data types metric thresholds are given per.
const (
	Numerical   = "numerical"
	Categorical = "categorical"
)

// signalMetrics are the metric names each signal type's thresholds may
// name, per data type ("" for signals not split by data type).
var signalMetrics = map[string]map[string][]string{
	SignalDataDrift: {
		Numerical:   {"jensen_shannon_distance", "normalized_wasserstein_distance", "population_stability_index", "two_sample_kolmogorov_smirnov_test"},
		Categorical: {"jensen_shannon_distance", "pearsons_chi_squared_test", "population_stability_index"},
	},
	SignalDataQuality: {
		Numerical:   {"null_value_rate", "data_type_error_rate", "out_of_bounds_rate"},
		Categorical: {"null_value_rate", "data_type_error_rate", "out_of_bounds_rate"},
	},
	SignalFeatureAttribution: {"": {"normalized_discounted_cumulative_gain"}},
	SignalModelPerformance: {
		"classification": {"accuracy", "precision", "recall", "f1_score"},
		"regression":     {"mae", "mse", "rmse"},
	},
}

func init() { signalMetrics[SignalPredictionDrift] = signalMetrics[SignalDataDrift] }

// metricAliases are other spellings of a metric name that Azure's
// documentation prints.
var metricAliases = map[string]string{"chi_squared_test": "pearsons_chi_squared_test"}

// DefaultThresholds are the thresholds Azure ML's SDK sends for a signal
// type when its file names none for a data type.
func DefaultThresholds(signalType string) map[string]map[string]float64 {
	switch signalType {
	case SignalDataDrift, SignalPredictionDrift:
		return map[string]map[string]float64{Numerical: {"normalized_wasserstein_distance": 0.1}, Categorical: {"jensen_shannon_distance": 0.1}}
	case SignalDataQuality:
		q := func() map[string]float64 {
			return map[string]float64{"null_value_rate": 0, "data_type_error_rate": 0, "out_of_bounds_rate": 0}
		}
		return map[string]map[string]float64{Numerical: q(), Categorical: q()}
	case SignalFeatureAttribution:
		return map[string]map[string]float64{"": {"normalized_discounted_cumulative_gain": 0.9}}
	case SignalModelPerformance:
		return map[string]map[string]float64{"classification": {"accuracy": 0.9}, "regression": {"rmse": 1}}
	}
	return map[string]map[string]float64{}
}

// LowerIsWorse reports whether a metric breaches its threshold by falling
// below it (p-values, NDCG, accuracy, precision, recall, f1) rather than by
// rising above it, as Azure ML evaluates thresholds.
func LowerIsWorse(metric string) bool {
	switch metric {
	case "two_sample_kolmogorov_smirnov_test", "pearsons_chi_squared_test", "normalized_discounted_cumulative_gain",
		"accuracy", "precision", "recall", "f1_score":
		return true
	}
	return false
}

// sparkInstanceTypes are the serverless Spark sizes Azure ML offers.
var sparkInstanceTypes = []string{"standard_e4s_v3", "standard_e8s_v3", "standard_e16s_v3", "standard_e32s_v3", "standard_e64s_v3"}

type rawMonitor struct {
	Compute           *rawCompute `yaml:"compute"`
	MonitoringTarget  *rawTarget  `yaml:"monitoring_target"`
	MonitoringSignals yaml.Node   `yaml:"monitoring_signals"`
	AlertNotification yaml.Node   `yaml:"alert_notification"`
}

type rawCompute struct {
	InstanceType   string `yaml:"instance_type"`
	RuntimeVersion string `yaml:"runtime_version"`
}

type rawTarget struct {
	MLTask               string `yaml:"ml_task"`
	EndpointDeploymentID string `yaml:"endpoint_deployment_id"`
	ModelID              string `yaml:"model_id"`
}

type rawAlerts struct {
	Emails   []string         `yaml:"emails"`
	Webhooks []MonitorWebhook `yaml:"webhooks"`
}

type rawSignal struct {
	Type                    string                `yaml:"type"`
	ProductionData          yaml.Node             `yaml:"production_data"`
	ReferenceData           *yaml.Node            `yaml:"reference_data"`
	Features                yaml.Node             `yaml:"features"`
	MetricThresholds        yaml.Node             `yaml:"metric_thresholds"`
	AlertEnabled            *bool                 `yaml:"alert_enabled"`
	AlertNotification       *bool                 `yaml:"alert_notification"`
	ComponentID             string                `yaml:"component_id"`
	InputData               map[string]*yaml.Node `yaml:"input_data"`
	DataSegment             *rawMonitorSegment    `yaml:"data_segment"`
	FeatureTypeOverride     map[string]string     `yaml:"feature_type_override"`
	FeatureDataTypeOverride map[string]string     `yaml:"feature_data_type_override"`
	Properties              map[string]string     `yaml:"properties"`
}

type rawMonitorSegment struct {
	FeatureName   string   `yaml:"feature_name"`
	FeatureValues []string `yaml:"feature_values"`
}

type rawMonitorData struct {
	InputData              *rawMonitorInput   `yaml:"input_data"`
	DataContext            string             `yaml:"data_context"`
	DataWindow             *rawMonitorWindow  `yaml:"data_window"`
	PreProcessingComponent string             `yaml:"pre_processing_component"`
	DataColumnNames        *rawMonitorColumns `yaml:"data_column_names"`
	TargetColumnName       string             `yaml:"target_column_name"`
	// Older documents put the window's keys beside input_data.
	DataWindowSize string `yaml:"data_window_size"`
}

type rawMonitorInput struct {
	Path string `yaml:"path"`
	Type string `yaml:"type"`
	Mode string `yaml:"mode"`
}

type rawMonitorWindow struct {
	LookbackWindowSize   string `yaml:"lookback_window_size"`
	LookbackWindowOffset string `yaml:"lookback_window_offset"`
	WindowStart          string `yaml:"window_start"`
	WindowEnd            string `yaml:"window_end"`
	WindowStartDate      string `yaml:"window_start_date"`
	WindowEndDate        string `yaml:"window_end_date"`
}

type rawMonitorColumns struct {
	TargetColumn     string `yaml:"target_column"`
	CorrelationID    string `yaml:"correlation_id"`
	PredictionColumn string `yaml:"prediction"`
	PredictionProba  string `yaml:"prediction_probability"`
}

var endpointDeploymentRe = regexp.MustCompile(`^(?:azureml:)?([A-Za-z0-9][A-Za-z0-9-]*):([A-Za-z0-9][A-Za-z0-9_-]*)$`)

// monitor reads create_monitor at n and fills in Azure ML's defaults.
func (s scope) monitor(n *yaml.Node, field string) *Monitor {
	var raw rawMonitor
	if !s.decode(n, field, &raw) {
		return nil
	}
	m := &Monitor{}
	if raw.Compute == nil {
		s.fail(n, join(field, "compute"), "compute is required (instance_type: one of %s)", strings.Join(sparkInstanceTypes, ", "))
	} else {
		m.Compute = MonitorCompute{InstanceType: raw.Compute.InstanceType, RuntimeVersion: raw.Compute.RuntimeVersion}
		m.Compute.InstanceType = strings.ToLower(m.Compute.InstanceType)
		if !slices.Contains(sparkInstanceTypes, m.Compute.InstanceType) {
			s.fail(valueOf(valueOf(n, "compute"), "instance_type"), join(field, "compute.instance_type"),
				"instance_type must be one of %s, got %q", strings.Join(sparkInstanceTypes, ", "), raw.Compute.InstanceType)
		}
	}
	tn := valueOf(n, "monitoring_target")
	if raw.MonitoringTarget != nil {
		t := raw.MonitoringTarget
		m.Target.MLTask, m.Target.Model = t.MLTask, t.ModelID
		switch t.MLTask {
		case "", "classification", "regression":
		case "question_answering":
			s.fail(valueOf(tn, "ml_task"), join(field, "monitoring_target.ml_task"),
				"question_answering monitors (generation safety and quality, token usage) are not supported; use classification or regression")
		default:
			s.fail(valueOf(tn, "ml_task"), join(field, "monitoring_target.ml_task"), "ml_task must be classification or regression, got %q", t.MLTask)
		}
		if t.EndpointDeploymentID != "" {
			if g := endpointDeploymentRe.FindStringSubmatch(t.EndpointDeploymentID); g == nil {
				s.fail(valueOf(tn, "endpoint_deployment_id"), join(field, "monitoring_target.endpoint_deployment_id"),
					"endpoint_deployment_id must be azureml:<endpoint>:<deployment>, got %q", t.EndpointDeploymentID)
			} else {
				m.Target.Endpoint, m.Target.Deployment = g[1], g[2]
			}
		}
	}
	s.monitorAlerts(m, &raw.AlertNotification, join(field, "alert_notification"))
	sn := &raw.MonitoringSignals
	if sn.Kind == 0 || isNull(sn) {
		m.Signals = DefaultSignals()
	} else if deref(sn).Kind != yaml.MappingNode {
		s.fail(sn, join(field, "monitoring_signals"), "monitoring_signals must be a mapping of signal name to signal")
	} else {
		for _, e := range entries(deref(sn)) {
			if sig := s.signal(e.value, join(field, "monitoring_signals."+e.key.Value), e.key.Value, m); sig != nil {
				m.Signals = append(m.Signals, sig)
			}
		}
	}
	for _, sig := range m.Signals {
		if m.Target.Endpoint == "" && needsCollected(sig) {
			s.fail(n, join(field, "monitoring_target.endpoint_deployment_id"),
				"signal %s reads the deployment's collected data: monitoring_target.endpoint_deployment_id is required (azureml:<endpoint>:<deployment>)", sig.Name)
			break
		}
	}
	return m
}

// DefaultSignals are the out-of-box signals Azure ML fills in when a
// monitor names none: data drift, prediction drift and data quality over
// all features, with the default thresholds.
func DefaultSignals() []*MonitorSignal {
	mk := func(name, typ string) *MonitorSignal {
		return &MonitorSignal{Name: name, Type: typ, AllFeatures: true, Thresholds: DefaultThresholds(typ), AlertEnabled: true}
	}
	return []*MonitorSignal{mk("data-drift-signal", SignalDataDrift), mk("prediction-drift-signal", SignalPredictionDrift),
		mk("data-quality-signal", SignalDataQuality)}
}

// needsCollected reports whether a signal reads the deployment's
// collected data, having no production input of its own.
func needsCollected(sig *MonitorSignal) bool {
	if sig.Type == SignalCustom {
		for _, d := range sig.CustomInputs {
			if d.Path == "" {
				return true
			}
		}
		return false
	}
	if len(sig.Production) == 0 {
		return true
	}
	for _, d := range sig.Production {
		if d.Path == "" {
			return true
		}
	}
	return false
}

func (s scope) monitorAlerts(m *Monitor, n *yaml.Node, field string) {
	if n.Kind == 0 || isNull(n) {
		return
	}
	if d := deref(n); d.Kind == yaml.ScalarNode {
		if d.Value != "azmonitoring" {
			s.fail(d, field, "alert_notification must be azmonitoring or a mapping with emails, got %q", d.Value)
		}
		m.AzMonitoring = true
		return
	}
	var ra rawAlerts
	if !s.decode(n, field, &ra) {
		return
	}
	for i, e := range ra.Emails {
		if !strings.Contains(e, "@") || strings.ContainsAny(e, " \r\n<>") {
			s.fail(valueOf(deref(n), "emails"), fmt.Sprintf("%s.emails[%d]", field, i), "not an e-mail address: %q", e)
		}
	}
	for i, w := range ra.Webhooks {
		if !strings.HasPrefix(w.URL, "https://") && !strings.HasPrefix(w.URL, "http://") {
			s.fail(valueOf(deref(n), "webhooks"), fmt.Sprintf("%s.webhooks[%d].url", field, i), "webhook url must be http(s)://..., got %q", w.URL)
		}
	}
	m.Emails, m.Webhooks = ra.Emails, ra.Webhooks
}

func (s scope) signal(n *yaml.Node, field, name string, m *Monitor) *MonitorSignal {
	var raw rawSignal
	if !s.decode(n, field, &raw) {
		return nil
	}
	sig := &MonitorSignal{Name: name, Type: raw.Type, AlertEnabled: true, ComponentID: raw.ComponentID}
	if raw.AlertEnabled != nil {
		sig.AlertEnabled = *raw.AlertEnabled
	} else if raw.AlertNotification != nil {
		sig.AlertEnabled = *raw.AlertNotification
	}
	typeNode := valueOf(n, "type")
	switch raw.Type {
	case SignalDataDrift, SignalPredictionDrift, SignalDataQuality, SignalFeatureAttribution, SignalModelPerformance:
	case SignalCustom:
		if raw.ComponentID == "" {
			s.fail(n, join(field, "component_id"), "a custom signal needs component_id (azureml:<component>:<version>)")
		}
	case "":
		s.fail(n, join(field, "type"), "type is required: data_drift, prediction_drift, data_quality, model_performance, feature_attribution_drift or custom")
		return nil
	case "generation_safety_quality", "generation_token_statistics":
		s.fail(typeNode, join(field, "type"), "%s signals (for question answering) are not supported", raw.Type)
		return nil
	default:
		s.fail(typeNode, join(field, "type"), "unknown signal type %q: data_drift, prediction_drift, data_quality, model_performance, feature_attribution_drift or custom", raw.Type)
		return nil
	}
	if raw.Type != SignalCustom && raw.ComponentID != "" {
		s.fail(valueOf(n, "component_id"), join(field, "component_id"), "component_id applies to custom signals only")
	}
	if raw.Type == SignalCustom && len(raw.InputData) > 0 {
		sig.CustomInputs = map[string]MonitorData{}
		for k, v := range raw.InputData {
			if d := s.monitorData(v, join(field, "input_data."+k), raw.Type, false); d != nil {
				sig.CustomInputs[k] = *d
			}
		}
	}
	pn := &raw.ProductionData
	if pn.Kind != 0 && !isNull(pn) {
		if d := deref(pn); d.Kind == yaml.SequenceNode {
			if raw.Type != SignalFeatureAttribution {
				s.fail(d, join(field, "production_data"), "a list of production data applies to feature_attribution_drift only")
			}
			for i, item := range d.Content {
				if pd := s.monitorData(item, fmt.Sprintf("%s.production_data[%d]", field, i), raw.Type, false); pd != nil {
					sig.Production = append(sig.Production, *pd)
				}
			}
		} else if pd := s.monitorData(pn, join(field, "production_data"), raw.Type, false); pd != nil {
			sig.Production = []MonitorData{*pd}
		}
	}
	if raw.ReferenceData != nil && !isNull(raw.ReferenceData) {
		sig.Reference = s.monitorData(raw.ReferenceData, join(field, "reference_data"), raw.Type, true)
	}
	if raw.Type == SignalFeatureAttribution && (sig.Reference == nil || sig.Reference.Context != "training" || sig.Reference.TargetColumn == "") {
		s.fail(n, join(field, "reference_data"), "feature_attribution_drift needs reference_data with data_context: training and its target column (data_column_names.target_column)")
	}
	if raw.Type == SignalModelPerformance && m.Target.MLTask == "" {
		s.fail(n, join(field, "type"), "model_performance needs monitoring_target.ml_task (classification or regression)")
	}
	s.features(sig, &raw.Features, join(field, "features"))
	sig.Thresholds = s.thresholds(&raw.MetricThresholds, join(field, "metric_thresholds"), raw.Type, m.Target.MLTask)
	if raw.DataSegment != nil {
		sig.SegmentFeature, sig.SegmentValues = raw.DataSegment.FeatureName, raw.DataSegment.FeatureValues
	}
	return sig
}

func (s scope) features(sig *MonitorSignal, n *yaml.Node, field string) {
	if n.Kind == 0 || isNull(n) {
		// Azure ML's default: the ten most important features when the
		// reference is training data, else all of them.
		if sig.Reference != nil && sig.Reference.Context == "training" && sig.Type != SignalPredictionDrift && sig.Type != SignalCustom {
			sig.TopN, sig.TopNDefault = 10, true
		} else {
			sig.AllFeatures = true
		}
		return
	}
	d := deref(n)
	switch d.Kind {
	case yaml.ScalarNode:
		if d.Value != "all_features" {
			s.fail(d, field, "features must be all_features, a list of names or top_n_feature_importance: N, got %q", d.Value)
		}
		sig.AllFeatures = true
	case yaml.SequenceNode:
		var names []string
		if s.decode(d, field, &names) {
			sig.Features = names
		}
		if len(names) == 0 {
			s.fail(d, field, "features lists no feature")
		}
	case yaml.MappingNode:
		var top struct {
			TopN *int `yaml:"top_n_feature_importance"`
		}
		if !s.decode(d, field, &top) {
			return
		}
		if top.TopN == nil || *top.TopN < 1 {
			s.fail(d, join(field, "top_n_feature_importance"), "top_n_feature_importance must be a whole number of at least 1")
			return
		}
		sig.TopN = *top.TopN
	}
	if sig.TopN > 0 && (sig.Reference == nil || sig.Reference.TargetColumn == "") {
		s.fail(n, field, "top_n_feature_importance needs reference_data.data_column_names.target_column, to rank features by importance")
	}
}

// thresholds reads metric_thresholds, refusing metric names the signal
// type does not have, and fills each data type the file leaves out with
// Azure ML's default.
func (s scope) thresholds(n *yaml.Node, field, signalType, mlTask string) map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	allowed := signalMetrics[signalType]
	if n.Kind != 0 && !isNull(n) {
		d := deref(n)
		switch {
		case signalType == SignalCustom:
			var list []struct {
				MetricName string   `yaml:"metric_name"`
				Threshold  *float64 `yaml:"threshold"`
			}
			if s.decode(d, field, &list) {
				out[""] = map[string]float64{}
				for i, t := range list {
					if t.MetricName == "" || t.Threshold == nil {
						s.fail(d.Content[i], fmt.Sprintf("%s[%d]", field, i), "each custom threshold needs metric_name and threshold")
						continue
					}
					out[""][t.MetricName] = *t.Threshold
				}
			}
			return out
		case d.Kind != yaml.MappingNode:
			s.fail(d, field, "metric_thresholds must be a mapping")
			return out
		}
		for _, e := range entries(d) {
			key := e.key.Value
			if names, ok := allowed[key]; ok && deref(e.value).Kind == yaml.MappingNode {
				out[key] = s.metricValues(e.value, join(field, key), names)
				continue
			}
			if names, ok := allowed[""]; ok {
				// Flat thresholds: feature attribution drift.
				s.metricValue(out, "", e, join(field, key), names)
				continue
			}
			if signalType == SignalModelPerformance {
				// Flat thresholds for the monitor's task.
				names := allowed[mlTask]
				if names == nil {
					names = append(slices.Clone(allowed["classification"]), allowed["regression"]...)
				}
				task := mlTask
				if task == "" {
					task = "classification"
				}
				s.metricValue(out, task, e, join(field, key), names)
				continue
			}
			s.fail(e.key, join(field, key), "unknown key %q: %s thresholds are given under %s", key, signalType, strings.Join(sortedKeys(allowed), " and "))
		}
	}
	for kind, defaults := range DefaultThresholds(signalType) {
		if signalType == SignalModelPerformance && mlTask != "" && kind != mlTask {
			continue
		}
		if len(out[kind]) == 0 {
			out[kind] = defaults
		}
	}
	return out
}

func (s scope) metricValues(n *yaml.Node, field string, names []string) map[string]float64 {
	out := map[string]float64{}
	for _, e := range entries(deref(n)) {
		s.metricValue(map[string]map[string]float64{"": out}, "", e, join(field, e.key.Value), names)
	}
	return out
}

func (s scope) metricValue(out map[string]map[string]float64, kind string, e entry, field string, names []string) {
	name := e.key.Value
	if alias, ok := metricAliases[name]; ok {
		name = alias
	}
	if !slices.Contains(names, name) {
		s.fail(e.key, field, "unknown metric %q: expected one of %s", e.key.Value, strings.Join(names, ", "))
		return
	}
	v, err := strconv.ParseFloat(deref(e.value).Value, 64)
	if err != nil || deref(e.value).Kind != yaml.ScalarNode {
		s.fail(e.value, field, "threshold must be a number, got %q", deref(e.value).Value)
		return
	}
	if out[kind] == nil {
		out[kind] = map[string]float64{}
	}
	out[kind][name] = v
}

// contexts lists the data_context values each signal type accepts, for
// production and for reference data.
var contexts = map[string][2][]string{
	SignalDataDrift:          {{"model_inputs"}, {"model_inputs", "training", "test", "validation"}},
	SignalPredictionDrift:    {{"model_outputs"}, {"model_outputs", "model_inputs", "training", "test", "validation"}},
	SignalDataQuality:        {{"model_inputs", "model_outputs"}, {"model_inputs", "model_outputs", "training", "test", "validation"}},
	SignalFeatureAttribution: {{"model_inputs", "model_outputs", "model_inputs_outputs"}, {"training"}},
	SignalModelPerformance:   {{"model_outputs", "model_inputs_outputs"}, {"ground_truth", "validation", "test", "training"}},
}

func (s scope) monitorData(n *yaml.Node, field, signalType string, reference bool) *MonitorData {
	var raw rawMonitorData
	if !s.decode(n, field, &raw) {
		return nil
	}
	d := &MonitorData{Context: raw.DataContext, PreProcessing: raw.PreProcessingComponent, TargetColumn: raw.TargetColumnName}
	if raw.InputData != nil {
		d.Path, d.Type = raw.InputData.Path, raw.InputData.Type
		switch d.Type {
		case "", "uri_folder", "uri_file", "mltable":
		default:
			s.fail(valueOf(valueOf(n, "input_data"), "type"), join(field, "input_data.type"), "input_data.type must be uri_folder, uri_file or mltable, got %q", d.Type)
		}
		if d.Path == "" {
			s.fail(valueOf(n, "input_data"), join(field, "input_data.path"), "input_data.path is required")
		}
	}
	if c, ok := contexts[signalType]; ok && d.Context != "" {
		allowed := c[0]
		if reference {
			allowed = c[1]
		}
		if !slices.Contains(allowed, d.Context) {
			s.fail(valueOf(n, "data_context"), join(field, "data_context"), "data_context of %s %s data must be %s, got %q",
				signalType, map[bool]string{true: "reference", false: "production"}[reference], strings.Join(allowed, ", "), d.Context)
		}
	}
	if cn := raw.DataColumnNames; cn != nil {
		if cn.TargetColumn != "" {
			d.TargetColumn = cn.TargetColumn
		}
		d.CorrelationColumn, d.PredictionColumn = cn.CorrelationID, cn.PredictionColumn
	}
	if w := raw.DataWindow; w != nil {
		wn := valueOf(n, "data_window")
		for _, p := range []struct {
			key, text string
			dst       *Duration
		}{{"lookback_window_size", w.LookbackWindowSize, &d.LookbackSize}, {"lookback_window_offset", w.LookbackWindowOffset, &d.LookbackOffset}} {
			if p.text == "" {
				continue
			}
			v, err := ParseISODuration(p.text)
			if err != nil {
				s.fail(valueOf(wn, p.key), join(field, "data_window."+p.key), "%v", err)
			}
			*p.dst = v
		}
		for _, p := range []struct {
			key, text string
			dst       *time.Time
		}{{"window_start", w.WindowStart + w.WindowStartDate, &d.WindowStart}, {"window_end", w.WindowEnd + w.WindowEndDate, &d.WindowEnd}} {
			if p.text == "" {
				continue
			}
			t, err := parseScheduleTime(p.text, time.UTC)
			if err != nil {
				s.fail(wn, join(field, "data_window."+p.key), "%v", err)
			}
			*p.dst = t
		}
		if (d.LookbackSize != 0 || d.LookbackOffset != 0) && (!d.WindowStart.IsZero() || !d.WindowEnd.IsZero()) {
			s.fail(wn, join(field, "data_window"), "a data window is either rolling (lookback_window_size, lookback_window_offset) or fixed (window_start, window_end), not both")
		}
		if !d.WindowStart.IsZero() && !d.WindowEnd.IsZero() && !d.WindowEnd.After(d.WindowStart) {
			s.fail(wn, join(field, "data_window.window_end"), "window_end must be after window_start")
		}
	}
	return d
}

// Duration is an ISO 8601 duration (P7D, PT6H), kept as a length of time;
// years and months count 365 and 30 days.
type Duration time.Duration

var isoDurationRe = regexp.MustCompile(`^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// ParseISODuration reads an ISO 8601 duration such as P7D or PT1H30M.
func ParseISODuration(text string) (Duration, error) {
	g := isoDurationRe.FindStringSubmatch(strings.ToUpper(strings.TrimSpace(text)))
	if g == nil || text == "P" || strings.HasSuffix(strings.ToUpper(text), "T") {
		return 0, fmt.Errorf("invalid ISO 8601 duration %q (e.g. P7D, PT6H)", text)
	}
	units := []time.Duration{365 * 24 * time.Hour, 30 * 24 * time.Hour, 7 * 24 * time.Hour, 24 * time.Hour, time.Hour, time.Minute}
	var d time.Duration
	for i, u := range units {
		if g[i+1] != "" {
			n, _ := strconv.Atoi(g[i+1])
			d += time.Duration(n) * u
		}
	}
	if g[7] != "" {
		f, _ := strconv.ParseFloat(g[7], 64)
		d += time.Duration(f * float64(time.Second))
	}
	return Duration(d), nil
}
