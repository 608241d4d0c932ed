package monitor

import (
	"math"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/drift"
	"github.com/wharfml/wharf/jobspec"
)

// Metrics exports the last run of every monitor as Prometheus gauges,
// one series per signal, feature and metric: a monitor's own features
// bound them, and a run replaces what the monitor's previous run set.
type Metrics struct {
	value, threshold, breached *prometheus.GaugeVec
	// rows are the row counts of each signal's reference and
	// production data.
	rows *prometheus.GaugeVec

	mu   sync.Mutex
	last map[string][]prometheus.Labels // by workspace/monitor
}

// NewMetrics registers the monitor gauges on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	labels := []string{"workspace", "monitor", "signal", "feature", "metric"}
	m := &Metrics{
		value: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "wharf_monitor_metric_value",
			Help: "Value of a model monitor's metric at its last run (NaN when it could not be computed)."}, labels),
		threshold: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "wharf_monitor_metric_threshold",
			Help: "Threshold of a model monitor's metric."}, labels),
		breached: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "wharf_monitor_metric_breached",
			Help: "1 when a model monitor's metric breached its threshold at the last run, else 0."}, labels),
		rows: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "wharf_monitor_rows",
			Help: "Rows of a model monitor signal's reference or production data at its last run (Azure's BaselineRowCount and TargetRowCount)."},
			[]string{"workspace", "monitor", "signal", "data"}),
		last: map[string][]prometheus.Labels{},
	}
	reg.MustRegister(m.value, m.threshold, m.breached, m.rows)
	return m
}

func (m *Metrics) observe(workspace, monitor string, _ *jobspec.Monitor, results []wharf.MonitorResult) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := workspace + "/" + monitor
	for _, l := range m.last[key] {
		if _, ok := l["data"]; ok {
			m.rows.Delete(l)
			continue
		}
		m.value.Delete(l)
		m.threshold.Delete(l)
		m.breached.Delete(l)
	}
	var set []prometheus.Labels
	for _, r := range results {
		if isRowCount(r.Metric) {
			data := "production"
			if r.Metric == drift.BaselineRowCount {
				data = "reference"
			}
			l := prometheus.Labels{"workspace": workspace, "monitor": monitor, "signal": r.Signal, "data": data}
			m.rows.With(l).Set(r.Value)
			set = append(set, l)
			continue
		}
		l := prometheus.Labels{"workspace": workspace, "monitor": monitor, "signal": r.Signal, "feature": r.Feature, "metric": r.Metric}
		v := r.Value
		if math.IsInf(v, 0) {
			v = math.NaN()
		}
		m.value.With(l).Set(v)
		m.threshold.With(l).Set(r.Threshold)
		b := 0.0
		if !r.Passed {
			b = 1
		}
		m.breached.With(l).Set(b)
		set = append(set, l)
	}
	m.last[key] = set
}
