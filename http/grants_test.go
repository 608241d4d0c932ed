package http_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
)

// TestRoleChangesTakeEffectAtOnce checks that a token's role assignments
// are read afresh with its principal on every request: an assignment
// removed refuses the principal's very next request, and one added admits
// it, on the REST API and the MLflow routes alike.
func TestRoleChangesTakeEffectAtOnce(t *testing.T) {
	f := newFixture(t)
	f.workspace("ws-a")
	root := f.principal("root", [2]string{wharf.RoleOwner, "/"})
	ds := f.principal("ds", [2]string{wharf.RoleDataScientist, "/workspaces/ws-a"})
	roleChangeSteps(t, f, root, "app-ds", func(method, path, body string) int { return call(t, f, method, path, body, ds) })
}

// roleChangeSteps checks, through do (a request as the caller under test,
// a Data Scientist on ws-a), that removing its assignment refuses its very
// next read and MLflow write, and that a Reader role granted then admits
// the read only. root is an Owner's token.
func roleChangeSteps(t *testing.T, f *fixture, root, assignee string, do func(method, path, body string) int) {
	t.Helper()
	ctx := context.Background()
	const ml = "/mlflow/v1.0/workspaces/ws-a/api/2.0/mlflow/"
	read := func() int { return do("GET", "/api/v1/workspaces/ws-a", "") }
	write := func(name string) int { return do("POST", ml+"experiments/create", `{"name":"`+name+`"}`) }
	if got := read(); got != 200 {
		t.Fatalf("Data Scientist reads the workspace: %d", got)
	}
	if got := write("first"); got != 200 {
		t.Fatalf("Data Scientist creates an experiment: %d", got)
	}
	var granted []wharf.RoleAssignment
	if err := f.client(root).Do(ctx, "GET", "/api/v1/workspaces/ws-a/roleAssignments", nil, &granted); err != nil {
		t.Fatal(err)
	}
	if len(granted) != 1 || granted[0].PrincipalID != assignee {
		t.Fatalf("ws-a assignments: %+v", granted)
	}
	if err := f.client(root).Do(ctx, "DELETE", "/api/v1/workspaces/ws-a/roleAssignments/"+granted[0].ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != 403 {
		t.Errorf("read after the assignment was removed: %d, want 403", got)
	}
	if got := write("second"); got != 403 {
		t.Errorf("MLflow write after the assignment was removed: %d, want 403", got)
	}
	if err := f.client(root).Do(ctx, "POST", "/api/v1/workspaces/ws-a/roleAssignments",
		map[string]string{"assignee": assignee, "role": "Reader"}, nil); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != 200 {
		t.Errorf("read after Reader was granted: %d, want 200", got)
	}
	if got := write("third"); got != 403 {
		t.Errorf("MLflow write as a Reader: %d, want 403", got)
	}
}

// userRoleFixture is a server with workspace ws-a, an Owner (root, its
// token) and a user who is a Data Scientist on ws-a.
func userRoleFixture(t *testing.T) (f *fixture, root string, u *wharf.User) {
	f = newFixture(t)
	f.workspace("ws-a")
	root = f.principal("root", [2]string{wharf.RoleOwner, "/"})
	u = f.user("carol@team", alicePassword, [2]string{wharf.RoleDataScientist, "/workspaces/ws-a"})
	return f, root, u
}

// TestRoleChangesTakeEffectAtOnceForUserTokens checks that a user token's
// user and role assignments are read afresh on every request: a removed
// role refuses the very next request, a granted one admits it, and a
// deleted user's token is refused at once.
func TestRoleChangesTakeEffectAtOnceForUserTokens(t *testing.T) {
	f, root, u := userRoleFixture(t)
	tok, _, err := f.issuer.IssueUser(testTenant, u.ObjectID, u.UserPrincipalName, wharfhttp.APIAudience, 0)
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, body string) int { return call(t, f, method, path, body, tok) }
	roleChangeSteps(t, f, root, u.ObjectID, do)

	if err := f.client(root).Do(context.Background(), "DELETE", "/api/v1/users/"+u.ObjectID, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := do("GET", "/api/v1/workspaces/ws-a", ""); got != 401 {
		t.Errorf("read after the user was deleted: %d, want 401", got)
	}
}

// TestRoleChangesTakeEffectAtOnceForBrowserSessions checks the same for a
// browser's session cookie, and that a signed-out session is refused on
// the very next request.
func TestRoleChangesTakeEffectAtOnceForBrowserSessions(t *testing.T) {
	f, root, u := userRoleFixture(t)
	b := newBrowser(t, f.http.URL, "", nil)
	csrf := b.mustSignIn(u.UserPrincipalName, alicePassword)
	do := func(method, path, body string) int { return b.api(method, path, body, csrf) }
	roleChangeSteps(t, f, root, u.ObjectID, do)

	if resp, _ := b.postForm("/signout", url.Values{"csrf_token": {csrf}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	if got := do("GET", "/api/v1/workspaces/ws-a", ""); got != 401 {
		t.Errorf("read after sign-out: %d, want 401", got)
	}
}
