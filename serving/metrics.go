package serving

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the data plane's Prometheus series, per endpoint and
// deployment.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inflight *prometheus.GaugeVec
	restarts *prometheus.GaugeVec
	mirrored *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	labels := []string{"workspace", "endpoint", "deployment"}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wharf_endpoint_requests_total",
			Help: "Scoring requests by endpoint, deployment and HTTP status."}, append(labels, "code")),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "wharf_endpoint_request_duration_seconds",
			Help:    "Scoring latency as the router saw it.",
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}}, labels),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "wharf_endpoint_requests_in_flight",
			Help: "Scoring requests being answered."}, labels),
		restarts: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "wharf_endpoint_worker_restarts",
			Help: "Worker processes restarted after a crash, since the deployment started."}, labels),
		mirrored: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wharf_endpoint_mirrored_requests_total",
			Help: "Mirrored copies of requests, by the shadow deployment's status."}, append(labels, "code")),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.inflight, m.restarts, m.mirrored)
	}
	return m
}

func (m *metrics) observe(workspace, endpoint, deployment string, status int, d time.Duration) {
	m.requests.WithLabelValues(workspace, endpoint, deployment, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(workspace, endpoint, deployment).Observe(d.Seconds())
}
