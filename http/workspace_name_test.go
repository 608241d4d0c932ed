package http_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
)

// TestWorkspaceNameCheckedFirst: a workspace name in a URL that is not a
// valid name is refused with 400 naming the field, before authentication,
// authorization or any store call (the store is closed here, so reaching
// it would be a 500).
func TestWorkspaceNameCheckedFirst(t *testing.T) {
	f := newFixture(t)
	f.workspace("ws-a")
	token := f.principal("a-owner", [2]string{wharf.RoleOwner, "/workspaces/ws-a"})
	f.db.Close()

	bad := []string{"%2F..%2F", "ws-a%2F..%2Fws-b", "ws-a%2Fsecrets", "-ws", "bad%20name", strings.Repeat("w", 64)}
	for _, ws := range bad {
		for _, path := range []string{
			"/api/v1/workspaces/" + ws,
			"/api/v1/workspaces/" + ws + "/computes",
			"/api/v1/workspaces/" + ws + "/roleAssignments",
			"/endpoints/" + ws + "/ep/v2/health/ready",
		} {
			for _, tok := range []string{token, ""} {
				status, body := getJSON(t, f.http.URL+path, tok)
				e, _ := body["error"].(map[string]any)
				if status != 400 || e["target"] != "workspace" || !strings.Contains(e["message"].(string), "workspace") {
					t.Errorf("GET %s (token %t): got %d %v, want 400 naming the workspace field", path, tok != "", status, body)
				}
			}
		}
		// Names holding ".." are refused earlier still, as an MLflow path
		// with a dot segment.
		want := "workspace"
		if strings.Contains(ws, "..") {
			want = "Invalid path"
		}
		path := "/mlflow/v1.0/workspaces/" + ws + "/api/2.0/mlflow/experiments/get-by-name?experiment_name=x"
		status, body := getJSON(t, f.http.URL+path, token)
		if status != 400 || body["error_code"] != "INVALID_PARAMETER_VALUE" || !strings.Contains(body["message"].(string), want) {
			t.Errorf("GET %s: got %d %v, want 400 INVALID_PARAMETER_VALUE saying %q", path, status, body, want)
		}
	}
}

// getJSON sends a GET with an optional token and decodes the JSON answer.
func getJSON(t *testing.T, url, token string) (int, map[string]any) {
	t.Helper()
	status, raw := get(t, url, token)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("GET %s: %d, not JSON: %s", url, status, raw)
	}
	return status, body
}

// get sends a GET with an optional bearer token and reads the answer.
func get(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	resp, raw := getResponse(t, url, token)
	return resp.StatusCode, raw
}

// getResponse is get for a caller that reads the answer's headers too.
func getResponse(t *testing.T, url, token string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, raw
}
