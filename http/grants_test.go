package http_test

import (
	"context"
	"testing"

	"github.com/wharfml/wharf"
)

// TestRoleChangesTakeEffectAtOnce checks that a token's role assignments
// are read afresh with its principal on every request: an assignment
// removed refuses the principal's very next request, and one added admits
// it, on the REST API and the MLflow routes alike.
func TestRoleChangesTakeEffectAtOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.workspace("ws-a")
	root := f.principal("root", [2]string{wharf.RoleOwner, "/"})
	ds := f.principal("ds", [2]string{wharf.RoleDataScientist, "/workspaces/ws-a"})
	const ml = "/mlflow/v1.0/workspaces/ws-a/api/2.0/mlflow/"
	read := func() int { return call(t, f, "GET", "/api/v1/workspaces/ws-a", "", ds) }
	write := func(name string) int {
		return call(t, f, "POST", ml+"experiments/create", `{"name":"`+name+`"}`, ds)
	}
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
	if len(granted) != 1 || granted[0].PrincipalID != "app-ds" {
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
		map[string]string{"assignee": "app-ds", "role": "Reader"}, nil); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != 200 {
		t.Errorf("read after Reader was granted: %d, want 200", got)
	}
	if got := write("third"); got != 403 {
		t.Errorf("MLflow write as a Reader: %d, want 403", got)
	}
}
