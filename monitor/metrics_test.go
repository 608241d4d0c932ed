package monitor

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/drift"
)

// TestMetricsExportRowCountsAndReplaceTheLastRun: a run's row counts are
// the wharf_monitor_rows gauge, its metrics the value, threshold and
// breached gauges; the next run of the monitor replaces every series the
// previous one set.
func TestMetricsExportRowCountsAndReplaceTheLastRun(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.observe("ws", "mon", nil, []wharf.MonitorResult{
		{Signal: "drift", Feature: "distance", Metric: drift.NormalizedWassersteinDistance, Value: 0.4, Threshold: 0.1, Passed: false},
		{Signal: "drift", Metric: drift.BaselineRowCount, Value: 120, Passed: true},
		{Signal: "drift", Metric: drift.TargetRowCount, Value: 480, Passed: true},
	})
	want := `
# HELP wharf_monitor_rows Rows of a model monitor signal's reference or production data at its last run (Azure's BaselineRowCount and TargetRowCount).
# TYPE wharf_monitor_rows gauge
wharf_monitor_rows{data="production",monitor="mon",signal="drift",workspace="ws"} 480
wharf_monitor_rows{data="reference",monitor="mon",signal="drift",workspace="ws"} 120
# HELP wharf_monitor_metric_breached 1 when a model monitor's metric breached its threshold at the last run, else 0.
# TYPE wharf_monitor_metric_breached gauge
wharf_monitor_metric_breached{feature="distance",metric="normalized_wasserstein_distance",monitor="mon",signal="drift",workspace="ws"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "wharf_monitor_rows", "wharf_monitor_metric_breached"); err != nil {
		t.Error(err)
	}
	m.observe("ws", "mon", nil, []wharf.MonitorResult{
		{Signal: "quality", Metric: drift.TargetRowCount, Value: 7, Passed: true},
	})
	want = `
# HELP wharf_monitor_rows Rows of a model monitor signal's reference or production data at its last run (Azure's BaselineRowCount and TargetRowCount).
# TYPE wharf_monitor_rows gauge
wharf_monitor_rows{data="production",monitor="mon",signal="quality",workspace="ws"} 7
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "wharf_monitor_rows", "wharf_monitor_metric_breached"); err != nil {
		t.Error(err)
	}
}
