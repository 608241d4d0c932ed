package storetest

import (
	"testing"
	"time"

	"github.com/wharfml/wharf"
)

func testUsers(t *testing.T, open Opener) {
	s := open(t)
	clk := withClock(t, s)

	u := &wharf.User{ObjectID: "u-1111", UserPrincipalName: "alice@team", DisplayName: "Alice", PasswordHash: "$argon2id$h1", ForceChangePassword: true}
	must(t, s.CreateUser(ctx(t), u))
	if !u.CreatedAt.Equal(clk.stored()) || !u.PasswordChangedAt.Equal(clk.stored()) {
		t.Errorf("times = %v %v, want %v", u.CreatedAt, u.PasswordChangedAt, clk.stored())
	}
	for _, id := range []string{u.ObjectID, u.UserPrincipalName} {
		got, err := s.FindUser(ctx(t), id)
		must(t, err)
		same(t, "found by "+id, got, u)
	}
	_, err := s.FindUser(ctx(t), "bob@team")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "user", `"bob@team"`)

	for _, dup := range []*wharf.User{
		{ObjectID: u.ObjectID, UserPrincipalName: "x@team", PasswordHash: "h"},
		{ObjectID: "u-2", UserPrincipalName: u.UserPrincipalName, PasswordHash: "h"},
	} {
		wantCode(t, s.CreateUser(ctx(t), dup), wharf.ECONFLICT)
	}
	sp := mkPrincipal(t, s, "ci-bot")
	err = s.CreateUser(ctx(t), &wharf.User{ObjectID: sp.AppID, UserPrincipalName: "c@team", PasswordHash: "h"})
	wantCode(t, err, wharf.ECONFLICT)

	bob := &wharf.User{ObjectID: "u-0000", UserPrincipalName: "bob@team", DisplayName: "Bob", PasswordHash: "h"}
	must(t, s.CreateUser(ctx(t), bob))
	list, err := s.ListUsers(ctx(t))
	must(t, err)
	if len(list) != 2 || list[0].UserPrincipalName != "alice@team" || list[1].UserPrincipalName != "bob@team" {
		t.Fatalf("list = %s, want alice then bob", show(list))
	}

	// Users take role assignments as principals do, named and typed.
	ra := &wharf.RoleAssignment{PrincipalID: u.ObjectID, RoleName: wharf.RoleReader, Scope: "/"}
	must(t, s.CreateRoleAssignment(ctx(t), ra))
	if ra.PrincipalName != "alice@team" || ra.PrincipalType != wharf.PrincipalTypeUser {
		t.Errorf("assignment to a user: %+v", ra)
	}
	spra := &wharf.RoleAssignment{PrincipalID: sp.AppID, RoleName: wharf.RoleReader, Scope: "/"}
	must(t, s.CreateRoleAssignment(ctx(t), spra))
	all, err := s.ListRoleAssignments(ctx(t), wharf.RoleAssignmentFilter{Scope: "/"})
	must(t, err)
	types := map[string]string{}
	for _, a := range all {
		types[a.PrincipalName] = a.PrincipalType
	}
	if types["alice@team"] != wharf.PrincipalTypeUser || types["ci-bot"] != wharf.PrincipalTypeServicePrincipal || len(all) != 2 {
		t.Errorf("listed assignments: %s", show(all))
	}

	// A password reset clears the flag, stamps the time, ends sessions.
	clk.Advance(time.Hour)
	sess := &wharf.Session{IDHash: "h-1", UserID: u.ObjectID, CreatedAt: clk.Now(), LastSeenAt: clk.Now()}
	must(t, s.CreateSession(ctx(t), sess))
	must(t, s.SetUserPassword(ctx(t), u.ObjectID, "$argon2id$h2", false))
	got, err := s.FindUser(ctx(t), u.ObjectID)
	must(t, err)
	if got.PasswordHash != "$argon2id$h2" || got.ForceChangePassword || !got.PasswordChangedAt.Equal(clk.stored()) {
		t.Errorf("after reset: %+v", got)
	}
	_, err = s.FindSession(ctx(t), "h-1")
	wantCode(t, err, wharf.ENOTFOUND)
	wantCode(t, s.SetUserPassword(ctx(t), "ghost", "h", false), wharf.ENOTFOUND)

	// Deleting the user takes its sessions and assignments with it.
	must(t, s.CreateSession(ctx(t), &wharf.Session{IDHash: "h-2", UserID: u.ObjectID, CreatedAt: clk.Now(), LastSeenAt: clk.Now()}))
	must(t, s.DeleteUser(ctx(t), u.ObjectID))
	_, err = s.FindSession(ctx(t), "h-2")
	wantCode(t, err, wharf.ENOTFOUND)
	left, err := s.ListRoleAssignments(ctx(t), wharf.RoleAssignmentFilter{PrincipalID: u.ObjectID})
	must(t, err)
	if len(left) != 0 {
		t.Errorf("assignments outlived their user: %s", show(left))
	}
	wantCode(t, s.DeleteUser(ctx(t), u.ObjectID), wharf.ENOTFOUND)
	_, err = s.FindUser(ctx(t), "alice@team")
	wantCode(t, err, wharf.ENOTFOUND)
}

func testSessions(t *testing.T, open Opener) {
	s := open(t)
	clk := withClock(t, s)
	u := &wharf.User{ObjectID: "u-1", UserPrincipalName: "alice@team", PasswordHash: "h"}
	must(t, s.CreateUser(ctx(t), u))

	start := clk.Now()
	sess := &wharf.Session{IDHash: "hash-a", UserID: u.ObjectID, CreatedAt: start, LastSeenAt: start}
	must(t, s.CreateSession(ctx(t), sess))
	wantCode(t, s.CreateSession(ctx(t), sess), wharf.ECONFLICT)
	wantCode(t, s.CreateSession(ctx(t), &wharf.Session{IDHash: "hash-b", UserID: "ghost", CreatedAt: start, LastSeenAt: start}), wharf.ENOTFOUND)

	later := start.Add(10 * time.Minute)
	must(t, s.TouchSession(ctx(t), "hash-a", later))
	got, err := s.FindSession(ctx(t), "hash-a")
	must(t, err)
	if got.UserID != u.ObjectID || !got.CreatedAt.Equal(start.UTC().Truncate(time.Microsecond)) || !got.LastSeenAt.Equal(later.UTC().Truncate(time.Microsecond)) {
		t.Errorf("session = %+v", got)
	}
	wantCode(t, s.TouchSession(ctx(t), "nope", later), wharf.ENOTFOUND)
	must(t, s.DeleteSession(ctx(t), "hash-a"))
	must(t, s.DeleteSession(ctx(t), "hash-a"))
	_, err = s.FindSession(ctx(t), "hash-a")
	wantCode(t, err, wharf.ENOTFOUND)
}

// testUserGrants checks the one-statement reads that authenticate a user's
// token and a browser session: the user with exactly its own assignments
// in the list's order (an empty list for none), the session with its user
// and the same assignments, ENOTFOUND for a user name, an unknown id, a
// service principal's app id, an unknown or ended session, and an
// assignment removed gone from the next read.
func testUserGrants(t *testing.T, open Opener) {
	s := open(t)
	clk := withClock(t, s)
	carol := &wharf.User{ObjectID: "u-carol", UserPrincipalName: "carol@team", DisplayName: "Carol", PasswordHash: "h"}
	dave := &wharf.User{ObjectID: "u-dave", UserPrincipalName: "dave@team", PasswordHash: "h2", ForceChangePassword: true}
	must(t, s.CreateUser(ctx(t), carol))
	must(t, s.CreateUser(ctx(t), dave))
	sp := mkPrincipal(t, s, "app")
	grant := func(id, role, scope string) *wharf.RoleAssignment { return mkGrant(t, s, id, role, scope) }
	c1 := grant(carol.ObjectID, wharf.RoleReader, "/workspaces/ws")
	c2 := grant(carol.ObjectID, wharf.RoleOwner, "/")
	grant(dave.ObjectID, wharf.RoleOwner, "/workspaces/other")
	grant(sp.AppID, wharf.RoleOwner, "/")
	must(t, s.DeleteRoleAssignment(ctx(t), mustList(t, s, dave.ObjectID)[0].ID))

	for _, tc := range []struct {
		u  *wharf.User
		as []*wharf.RoleAssignment
	}{
		{carol, []*wharf.RoleAssignment{c2, c1}},
		{dave, []*wharf.RoleAssignment{}},
	} {
		g, err := s.FindUserGrants(ctx(t), tc.u.ObjectID)
		must(t, err)
		want, err := s.FindUser(ctx(t), tc.u.ObjectID)
		must(t, err)
		same(t, tc.u.ObjectID+" user", g.User, want)
		if g.Session != nil || g.Assignments == nil {
			t.Errorf("%s: session %+v, assignments %v; want none and a list", tc.u.ObjectID, g.Session, g.Assignments)
		}
		same(t, tc.u.ObjectID+" assignments", g.Assignments, tc.as)
	}
	for _, id := range []string{"ghost", carol.UserPrincipalName, sp.AppID} {
		_, err := s.FindUserGrants(ctx(t), id)
		wantCode(t, err, wharf.ENOTFOUND)
	}

	start := clk.Now()
	must(t, s.CreateSession(ctx(t), &wharf.Session{IDHash: "hash-c", UserID: carol.ObjectID, CreatedAt: start, LastSeenAt: start}))
	must(t, s.TouchSession(ctx(t), "hash-c", start.Add(time.Minute)))
	g, err := s.FindSessionGrants(ctx(t), "hash-c")
	must(t, err)
	sess, err := s.FindSession(ctx(t), "hash-c")
	must(t, err)
	same(t, "session", g.Session, sess)
	same(t, "session's user", g.User.ObjectID, carol.ObjectID)
	same(t, "session's assignments", g.Assignments, []*wharf.RoleAssignment{c2, c1})
	_, err = s.FindSessionGrants(ctx(t), "ghost")
	wantCode(t, err, wharf.ENOTFOUND)

	must(t, s.DeleteRoleAssignment(ctx(t), c2.ID))
	g, err = s.FindSessionGrants(ctx(t), "hash-c")
	must(t, err)
	same(t, "session's assignments after delete", g.Assignments, []*wharf.RoleAssignment{c1})
	g, err = s.FindUserGrants(ctx(t), carol.ObjectID)
	must(t, err)
	same(t, "user's assignments after delete", g.Assignments, []*wharf.RoleAssignment{c1})

	must(t, s.DeleteSession(ctx(t), "hash-c"))
	_, err = s.FindSessionGrants(ctx(t), "hash-c")
	wantCode(t, err, wharf.ENOTFOUND)
}

func mustList(t *testing.T, s wharf.Store, principal string) []*wharf.RoleAssignment {
	t.Helper()
	as, err := s.ListRoleAssignments(ctx(t), wharf.RoleAssignmentFilter{PrincipalID: principal})
	must(t, err)
	return as
}

// mkGrant assigns role at scope to the principal id.
func mkGrant(t *testing.T, s wharf.Store, id, role, scope string) *wharf.RoleAssignment {
	t.Helper()
	ra := &wharf.RoleAssignment{PrincipalID: id, RoleName: role, Scope: scope}
	must(t, s.CreateRoleAssignment(ctx(t), ra))
	return ra
}
