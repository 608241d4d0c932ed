package http_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	wharfhttp "github.com/wharfml/wharf/http"
)

// mlflowRoutePrefix is where the MLflow-compatible API lives.
const mlflowRoutePrefix = "/mlflow/v1.0/workspaces/{workspace}/"

// mlflowRoute is the matrix key of an MLflow route, p below the prefix.
func mlflowRoute(method, p string) string { return method + " " + mlflowRoutePrefix + p }

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
// MLflow prefix, mounted as a Group, writes the pipeline's errors, 401
// included, as MLflow's client parses them, and that searches are reads.
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
		if strings.HasSuffix(rt.Pattern, "/search") && !strings.HasSuffix(rt.Action, "/read") {
			t.Errorf("%s: a search must be a read, got %q", key, rt.Action)
		}
		upload := (rt.Method == "PUT" && strings.Contains(rt.Pattern, "/mlflow-artifacts/")) ||
			(rt.Method == "POST" && strings.HasSuffix(rt.Pattern, "/mlflow/upload-artifact"))
		if rt.RawBody != upload {
			t.Errorf("%s: RawBody = %v; only artifact uploads may skip the body limit", key, rt.RawBody)
		}
		status, body := mlflowCall(t, f, rt.Method, fillPath(rt.Pattern))
		if status != http.StatusUnauthorized || body["error_code"] != "UNAUTHENTICATED" {
			t.Errorf("%s without a token: %d %v", key, status, body)
		}
	}
	if n == 0 {
		t.Fatal("no MLflow routes are registered")
	}
}

// mlflowCall sends a request without a token, with an empty JSON object as
// the body of all but GETs, and decodes the JSON answer.
func mlflowCall(t *testing.T, f *fixture, method, path string) (int, map[string]any) {
	t.Helper()
	var body io.Reader
	if method != "GET" {
		body = strings.NewReader("{}")
	}
	req, err := http.NewRequest(method, f.http.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	// A redirect is an answer to check, never to follow.
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %v", method, path, resp.StatusCode, err)
	}
	return resp.StatusCode, out
}
