package http_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
)

// TestGroupAnswersInItsOwnShape mounts a group with an error writer of its
// own and checks that the pipeline's refusals (401, 403, a bad workspace
// name, a dot segment) and its handler's errors all come in the group's
// shape, while Wharf's own routes keep theirs.
func TestGroupAnswersInItsOwnShape(t *testing.T) {
	f := newFixture(t)
	f.workspace("ws-a")
	owner := f.principal("owner", [2]string{wharf.RoleOwner, "/"})
	nobody := f.principal("nobody")
	ew := func(w http.ResponseWriter, r *http.Request, err error) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(wharfhttp.ErrorStatus(wharf.ErrorCode(err)))
		_ = json.NewEncoder(w).Encode(map[string]string{"other_code": wharf.ErrorCode(err), "other_message": wharf.ErrorMessage(err)})
	}
	g := f.srv.Group("/other/{workspace}", ew)
	g.Route("GET /thing", wharf.ActionExperimentRead, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("fail") != "" {
			ew(w, r, wharf.Errorf(wharf.ECONFLICT, "handler says no"))
			return
		}
		_, _ = w.Write([]byte(`{"ok":true}`))
	})

	cases := []struct {
		path, token string
		status      int
		code        string
	}{
		{"/other/ws-a/thing", owner, 200, ""},
		{"/other/ws-a/thing?fail=1", owner, 409, wharf.ECONFLICT},
		{"/other/ws-a/thing", "", 401, wharf.EUNAUTHENTICATED},
		{"/other/ws-a/thing", nobody, 403, wharf.EFORBIDDEN},
		{"/other/-bad-/thing", owner, 400, wharf.EINVALID},
		{"/other/ws-a/x/../thing", owner, 400, wharf.EINVALID},
	}
	for _, tc := range cases {
		status, raw := get(t, f.http.URL+tc.path, tc.token)
		var body map[string]any
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatalf("GET %s: %d, not JSON: %s", tc.path, status, raw)
		}
		if status != tc.status || (tc.code != "" && body["other_code"] != tc.code) || (tc.code == "" && body["ok"] != true) {
			t.Errorf("GET %s: %d %s, want %d %s in the group's shape", tc.path, status, raw, tc.status, tc.code)
		}
	}
	// Wharf's own routes answer as before.
	status, body := getJSON(t, f.http.URL+"/api/v1/workspaces/ws-a", "")
	if e, _ := body["error"].(map[string]any); status != 401 || e["code"] != wharf.EUNAUTHENTICATED {
		t.Errorf("a REST route without a token: %d %v", status, body)
	}
	// Group routes are routes: listed, with their full pattern and action.
	found := false
	for _, rt := range f.srv.Routes() {
		found = found || (rt.Method == "GET" && rt.Pattern == "/other/{workspace}/thing" && rt.Action == wharf.ActionExperimentRead)
	}
	if !found {
		t.Error("the group's route is not among the server's routes")
	}
}
