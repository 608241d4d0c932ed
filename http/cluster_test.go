package http_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/wharfml/wharf"
)

// TestComputeTokenRoutes: a compute token opens its own compute's driver
// routes and nothing else; a principal's token does not open them.
func TestComputeTokenRoutes(t *testing.T) {
	f := newFixture(t)
	f.workspace("ws-a")
	for _, name := range []string{"ray", "other"} {
		c := &wharf.Compute{Workspace: "ws-a", Name: name, Type: wharf.ComputeTypeRay, Address: "http://127.0.0.1:1"}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if _, err := f.db.PutCompute(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := f.srv.IssueComputeToken("ws-a", "ray", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	owner := f.principal("owner", [2]string{wharf.RoleOwner, "/"})
	poll := `{"driver": "d1", "wait_ms": 1}`
	for _, c := range []struct {
		method, path, body, token string
		want                      int
	}{
		// Past authentication: this server runs no Ray clusters.
		{"POST", "/api/v1/workspaces/ws-a/computes/ray/driver/poll", poll, tok, http.StatusServiceUnavailable},
		{"POST", "/api/v1/workspaces/ws-a/computes/other/driver/poll", poll, tok, http.StatusForbidden},
		{"POST", "/api/v1/workspaces/ws-a/computes/ray/driver/poll", poll, owner, http.StatusForbidden},
		{"POST", "/api/v1/workspaces/ws-a/computes/ray/driver/poll", poll, "not-a-token", http.StatusUnauthorized},
		{"GET", "/api/v1/workspaces/ws-a/computes/ray", "", tok, http.StatusUnauthorized},
		{"GET", "/api/v1/workspaces/ws-a/computes/ray/attempts/a1/files", "", tok, http.StatusUnauthorized},
		{"GET", "/api/v1/workspaces/ws-a/computes/ray/attempts/a1/files", "", owner, http.StatusForbidden},
	} {
		if got := call(t, f, c.method, c.path, c.body, c.token); got != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, got, c.want)
		}
	}
}
