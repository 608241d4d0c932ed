package http_test

import (
	"net/http"
	"strings"
	"testing"

	wharfhttp "github.com/wharfml/wharf/http"
)

// mlflowRoutePrefix is where the MLflow-compatible API lives.
const mlflowRoutePrefix = "/mlflow/v1.0/workspaces/{workspace}/"

// mlflowResources are the action families MLflow routes may declare.
var mlflowResources = []string{"workspaces/experiments/", "workspaces/models/", "workspaces/artifacts/"}

// mlflowMatrixExpect gives who may call an MLflow route, by hand-written
// policy rather than from the role definitions under test: reads are for
// every role that can read in ws-a, writes and deletes for the roles that
// manage its assets; Compute Operator, an Owner of another workspace and a
// principal without roles are denied everything. The catch-all that
// answers ENDPOINT_NOT_FOUND needs a token only. ok is false for routes
// outside the MLflow API and for MLflow routes whose action is not one of
// the expected families, which the matrix then reports.
func mlflowMatrixExpect(rt *wharfhttp.Route) (allowed string, ok bool) {
	if !strings.HasPrefix(rt.Pattern, mlflowRoutePrefix) {
		return "", false
	}
	if rt.Access == wharfhttp.AccessAuthenticated && rt.Action == "" && strings.HasSuffix(rt.Pattern, "/{rest...}") {
		return everyone, true
	}
	if rt.Access != wharfhttp.AccessScoped {
		return "", false
	}
	family := false
	for _, f := range mlflowResources {
		family = family || strings.HasPrefix(rt.Action, f)
	}
	if !family {
		return "", false
	}
	switch {
	case strings.HasSuffix(rt.Action, "/read"):
		return "owner contributor reader datasci", true
	case strings.HasSuffix(rt.Action, "/write"), strings.HasSuffix(rt.Action, "/delete"):
		return "owner contributor datasci", true
	}
	return "", false
}

// TestMLflowRoutesAnswerInMLflowShape checks that every route under the
// MLflow prefix writes its errors, 401 included, as MLflow's client parses
// them, and that searches are reads.
func TestMLflowRoutesAnswerInMLflowShape(t *testing.T) {
	f := newFixture(t)
	f.workspace("ws-a")
	n := 0
	for _, rt := range f.srv.Routes() {
		if !strings.HasPrefix(rt.Pattern, mlflowRoutePrefix) {
			continue
		}
		n++
		key := rt.Method + " " + rt.Pattern
		if !rt.MLflow {
			t.Errorf("%s does not answer in MLflow's shape", key)
		}
		if strings.HasSuffix(rt.Pattern, "/search") && !strings.HasSuffix(rt.Action, "/read") {
			t.Errorf("%s: a search must be a read, got %q", key, rt.Action)
		}
		if rt.RawBody != (rt.Method == "PUT" && strings.Contains(rt.Pattern, "/mlflow-artifacts/")) {
			t.Errorf("%s: RawBody = %v; only artifact uploads may skip the body limit", key, rt.RawBody)
		}
		r := newMLflowCall(t, f, rt.Method, fillPath(rt.Pattern))
		if r.status != http.StatusUnauthorized || r.body["error_code"] != "UNAUTHENTICATED" {
			t.Errorf("%s without a token: %d %v", key, r.status, r.body)
		}
	}
	if n == 0 {
		t.Fatal("no MLflow routes are registered")
	}
}

func newMLflowCall(t *testing.T, f *fixture, method, path string) *mlResponse {
	t.Helper()
	c := &mlflowClient{t: t, base: f.http.URL, hc: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	var body any
	if method != "GET" {
		body = "{}"
	}
	return c.do(method, path, body)
}
