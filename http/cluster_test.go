package http_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/ray"
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

// TestExecutableRoute: the server's executable is served, whole and with
// its digest and platform, to a compute token; a principal's token is
// refused and no token is asked for one.
func TestExecutableRoute(t *testing.T) {
	f := newFixture(t)
	f.workspace("ws-a")
	program := filepath.Join(t.TempDir(), "wharf")
	body := make([]byte, 3<<20)
	for i := range body {
		body[i] = byte(i * 7)
	}
	if err := os.WriteFile(program, body, 0o755); err != nil {
		t.Fatal(err)
	}
	f.srv.Clusters = &ray.Executor{Executable: ray.Executable{Path: program}}
	tok, err := f.srv.IssueComputeToken("ws-a", "ray", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	owner := f.principal("owner", [2]string{wharf.RoleOwner, "/"})
	url := f.http.URL + ray.ExecutablePath
	resp, got := getResponse(t, url, tok)
	sum := sha256.Sum256(body)
	if resp.StatusCode != http.StatusOK || string(got) != string(body) {
		t.Fatalf("compute token: %d, %d bytes of %d", resp.StatusCode, len(got), len(body))
	}
	if d := resp.Header.Get(wharfhttp.HeaderExecutableSHA256); d != hex.EncodeToString(sum[:]) {
		t.Errorf("digest header %q, want %x", d, sum)
	}
	if p := resp.Header.Get(wharfhttp.HeaderExecutablePlatform); p != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("platform header %q", p)
	}

	// Replaced on disk (an upgrade): the new bytes, with their digest.
	body[0]++
	if err := os.WriteFile(program, body[:1<<20], 0o755); err != nil {
		t.Fatal(err)
	}
	resp, got = getResponse(t, url, tok)
	sum = sha256.Sum256(body[:1<<20])
	if string(got) != string(body[:1<<20]) || resp.Header.Get(wharfhttp.HeaderExecutableSHA256) != hex.EncodeToString(sum[:]) {
		t.Errorf("after replacing the program: %d bytes, digest %s", len(got), resp.Header.Get(wharfhttp.HeaderExecutableSHA256))
	}

	if status, _ := get(t, url, owner); status != http.StatusForbidden {
		t.Errorf("a principal's token: %d, want 403", status)
	}
	if status, _ := get(t, url, ""); status != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", status)
	}
}
