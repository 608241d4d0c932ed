package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/wharfml/wharf"
)

func testPrincipals(t *testing.T, open Opener) {
	s := open(t)
	clk := withClock(t, s)

	sp := &wharf.ServicePrincipal{AppID: "11111111-aaaa", ObjectID: "22222222-bbbb", DisplayName: "ci-bot"}
	must(t, s.CreateServicePrincipal(ctx(t), sp))
	if !sp.CreatedAt.Equal(clk.stored()) {
		t.Errorf("CreatedAt = %v, want %v", sp.CreatedAt, clk.stored())
	}
	for _, id := range []string{sp.AppID, sp.ObjectID, sp.DisplayName} {
		got, err := s.FindServicePrincipal(ctx(t), id)
		must(t, err)
		same(t, "found by "+id, got, sp)
	}
	_, err := s.FindServicePrincipal(ctx(t), "nobody")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "service principal", `"nobody"`)

	for _, dup := range []*wharf.ServicePrincipal{
		{AppID: sp.AppID, ObjectID: "o2", DisplayName: "n2"},
		{AppID: "a2", ObjectID: sp.ObjectID, DisplayName: "n2"},
		{AppID: "a2", ObjectID: "o2", DisplayName: sp.DisplayName},
	} {
		err := s.CreateServicePrincipal(ctx(t), dup)
		wantCode(t, err, wharf.ECONFLICT)
		wantMessage(t, err, "already exists")
	}

	// An id match beats a display-name match on another principal.
	other := &wharf.ServicePrincipal{AppID: "33333333-cccc", ObjectID: "44444444-dddd", DisplayName: sp.AppID + "-x"}
	must(t, s.CreateServicePrincipal(ctx(t), other))
	tricky := &wharf.ServicePrincipal{AppID: "55555555-eeee", ObjectID: "66666666-ffff", DisplayName: other.ObjectID}
	must(t, s.CreateServicePrincipal(ctx(t), tricky))
	got, err := s.FindServicePrincipal(ctx(t), other.ObjectID)
	must(t, err)
	if got.AppID != other.AppID {
		t.Errorf("lookup by object id found %q, want %q", got.AppID, other.AppID)
	}

	list, err := s.ListServicePrincipals(ctx(t))
	must(t, err)
	if len(list) != 3 {
		t.Fatalf("list: %d principals", len(list))
	}
	// Ordered by display name.
	want := []string{sp.AppID + "-x", tricky.DisplayName, "ci-bot"}
	var names []string
	for _, p := range list {
		names = append(names, p.DisplayName)
	}
	same(t, "order", names, want)

	must(t, s.DeleteServicePrincipal(ctx(t), sp.AppID))
	_, err = s.FindServicePrincipal(ctx(t), sp.AppID)
	wantCode(t, err, wharf.ENOTFOUND)
	err = s.DeleteServicePrincipal(ctx(t), sp.AppID)
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, sp.AppID)
}

func testDeletePrincipalCascade(t *testing.T, open Opener) {
	s := open(t)
	mkWorkspace(t, s, "ws")
	a := mkPrincipal(t, s, "a")
	b := mkPrincipal(t, s, "b")
	for i, sp := range []*wharf.ServicePrincipal{a, b} {
		for _, k := range []string{"k1", "k2"} {
			must(t, s.AddCredential(ctx(t), &wharf.PasswordCredential{KeyID: sp.AppID + k,
				PrincipalID: sp.AppID, Hint: "h", SecretHash: "x",
				StartDate: time.Unix(int64(i), 0), EndDate: time.Unix(1e9, 0)}, false))
		}
		for _, sc := range []string{"/", "/workspaces/ws"} {
			must(t, s.CreateRoleAssignment(ctx(t), &wharf.RoleAssignment{PrincipalID: sp.AppID,
				RoleName: wharf.RoleContributor, Scope: sc}))
		}
	}
	must(t, s.DeleteServicePrincipal(ctx(t), a.AppID))

	ras, err := s.ListRoleAssignments(ctx(t), wharf.RoleAssignmentFilter{})
	must(t, err)
	if len(ras) != 2 {
		t.Fatalf("%d role assignments left, want b's 2", len(ras))
	}
	for _, ra := range ras {
		if ra.PrincipalID != b.AppID {
			t.Errorf("assignment of %s survived", ra.PrincipalID)
		}
	}
	_, err = s.ListCredentials(ctx(t), a.AppID)
	wantCode(t, err, wharf.ENOTFOUND)
	creds, err := s.ListCredentials(ctx(t), b.AppID)
	must(t, err)
	if len(creds) != 2 {
		t.Errorf("b has %d credentials", len(creds))
	}

	// Recreated under the same id, the principal starts clean.
	mkPrincipal(t, s, "a")
	creds, err = s.ListCredentials(ctx(t), a.AppID)
	must(t, err)
	ras, err = s.ListRoleAssignments(ctx(t), wharf.RoleAssignmentFilter{PrincipalID: a.AppID})
	must(t, err)
	if len(creds) != 0 || len(ras) != 0 {
		t.Errorf("recreated principal has %d credentials, %d assignments", len(creds), len(ras))
	}
}

func testCredentials(t *testing.T, open Opener) {
	s := open(t)
	sp := mkPrincipal(t, s, "ci")
	other := mkPrincipal(t, s, "other")
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	cred := func(key string, i int) *wharf.PasswordCredential {
		return &wharf.PasswordCredential{KeyID: key, PrincipalID: sp.AppID, Hint: key[:2],
			SecretHash: "hash-" + key, StartDate: t0.Add(time.Duration(i) * time.Hour),
			EndDate: t0.AddDate(1, 0, 0)}
	}

	err := s.AddCredential(ctx(t), &wharf.PasswordCredential{KeyID: "x", PrincipalID: "ghost"}, false)
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, `"ghost"`)
	_, err = s.ListCredentials(ctx(t), "ghost")
	wantCode(t, err, wharf.ENOTFOUND)

	c1, c2 := cred("k1-aaaa", 1), cred("k2-bbbb", 2)
	must(t, s.AddCredential(ctx(t), c1, false))
	must(t, s.AddCredential(ctx(t), c2, false))
	must(t, s.AddCredential(ctx(t), &wharf.PasswordCredential{KeyID: "o1", PrincipalID: other.AppID,
		StartDate: t0, EndDate: t0}, false))
	list, err := s.ListCredentials(ctx(t), sp.AppID)
	must(t, err)
	same(t, "appended credentials", list, []*wharf.PasswordCredential{c1, c2})

	err = s.AddCredential(ctx(t), cred("k1-aaaa", 5), false)
	wantCode(t, err, wharf.ECONFLICT)
	wantMessage(t, err, `"k1-aaaa"`)

	c3 := cred("k3-cccc", 3)
	must(t, s.AddCredential(ctx(t), c3, true))
	list, err = s.ListCredentials(ctx(t), sp.AppID)
	must(t, err)
	same(t, "after replace", list, []*wharf.PasswordCredential{c3})
	list, err = s.ListCredentials(ctx(t), other.AppID)
	must(t, err)
	if len(list) != 1 {
		t.Errorf("replace touched another principal: %d credentials", len(list))
	}

	err = s.DeleteCredential(ctx(t), sp.AppID, "k1-aaaa")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, `"k1-aaaa"`)
	// Another principal's key cannot be deleted through this one.
	err = s.DeleteCredential(ctx(t), sp.AppID, "o1")
	wantCode(t, err, wharf.ENOTFOUND)
	err = s.DeleteCredential(ctx(t), "ghost", "k3-cccc")
	wantCode(t, err, wharf.ENOTFOUND)
	must(t, s.DeleteCredential(ctx(t), sp.AppID, "k3-cccc"))
	list, err = s.ListCredentials(ctx(t), sp.AppID)
	must(t, err)
	if len(list) != 0 {
		t.Errorf("%d credentials after delete", len(list))
	}
}

func testRoleAssignments(t *testing.T, open Opener) {
	s := open(t)
	clk := withClock(t, s)
	alice := mkPrincipal(t, s, "alice")
	bob := mkPrincipal(t, s, "bob")

	err := s.CreateRoleAssignment(ctx(t), &wharf.RoleAssignment{PrincipalID: "ghost",
		RoleName: wharf.RoleReader, Scope: "/"})
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, `"ghost"`)

	a := &wharf.RoleAssignment{PrincipalID: alice.AppID, RoleName: wharf.RoleOwner, Scope: "/"}
	must(t, s.CreateRoleAssignment(ctx(t), a))
	if _, err := uuid.Parse(a.ID); err != nil {
		t.Errorf("generated ID %q: %v", a.ID, err)
	}
	if a.PrincipalName != "alice" || !a.CreatedAt.Equal(clk.stored()) {
		t.Errorf("filled fields: %+v", a)
	}

	err = s.CreateRoleAssignment(ctx(t), &wharf.RoleAssignment{PrincipalID: alice.AppID,
		RoleName: wharf.RoleOwner, Scope: "/"})
	wantCode(t, err, wharf.ECONFLICT)
	wantMessage(t, err, `"Owner"`)
	err = s.CreateRoleAssignment(ctx(t), &wharf.RoleAssignment{ID: a.ID, PrincipalID: bob.AppID,
		RoleName: wharf.RoleOwner, Scope: "/"})
	wantCode(t, err, wharf.ECONFLICT)

	given := &wharf.RoleAssignment{ID: "fixed-id", PrincipalID: bob.AppID,
		RoleName: wharf.RoleReader, Scope: "/workspaces/ws"}
	must(t, s.CreateRoleAssignment(ctx(t), given))
	if given.ID != "fixed-id" {
		t.Errorf("given ID replaced by %q", given.ID)
	}
	mk := func(sp *wharf.ServicePrincipal, role, scope string) *wharf.RoleAssignment {
		ra := &wharf.RoleAssignment{PrincipalID: sp.AppID, RoleName: role, Scope: scope}
		must(t, s.CreateRoleAssignment(ctx(t), ra))
		return ra
	}
	b1 := mk(bob, wharf.RoleContributor, "/workspaces/ws")
	a1 := mk(alice, wharf.RoleReader, "/workspaces/ws")
	b2 := mk(bob, wharf.RoleDataScientist, "/workspaces/aa")

	all, err := s.ListRoleAssignments(ctx(t), wharf.RoleAssignmentFilter{})
	must(t, err)
	// Scope, then role, then principal.
	same(t, "all", all, []*wharf.RoleAssignment{a, b2, b1, a1, given})

	for _, tc := range []struct {
		f    wharf.RoleAssignmentFilter
		want []*wharf.RoleAssignment
	}{
		{wharf.RoleAssignmentFilter{PrincipalID: bob.AppID}, []*wharf.RoleAssignment{b2, b1, given}},
		{wharf.RoleAssignmentFilter{Scope: "/workspaces/ws"}, []*wharf.RoleAssignment{b1, a1, given}},
		{wharf.RoleAssignmentFilter{RoleName: wharf.RoleReader}, []*wharf.RoleAssignment{a1, given}},
		{wharf.RoleAssignmentFilter{PrincipalID: alice.AppID, Scope: "/workspaces/ws", RoleName: wharf.RoleReader}, []*wharf.RoleAssignment{a1}},
		{wharf.RoleAssignmentFilter{PrincipalID: "ghost"}, []*wharf.RoleAssignment{}},
	} {
		got, err := s.ListRoleAssignments(ctx(t), tc.f)
		must(t, err)
		same(t, "filter", got, tc.want)
	}

	must(t, s.DeleteRoleAssignment(ctx(t), b1.ID))
	err = s.DeleteRoleAssignment(ctx(t), b1.ID)
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "role assignment", b1.ID)
	got, err := s.ListRoleAssignments(ctx(t), wharf.RoleAssignmentFilter{PrincipalID: bob.AppID})
	must(t, err)
	same(t, "after delete", got, []*wharf.RoleAssignment{b2, given})
}

// testFirstOwnerRace starts several first Owners at once on an empty store,
// as servers starting together do: exactly one is created, with its role
// and credential, and the rest store nothing.
func testFirstOwnerRace(t *testing.T, open Opener) {
	s := open(t)
	const n = 8
	created := make([]bool, n)
	errs := make([]error, n)
	sps := make([]*wharf.ServicePrincipal, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		sps[i] = &wharf.ServicePrincipal{AppID: fmt.Sprintf("app-%d", i), ObjectID: fmt.Sprintf("obj-%d", i), DisplayName: "first-owner"}
		cred := &wharf.PasswordCredential{KeyID: fmt.Sprintf("key-%d", i), Hint: "abc", SecretHash: "hash",
			StartDate: time.Now(), EndDate: time.Now().AddDate(1, 0, 0)}
		wg.Go(func() {
			<-start
			created[i], errs[i] = s.CreateFirstOwner(ctx(t), sps[i], cred)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i := range n {
		must(t, errs[i])
		if created[i] {
			if winner >= 0 {
				t.Fatalf("callers %d and %d both created the first owner", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no caller created the first owner")
	}
	list, err := s.ListServicePrincipals(ctx(t))
	must(t, err)
	if len(list) != 1 || list[0].AppID != sps[winner].AppID {
		t.Fatalf("principals after the race: %+v, want only %s", list, sps[winner].AppID)
	}
	creds, err := s.ListCredentials(ctx(t), sps[winner].AppID)
	must(t, err)
	if len(creds) != 1 || creds[0].KeyID != fmt.Sprintf("key-%d", winner) {
		t.Fatalf("credentials of the first owner: %+v", creds)
	}
	ras, err := s.ListRoleAssignments(ctx(t), wharf.RoleAssignmentFilter{})
	must(t, err)
	if len(ras) != 1 || ras[0].PrincipalID != sps[winner].AppID || ras[0].RoleName != wharf.RoleOwner || ras[0].Scope != wharf.ServerScope {
		t.Fatalf("role assignments after the race: %+v", ras)
	}
	// Once there is a principal, there is no first owner to create.
	again, err := s.CreateFirstOwner(ctx(t), &wharf.ServicePrincipal{AppID: "late", ObjectID: "late", DisplayName: "late"},
		&wharf.PasswordCredential{KeyID: "late", SecretHash: "h", StartDate: time.Now(), EndDate: time.Now().AddDate(1, 0, 0)})
	if err != nil || again {
		t.Fatalf("first owner on a store with one: created=%v err=%v", again, err)
	}
}

// testCallerGrants checks the one read of a principal and its role
// assignments that authenticates a token: a service principal by app id,
// a user by object id, each with exactly its own assignments in the list's
// order, none for a principal without any, ENOTFOUND for an unknown id or
// a name, and an assignment removed is gone from the next read.
func testCallerGrants(t *testing.T, open Opener) {
	s := open(t)
	withClock(t, s)
	alice := mkPrincipal(t, s, "alice")
	bob := mkPrincipal(t, s, "bob")
	lone := mkPrincipal(t, s, "lone")
	u := &wharf.User{ObjectID: "u-carol", UserPrincipalName: "carol@team", DisplayName: "Carol", PasswordHash: "h"}
	must(t, s.CreateUser(ctx(t), u))
	grant := func(id, role, scope string) *wharf.RoleAssignment { return mkGrant(t, s, id, role, scope) }
	a1 := grant(alice.AppID, wharf.RoleReader, "/workspaces/ws")
	a2 := grant(alice.AppID, wharf.RoleOwner, "/")
	grant(bob.AppID, wharf.RoleOwner, "/")
	c1 := grant(u.ObjectID, wharf.RoleDataScientist, "/workspaces/ws")

	for _, tc := range []struct {
		id   string
		want wharf.Caller
		as   []*wharf.RoleAssignment
	}{
		{alice.AppID, wharf.Caller{PrincipalID: alice.AppID, DisplayName: "alice"}, []*wharf.RoleAssignment{a2, a1}},
		{lone.AppID, wharf.Caller{PrincipalID: lone.AppID, DisplayName: "lone"}, []*wharf.RoleAssignment{}},
		{u.ObjectID, wharf.Caller{PrincipalID: u.ObjectID, DisplayName: "carol@team", User: true}, []*wharf.RoleAssignment{c1}},
	} {
		g, err := s.FindCallerGrants(ctx(t), tc.id)
		must(t, err)
		if *g.Caller != tc.want {
			t.Errorf("%s: caller %+v, want %+v", tc.id, *g.Caller, tc.want)
		}
		if g.Assignments == nil {
			t.Errorf("%s: nil assignments, want a list", tc.id)
		}
		same(t, tc.id+" assignments", g.Assignments, tc.as)
	}
	for _, id := range []string{"ghost", "alice", alice.ObjectID, u.UserPrincipalName} {
		_, err := s.FindCallerGrants(ctx(t), id)
		wantCode(t, err, wharf.ENOTFOUND)
	}
	must(t, s.DeleteRoleAssignment(ctx(t), a2.ID))
	g, err := s.FindCallerGrants(ctx(t), alice.AppID)
	must(t, err)
	same(t, "after delete", g.Assignments, []*wharf.RoleAssignment{a1})
}
