package http

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/wharfml/wharf"
)

// metricsAction is what a caller must hold at the server scope to see the
// series that name workspaces, endpoints and deployments: whoever may read
// every online endpoint knows those names already.
const metricsAction = wharf.ActionOnlineEndpointRead

// publicLabels are the only labels a series may carry to be shown without a
// token: route patterns and status codes, and the runtime's own. Any other
// label may hold a resource's name, so a series added later stays private
// until it is known not to.
var publicLabels = map[string]bool{"route": true, "code": true, "quantile": true, "version": true}

// handleMetrics serves the Prometheus metrics: to a caller without a token
// the series without resource names, to a token holding metricsAction at
// the server scope all of them. A token that is invalid or lacks the right
// is refused rather than quietly given less, so a misconfigured scraper
// shows up as failing.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	var gatherer prometheus.Gatherer = publicGatherer{s.registry}
	if _, ok := bearerToken(r); ok {
		caller, grants, err := s.authenticate(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="wharf"`)
			s.writeError(w, r, err)
			return
		}
		ok, err := s.authorizeWith(r.Context(), caller, grants, metricsAction, wharf.ServerScope)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if !ok {
			s.writeError(w, r, forbidden(caller, metricsAction, wharf.ServerScope))
			return
		}
		gatherer = s.registry
	}
	promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// publicGatherer gathers the series whose labels are all publicLabels.
type publicGatherer struct{ all prometheus.Gatherer }

// Gather returns the public series, dropping families left empty.
func (g publicGatherer) Gather() ([]*dto.MetricFamily, error) {
	families, err := g.all.Gather()
	public := families[:0]
	for _, f := range families {
		kept := f.Metric[:0]
		for _, m := range f.Metric {
			if labelsArePublic(m) {
				kept = append(kept, m)
			}
		}
		if len(kept) > 0 {
			f.Metric = kept
			public = append(public, f)
		}
	}
	return public, err
}

func labelsArePublic(m *dto.Metric) bool {
	for _, l := range m.GetLabel() {
		if !publicLabels[l.GetName()] {
			return false
		}
	}
	return true
}

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inFlight prometheus.Gauge
	// refusedConns counts connections closed for going over the
	// per-address cap: a rising count is a client to look at.
	refusedConns prometheus.Counter
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_http_requests_total",
			Help: "API requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wharf_http_request_duration_seconds",
			Help:    "API request latency by route.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wharf_http_requests_in_flight",
			Help: "API requests being served.",
		}),
		refusedConns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wharf_http_connections_refused_total",
			Help: "Connections closed on arrival because their address already had the most open connections allowed.",
		}),
	}
	reg.MustRegister(m.requests, m.latency, m.inFlight, m.refusedConns,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}
