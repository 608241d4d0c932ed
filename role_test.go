package wharf_test

import (
	"testing"

	"github.com/wharfml/wharf"
)

func TestRolePermits(t *testing.T) {
	cases := []struct {
		role, action string
		want         bool
	}{
		{wharf.RoleOwner, wharf.ActionRoleAssignmentWrite, true},
		{wharf.RoleContributor, wharf.ActionComputeDelete, true},
		{wharf.RoleContributor, wharf.ActionRoleAssignmentWrite, false},
		{wharf.RoleContributor, wharf.ActionPrincipalDelete, false},
		{wharf.RoleContributor, wharf.ActionRoleAssignmentRead, true},
		{wharf.RoleReader, wharf.ActionComputeRead, true},
		{wharf.RoleReader, wharf.ActionComputeWrite, false},
		{wharf.RoleReader, wharf.ActionSecretValue, false},
		{wharf.RoleDataScientist, wharf.ActionDatastoreWrite, true},
		{wharf.RoleDataScientist, wharf.ActionComputeRead, true},
		{wharf.RoleDataScientist, wharf.ActionComputeWrite, false},
		{wharf.RoleDataScientist, wharf.ActionComputeDelete, false},
		{wharf.RoleDataScientist, wharf.ActionWorkspaceWrite, false},
		{wharf.RoleDataScientist, wharf.ActionWorkspaceDelete, false},
		{wharf.RoleDataScientist, wharf.ActionSecretValue, false},
		{wharf.RoleDataScientist, wharf.ActionRoleAssignmentWrite, false},
		{wharf.RoleDataScientist, "workspaces/jobs/write", true},
		{wharf.RoleComputeOperator, wharf.ActionComputeWrite, true},
		{wharf.RoleComputeOperator, wharf.ActionWorkspaceRead, false},
		{wharf.RoleComputeOperator, wharf.ActionDatastoreRead, false},
	}
	for _, c := range cases {
		r, err := wharf.FindRole(c.role)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Permits(c.action); got != c.want {
			t.Errorf("%s permits %s = %v, want %v", c.role, c.action, got, c.want)
		}
	}
}

func TestFindRoleSpellings(t *testing.T) {
	for _, n := range []string{"Data Scientist", "data-scientist", "DataScientist", "data_scientist", "OWNER"} {
		if _, err := wharf.FindRole(n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
	if _, err := wharf.FindRole("Admin"); wharf.ErrorCode(err) != wharf.EINVALID {
		t.Errorf("unknown role: %v", err)
	}
}

func TestScopes(t *testing.T) {
	for in, want := range map[string]string{"": "/", "/": "/", "/workspaces/a": "/workspaces/a", "/Workspaces/a/": "/workspaces/a"} {
		got, err := wharf.NormalizeScope(in)
		if err != nil || got != want {
			t.Errorf("NormalizeScope(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"/subscriptions/x", "/workspaces", "/workspaces/a/b", "/workspaces/../x"} {
		if _, err := wharf.NormalizeScope(bad); err == nil {
			t.Errorf("NormalizeScope(%q) accepted", bad)
		}
	}
	if !wharf.ScopeContains("/", "/workspaces/a") || !wharf.ScopeContains("/workspaces/a", "/workspaces/a") {
		t.Error("inheritance broken")
	}
	// A grant on ws-a must not reach ws-ab, a name with the same prefix.
	if wharf.ScopeContains("/workspaces/ws-a", "/workspaces/ws-ab") || wharf.ScopeContains("/workspaces/a", "/") {
		t.Error("scope leak")
	}
}

func TestAuthorizeIsAUnion(t *testing.T) {
	as := []*wharf.RoleAssignment{
		{RoleName: wharf.RoleDataScientist, Scope: "/workspaces/a"},
		{RoleName: wharf.RoleComputeOperator, Scope: "/workspaces/a"},
	}
	// Data Scientist's NotActions do not block the Compute Operator grant.
	if !wharf.Authorize(as, wharf.ActionComputeWrite, "/workspaces/a") {
		t.Error("union of grants not honoured")
	}
	if wharf.Authorize(as, wharf.ActionComputeWrite, "/workspaces/b") {
		t.Error("grant leaked to another workspace")
	}
	if wharf.Authorize(nil, wharf.ActionWorkspaceRead, "/") {
		t.Error("no assignment must mean no access")
	}
}

func TestComputeValidate(t *testing.T) {
	c := &wharf.Compute{Name: "cpu-cluster", Type: "AmlCompute", Tier: "Low_Priority", MaxInstances: 4}
	if err := c.Validate(); err != nil || c.Type != "amlcompute" || c.Tier != "low_priority" || c.Size != wharf.DefaultComputeSize || c.IdleTimeBeforeScaleDown != 120 {
		t.Fatalf("%+v %v", c, err)
	}
	ray := &wharf.Compute{Name: "ray-cluster", Type: "Ray", Address: "http://127.0.0.1:8265/"}
	if err := ray.Validate(); err != nil || ray.Type != wharf.ComputeTypeRay || ray.Address != "http://127.0.0.1:8265" || ray.MaxInstances != wharf.DefaultRaySteps {
		t.Fatalf("%+v %v", ray, err)
	}
	for _, bad := range []*wharf.Compute{
		{Name: "x", Type: "kubernetes"},
		{Name: "x", Tier: "spot"},
		{Name: "x", MinInstances: 3, MaxInstances: 2},
		{Name: "-bad"},
		{Name: "x", Type: "ray"},
		{Name: "x", Type: "ray", Address: "head:8265"},
		{Name: "x", Type: "ray", Address: "ftp://head:8265"},
		{Name: "x", Type: "ray", Address: "http://user:pw@head:8265"},
		{Name: "x", Address: "http://head:8265"},
	} {
		err := bad.Validate()
		var e *wharf.Error
		if err == nil || wharf.ErrorCode(err) != wharf.EINVALID {
			t.Errorf("%+v accepted: %v", bad, err)
		} else if ok := asError(err, &e); !ok || e.Field == "" {
			t.Errorf("%+v: error names no field: %v", bad, err)
		}
	}
}

func asError(err error, e **wharf.Error) bool {
	x, ok := err.(*wharf.Error)
	*e = x
	return ok
}
