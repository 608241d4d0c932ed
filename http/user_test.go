package http_test

import (
	"strings"
	"testing"

	"github.com/wharfml/wharf"
)

func TestUsersAPIAndRoleAssignments(t *testing.T) {
	f, _ := userFixture(t)
	f.workspace("ws-a")
	owner := f.client(f.principal("boss", [2]string{wharf.RoleOwner, "/"}))
	contributor := f.client(f.principal("helper", [2]string{wharf.RoleContributor, "/"}))
	ctx := t.Context()

	body := func(upn, pw string) map[string]any {
		return map[string]any{"displayName": "Alice", "userPrincipalName": upn, "passwordProfile": map[string]any{"password": pw, "forceChangePasswordNextSignIn": false}}
	}
	for _, tc := range []struct{ upn, pw, want string }{
		{"alice@team", "too-short", "at least 12 characters"},
		{"alice.longname@team", "Alice.LongName", "must not be the user principal name"},
		{"alice.longname@team", "alice.longname@team", "must not be the user principal name"},
		{"not-an-upn", "a long enough password", "userPrincipalName"},
	} {
		err := owner.Do(ctx, "POST", "/api/v1/users", body(tc.upn, tc.pw), nil)
		if wharf.ErrorCode(err) != wharf.EINVALID || !strings.Contains(wharf.ErrorMessage(err), tc.want) {
			t.Errorf("create %s / %q: %v, want %q", tc.upn, tc.pw, err, tc.want)
		}
	}
	// Managing users is an access change: Owner only.
	err := contributor.Do(ctx, "POST", "/api/v1/users", body("alice@team", alicePassword), nil)
	if wharf.ErrorCode(err) != wharf.EFORBIDDEN {
		t.Errorf("Contributor creating a user: %v", err)
	}
	var u wharf.User
	must(t, owner.Do(ctx, "POST", "/api/v1/users", body("Alice@Team", alicePassword), &u))
	if u.UserPrincipalName != "alice@team" || u.ObjectID == "" {
		t.Fatalf("created: %+v", u)
	}
	stored, err := f.db.FindUser(ctx, "alice@team")
	must(t, err)
	if !strings.HasPrefix(stored.PasswordHash, "$argon2id$v=19$") || strings.Contains(stored.PasswordHash, alicePassword) {
		t.Errorf("stored hash %q is not an argon2id PHC string", stored.PasswordHash)
	}
	if err := owner.Do(ctx, "POST", "/api/v1/users", body("alice@team", alicePassword), nil); wharf.ErrorCode(err) != wharf.ECONFLICT {
		t.Errorf("duplicate user: %v", err)
	}

	// A user's token has no rights until a role is assigned, then those
	// of the role, as a principal's would.
	tok := f.client(passwordToken(t, f, "alice@team", alicePassword))
	put := func() error {
		return tok.Do(ctx, "PUT", "/api/v1/workspaces/ws-a/datastores/raw", map[string]any{"type": "local"}, nil)
	}
	if err := put(); wharf.ErrorCode(err) != wharf.EFORBIDDEN {
		t.Fatalf("before the assignment: %v", err)
	}
	var ra wharf.RoleAssignment
	must(t, owner.Do(ctx, "POST", "/api/v1/workspaces/ws-a/roleAssignments", map[string]any{"assignee": "alice@team", "role": "Data Scientist"}, &ra))
	if ra.PrincipalID != u.ObjectID || ra.PrincipalType != wharf.PrincipalTypeUser || ra.PrincipalName != "alice@team" {
		t.Errorf("assignment: %+v", ra)
	}
	must(t, put())
	var list []wharf.RoleAssignment
	must(t, owner.Do(ctx, "GET", "/api/v1/workspaces/ws-a/roleAssignments?assignee=ALICE@team", nil, &list))
	if len(list) != 1 || list[0].ID != ra.ID {
		t.Errorf("assignments of alice: %+v", list)
	}
	if err := owner.Do(ctx, "POST", "/api/v1/roleAssignments", map[string]any{"assignee": "nobody@team", "role": "Reader"}, nil); wharf.ErrorCode(err) != wharf.ENOTFOUND {
		t.Errorf("assignment to an unknown user: %v", err)
	}

	// The last server Owner cannot be deleted, user or not.
	f2, _ := userFixture(t)
	sole := f2.user("root@team", alicePassword, [2]string{wharf.RoleOwner, "/"})
	rootTok := f2.client(passwordToken(t, f2, "root@team", alicePassword))
	if err := rootTok.Do(ctx, "DELETE", "/api/v1/users/"+sole.ObjectID, nil, nil); wharf.ErrorCode(err) != wharf.ECONFLICT {
		t.Errorf("deleting the last Owner: %v", err)
	}
}
