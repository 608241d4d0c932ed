package steps

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestResolveRunsURI: a runs:/ download URI, which the registry returns
// as MLflow's does, becomes the run's artifact location, so that evaluate
// can read the version's files; other URIs pass as they are.
func TestResolveRunsURI(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/2.0/mlflow/runs/get" || r.URL.Query().Get("run_id") != "abc" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"no run"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"run": map[string]any{"info": map[string]any{
			"artifact_uri": "mlflow-artifacts:/1/abc/artifacts"}}})
	}))
	defer srv.Close()
	tc := &Tracking{URI: srv.URL}
	for in, want := range map[string]string{
		"runs:/abc/model":                     "mlflow-artifacts:/1/abc/artifacts/model",
		"runs:/abc":                           "mlflow-artifacts:/1/abc/artifacts",
		"mlflow-artifacts:/1/xyz/artifacts/m": "mlflow-artifacts:/1/xyz/artifacts/m",
	} {
		got, err := tc.resolveRunsURI(context.Background(), in)
		if err != nil || got != want {
			t.Errorf("resolveRunsURI(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := tc.resolveRunsURI(context.Background(), "runs:/nope/model"); err == nil {
		t.Error("a runs:/ URI of an unknown run resolved")
	}
}
