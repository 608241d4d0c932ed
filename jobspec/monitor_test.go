package jobspec

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func loadMonitor(t *testing.T, file string) *Schedule {
	t.Helper()
	sc, err := LoadSchedule("testdata/monitors/"+file, nil, testResolver())
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if sc.Monitor == nil || sc.Job != nil {
		t.Fatalf("%s: not read as a monitor: %+v", file, sc)
	}
	return sc
}

func TestMonitorOutOfBox(t *testing.T) {
	sc := loadMonitor(t, "out-of-box-monitoring.yaml")
	m := sc.Monitor
	if sc.Name != "credit_default_model_monitoring" || sc.Trigger.Frequency != "day" || !reflect.DeepEqual(sc.Trigger.Pattern.Hours, []int{3}) {
		t.Errorf("schedule = %+v trigger %+v", sc, sc.Trigger)
	}
	if m.Target != (MonitorTarget{MLTask: "classification", Endpoint: "credit-default", Deployment: "main"}) {
		t.Errorf("target = %+v", m.Target)
	}
	if m.Compute.InstanceType != "standard_e4s_v3" || m.Compute.RuntimeVersion != "3.4" {
		t.Errorf("compute = %+v", m.Compute)
	}
	if !reflect.DeepEqual(m.Emails, []string{"abc@example.com", "def@example.com"}) {
		t.Errorf("emails = %v", m.Emails)
	}
	var names []string
	for _, s := range m.Signals {
		names = append(names, s.Name+"="+s.Type)
		if !s.AllFeatures || !s.AlertEnabled || len(s.Production) != 0 || s.Reference != nil {
			t.Errorf("default signal %s = %+v", s.Name, s)
		}
	}
	want := []string{"data-drift-signal=data_drift", "prediction-drift-signal=prediction_drift", "data-quality-signal=data_quality"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("signals = %v, want %v", names, want)
	}
	if got := m.Signals[0].Thresholds; got[Numerical]["normalized_wasserstein_distance"] != 0.1 || got[Categorical]["jensen_shannon_distance"] != 0.1 {
		t.Errorf("default drift thresholds = %v", got)
	}
	if got := m.Signals[2].Thresholds[Numerical]; len(got) != 3 || got["null_value_rate"] != 0 {
		t.Errorf("default quality thresholds = %v", got)
	}
	// The monitor is stored as JSON and read back by the server.
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back Monitor
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(&back, m) {
		t.Errorf("round trip: %v\n got %+v\nwant %+v", err, back, m)
	}
}

func TestMonitorAdvanced(t *testing.T) {
	m := loadMonitor(t, "advanced-model-monitoring.yaml").Monitor
	if len(m.Signals) != 3 {
		t.Fatalf("signals = %d", len(m.Signals))
	}
	drift, quality, fad := m.Signals[0], m.Signals[1], m.Signals[2]
	if drift.Name != "advanced_data_drift" || drift.TopN != 10 || drift.Reference.TargetColumn != "DEFAULT_NEXT_MONTH" ||
		drift.Reference.Path != "azureml:credit-reference:1" || drift.Reference.Type != "mltable" || drift.Reference.Context != "training" {
		t.Errorf("drift = %+v ref %+v", drift, drift.Reference)
	}
	wantDrift := map[string]map[string]float64{Numerical: {"jensen_shannon_distance": 0.01}, Categorical: {"pearsons_chi_squared_test": 0.02}}
	if !reflect.DeepEqual(drift.Thresholds, wantDrift) {
		t.Errorf("drift thresholds = %v", drift.Thresholds)
	}
	if !reflect.DeepEqual(quality.Features, []string{"SEX", "EDUCATION"}) || quality.Thresholds[Numerical]["null_value_rate"] != 0.05 ||
		quality.Thresholds[Categorical]["out_of_bounds_rate"] != 0.03 {
		t.Errorf("quality = %+v", quality)
	}
	// The file's top_n_feature_importance, and Azure's default when
	// features are left out with training data.
	if drift.TopNDefault || fad.TopN != 10 || !fad.TopNDefault {
		t.Errorf("top N: drift %d (default %v), feature attribution %d (default %v)", drift.TopN, drift.TopNDefault, fad.TopN, fad.TopNDefault)
	}
	if fad.Type != SignalFeatureAttribution || fad.Reference.TargetColumn != "DEFAULT_NEXT_MONTH" || fad.Thresholds[""]["normalized_discounted_cumulative_gain"] != 0.9 {
		t.Errorf("feature attribution = %+v", fad)
	}
}

func TestMonitorCollectedData(t *testing.T) {
	m := loadMonitor(t, "model-monitoring-with-collected-data.yaml").Monitor
	drift, pred := m.Signals[0], m.Signals[1]
	if len(drift.Production) != 1 || drift.Production[0].PreProcessing != "azureml:production_data_preprocessing:1.0.0" ||
		drift.Production[0].Type != "uri_folder" || drift.Production[0].Context != "model_inputs" || drift.TopN != 20 || !drift.AlertEnabled {
		t.Errorf("drift = %+v", drift)
	}
	if pred.Reference.Context != "validation" || !pred.AllFeatures || pred.Thresholds[Categorical]["pearsons_chi_squared_test"] != 0.02 ||
		pred.Thresholds[Numerical]["normalized_wasserstein_distance"] != 0.1 {
		t.Errorf("prediction drift = %+v thresholds %v", pred, pred.Thresholds)
	}
}

func TestMonitorCustom(t *testing.T) {
	m := loadMonitor(t, "custom-monitoring.yaml").Monitor
	c := m.Signals[0]
	if c.Type != SignalCustom || c.ComponentID != "azureml:my_custom_signal:1.0.0" || c.Thresholds[""]["std_deviation"] != 2 {
		t.Fatalf("custom = %+v", c)
	}
	in := c.CustomInputs["production_data"]
	if in.LookbackSize != Duration(30*24*time.Hour) || in.LookbackOffset != Duration(7*24*time.Hour) || in.PreProcessing != "azureml:custom_preprocessor:1.0.0" {
		t.Errorf("custom input = %+v", in)
	}
}

func TestMonitorErrors(t *testing.T) {
	_, err := LoadSchedule("testdata/monitors/bad-metric.yaml", nil, testResolver())
	checkErrors(t, err, []string{
		`testdata/monitors/bad-metric.yaml:15:11: field create_monitor.monitoring_signals.drift.metric_thresholds.numerical.jensen_shannon_distanse: unknown metric "jensen_shannon_distanse"`,
		`testdata/monitors/bad-metric.yaml:17:11: field create_monitor.monitoring_signals.drift.metric_thresholds.categorical.normalized_wasserstein_distance: unknown metric`,
		`testdata/monitors/bad-metric.yaml:21:23: field create_monitor.monitoring_signals.quality.production_data.data_context: data_context of data_quality production data must be model_inputs, model_outputs`,
		`testdata/monitors/bad-metric.yaml:24:7: field create_monitor.monitoring_signals.misplaced.data_window: unknown field`,
	})
	_, err = LoadSchedule("testdata/monitors/bad-target.yaml", nil, testResolver())
	checkErrors(t, err, []string{
		`testdata/monitors/bad-target.yaml:7:20: field create_monitor.compute.instance_type: instance_type must be one of standard_e4s_v3`,
		`testdata/monitors/bad-target.yaml:11:13: field create_monitor.alert_notification.emails[0]: not an e-mail address: "nobody"`,
		`testdata/monitors/bad-target.yaml:6:3: field create_monitor.monitoring_target.endpoint_deployment_id: signal data-drift-signal reads the deployment's collected data`,
	})
}

func TestParseISODuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"P7D": 7 * 24 * time.Hour, "PT6H": 6 * time.Hour, "P1W": 7 * 24 * time.Hour,
		"P1DT12H": 36 * time.Hour, "PT30M": 30 * time.Minute, "P0D": 0} {
		got, err := ParseISODuration(in)
		if err != nil || time.Duration(got) != want {
			t.Errorf("%s = %v, %v; want %v", in, time.Duration(got), err, want)
		}
	}
	for _, bad := range []string{"7D", "P", "PT", "P1H", "seven days"} {
		if _, err := ParseISODuration(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
