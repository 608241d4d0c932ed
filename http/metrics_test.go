package http_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharfml/wharf"
)

// TestMetricsHideNamesWithoutToken: /metrics without a token shows the
// series free of resource names (route patterns, the runtime's); the
// series naming workspaces, endpoints and deployments need a token that
// may read every endpoint on the server.
func TestMetricsHideNamesWithoutToken(t *testing.T) {
	f := newFixture(t)
	f.workspace("ws-secret")
	// A series labelled as the data plane labels its own.
	scores := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_scores_total", Help: "Scores."},
		[]string{"workspace", "endpoint", "deployment", "code"})
	f.srv.Registerer().MustRegister(scores)
	scores.WithLabelValues("ws-secret", "fraud-detector", "blue", "200").Inc()
	reader := f.principal("reader", [2]string{wharf.RoleReader, "/"})
	if st := call(t, f, "GET", "/api/v1/workspaces/ws-secret", "", reader); st != 200 {
		t.Fatalf("workspace read: %d", st)
	}

	status, public := scrape(t, f, "")
	if status != 200 {
		t.Fatalf("public /metrics: %d", status)
	}
	for _, name := range []string{"ws-secret", "fraud-detector", "test_scores_total"} {
		if strings.Contains(public, name) {
			t.Errorf("public /metrics shows %q", name)
		}
	}
	for _, want := range []string{`wharf_http_requests_total{code="200",route="GET /api/v1/workspaces/{workspace}"} 1`, "go_goroutines "} {
		if !strings.Contains(public, want) {
			t.Errorf("public /metrics lacks %q", want)
		}
	}

	status, full := scrape(t, f, reader)
	if status != 200 || !strings.Contains(full, `test_scores_total{code="200",deployment="blue",endpoint="fraud-detector",workspace="ws-secret"} 1`) {
		t.Errorf("/metrics for a server Reader: %d, without the named series:\n%s", status, full)
	}
	wsReader := f.principal("ws-reader", [2]string{wharf.RoleReader, "/workspaces/ws-secret"})
	if status, body := scrape(t, f, wsReader); status != 403 || strings.Contains(body, "fraud-detector") {
		t.Errorf("/metrics for a workspace Reader: %d %s, want 403", status, body)
	}
	if status, body := scrape(t, f, "not-a-token"); status != 401 || strings.Contains(body, "fraud-detector") {
		t.Errorf("/metrics with a bad token: %d %s, want 401", status, body)
	}
}

func scrape(t *testing.T, f *fixture, token string) (int, string) {
	t.Helper()
	status, body := get(t, f.http.URL+"/metrics", token)
	return status, string(body)
}
