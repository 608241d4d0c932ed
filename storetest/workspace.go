package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/wharfml/wharf"
)

func testWorkspaces(t *testing.T, open Opener) {
	s := open(t)
	clk := withClock(t, s)

	_, err := s.FindWorkspace(ctx(t), "ws1")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "workspace", `"ws1"`)

	w := &wharf.Workspace{
		Name:                "ws1",
		Description:         "first",
		ResourceGroup:       "rg",
		ApplicationInsights: "ai-ws1",
		StorageAccount:      "st",
		Tags:                map[string]string{"team": "ml", "env": "dev"},
	}
	must(t, w.Validate())
	created, err := s.PutWorkspace(ctx(t), w)
	must(t, err)
	if !created {
		t.Fatal("first put: created = false")
	}
	if !w.CreatedAt.Equal(clk.stored()) || !w.UpdatedAt.Equal(w.CreatedAt) {
		t.Fatalf("timestamps after create: %v / %v, want %v", w.CreatedAt, w.UpdatedAt, clk.stored())
	}
	wantUTC(t, "CreatedAt", w.CreatedAt)
	got, err := s.FindWorkspace(ctx(t), "ws1")
	must(t, err)
	same(t, "found workspace", got, w)

	// Update: mutable fields change, CreatedAt stays.
	clk.Advance(90 * time.Second)
	created0 := w.CreatedAt
	w2 := &wharf.Workspace{Name: "ws1", Description: "second", Location: "eu"}
	must(t, w2.Validate())
	created, err = s.PutWorkspace(ctx(t), w2)
	must(t, err)
	if created {
		t.Fatal("second put: created = true")
	}
	if !w2.CreatedAt.Equal(created0) {
		t.Errorf("CreatedAt changed on update: %v, want %v", w2.CreatedAt, created0)
	}
	if !w2.UpdatedAt.Equal(clk.stored()) {
		t.Errorf("UpdatedAt = %v, want %v", w2.UpdatedAt, clk.stored())
	}
	got, err = s.FindWorkspace(ctx(t), "ws1")
	must(t, err)
	same(t, "updated workspace", got, w2)
	if len(got.Tags) != 0 || got.Tags == nil {
		t.Errorf("tags after update = %#v, want empty map", got.Tags)
	}

	// A nil tags map reads back as an empty one.
	created, err = s.PutWorkspace(ctx(t), &wharf.Workspace{Name: "ws0", DisplayName: "zero"})
	must(t, err)
	if !created {
		t.Fatal("ws0: created = false")
	}
	got, err = s.FindWorkspace(ctx(t), "ws0")
	must(t, err)
	if got.Tags == nil {
		t.Error("nil tags read back as nil map")
	}

	list, err := s.ListWorkspaces(ctx(t))
	must(t, err)
	if len(list) != 2 || list[0].Name != "ws0" || list[1].Name != "ws1" {
		t.Fatalf("list = %+v", list)
	}
	same(t, "listed workspace", list[1], w2)

	must(t, s.DeleteWorkspace(ctx(t), "ws1"))
	_, err = s.FindWorkspace(ctx(t), "ws1")
	wantCode(t, err, wharf.ENOTFOUND)
	err = s.DeleteWorkspace(ctx(t), "ws1")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, `"ws1"`)

	list, err = s.ListWorkspaces(ctx(t))
	must(t, err)
	if len(list) != 1 {
		t.Fatalf("after delete: %d workspaces", len(list))
	}
}

// testWorkspaceOrdering pins list order to byte order on every engine,
// whatever the database's locale.
func testWorkspaceOrdering(t *testing.T, open Opener) {
	s := open(t)
	for _, n := range []string{"b", "a_1", "B", "a-1", "A", "a1"} {
		mkWorkspace(t, s, n)
	}
	list, err := s.ListWorkspaces(ctx(t))
	must(t, err)
	var names []string
	for _, w := range list {
		names = append(names, w.Name)
	}
	same(t, "order", names, []string{"A", "B", "a-1", "a1", "a_1", "b"})
}

// testTimestamps checks that every timestamp the store keeps comes back
// exactly: UTC, microseconds, whatever zone and precision went in.
func testTimestamps(t *testing.T, open Opener) {
	s := open(t)
	clk := withClock(t, s)
	want := clk.stored()
	if want.Nanosecond()%1000 != 0 || clockStart.Nanosecond()%1000 == 0 {
		t.Fatal("clock setup")
	}
	w := mkWorkspace(t, s, "ws")
	c := mkCompute(t, s, "ws", "cpu")
	d := mkDatastore(t, s, "ws", "store", true)
	sp := mkPrincipal(t, s, "ci")
	a := &wharf.RoleAssignment{PrincipalID: sp.AppID, RoleName: wharf.RoleReader, Scope: "/"}
	must(t, s.CreateRoleAssignment(ctx(t), a))
	sec, err := s.SetSecret(ctx(t), "/", "k", []byte("v"), "")
	must(t, err)
	for what, tm := range map[string]time.Time{
		"workspace": w.CreatedAt, "compute": c.CreatedAt, "datastore": d.CreatedAt,
		"principal": sp.CreatedAt, "role assignment": a.CreatedAt, "secret": sec.CreatedAt,
	} {
		if !tm.Equal(want) {
			t.Errorf("%s CreatedAt = %v, want %v", what, tm, want)
		}
		wantUTC(t, what+" CreatedAt", tm)
	}

	gw, err := s.FindWorkspace(ctx(t), "ws")
	must(t, err)
	gc, err := s.FindCompute(ctx(t), "ws", "cpu")
	must(t, err)
	gd, err := s.FindDatastore(ctx(t), "ws", "store")
	must(t, err)
	gsp, err := s.FindServicePrincipal(ctx(t), sp.AppID)
	must(t, err)
	ras, err := s.ListRoleAssignments(ctx(t), wharf.RoleAssignmentFilter{})
	must(t, err)
	gs, err := s.GetSecret(ctx(t), "/", "k", "")
	must(t, err)
	if len(ras) != 1 {
		t.Fatalf("%d role assignments", len(ras))
	}
	for what, tm := range map[string]time.Time{
		"workspace": gw.CreatedAt, "workspace updated": gw.UpdatedAt,
		"compute": gc.CreatedAt, "compute updated": gc.UpdatedAt,
		"datastore": gd.CreatedAt, "datastore updated": gd.UpdatedAt,
		"principal": gsp.CreatedAt, "role assignment": ras[0].CreatedAt, "secret": gs.CreatedAt,
	} {
		if !tm.Equal(want) {
			t.Errorf("stored %s = %v, want %v", what, tm, want)
		}
		wantUTC(t, "stored "+what, tm)
	}

	// Caller-supplied times: credential dates and audit times.
	start := time.Date(2031, 12, 31, 23, 59, 59, 999999999, time.FixedZone("X", -7*3600))
	cr := &wharf.PasswordCredential{KeyID: "k1", PrincipalID: sp.AppID, Hint: "abc", SecretHash: "h",
		StartDate: start, EndDate: start.AddDate(1, 0, 0)}
	must(t, s.AddCredential(ctx(t), cr, false))
	creds, err := s.ListCredentials(ctx(t), sp.AppID)
	must(t, err)
	if len(creds) != 1 {
		t.Fatalf("%d credentials", len(creds))
	}
	wantStart := start.UTC().Truncate(time.Microsecond)
	if !creds[0].StartDate.Equal(wantStart) || !cr.StartDate.Equal(wantStart) {
		t.Errorf("credential start = %v (passed struct %v), want %v", creds[0].StartDate, cr.StartDate, wantStart)
	}
	same(t, "credential", creds[0], cr)

	ev := &wharf.AuditEvent{Time: start, Action: "x"}
	must(t, s.RecordAuditEvent(ctx(t), ev))
	evs, err := s.ListAuditEvents(ctx(t), wharf.AuditFilter{})
	must(t, err)
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	same(t, "audit event", evs[0], ev)
	if !evs[0].Time.Equal(wantStart) {
		t.Errorf("audit time = %v, want %v", evs[0].Time, wantStart)
	}
}

func testComputes(t *testing.T, open Opener) {
	s := open(t)
	clk := withClock(t, s)

	c := &wharf.Compute{Workspace: "nows", Name: "cpu"}
	must(t, c.Validate())
	_, err := s.PutCompute(ctx(t), c)
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "workspace", `"nows"`)
	_, err = s.ListComputes(ctx(t), "nows")
	wantCode(t, err, wharf.ENOTFOUND)

	mkWorkspace(t, s, "ws")
	mkWorkspace(t, s, "other")
	list, err := s.ListComputes(ctx(t), "ws")
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("empty workspace lists %d computes", len(list))
	}

	c = &wharf.Compute{Workspace: "ws", Name: "gpu", Size: "Standard_NC6", MinInstances: 1,
		MaxInstances: 4, Tier: "LowPriority", IdleTimeBeforeScaleDown: 300, Location: "local",
		Description: "gpus", Tags: map[string]string{"k": "v"}}
	must(t, c.Validate())
	created, err := s.PutCompute(ctx(t), c)
	must(t, err)
	if !created {
		t.Fatal("created = false")
	}
	got, err := s.FindCompute(ctx(t), "ws", "gpu")
	must(t, err)
	same(t, "found compute", got, c)

	_, err = s.FindCompute(ctx(t), "other", "gpu")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "compute", `"gpu"`, `"other"`)

	clk.Advance(time.Hour)
	createdAt := c.CreatedAt
	c2 := &wharf.Compute{Workspace: "ws", Name: "gpu", MaxInstances: 8}
	must(t, c2.Validate())
	created, err = s.PutCompute(ctx(t), c2)
	must(t, err)
	if created {
		t.Fatal("update: created = true")
	}
	if !c2.CreatedAt.Equal(createdAt) || !c2.UpdatedAt.Equal(clk.stored()) {
		t.Errorf("update timestamps %v / %v", c2.CreatedAt, c2.UpdatedAt)
	}
	got, err = s.FindCompute(ctx(t), "ws", "gpu")
	must(t, err)
	same(t, "updated compute", got, c2)

	mkCompute(t, s, "ws", "cpu")
	mkCompute(t, s, "other", "gpu")
	list, err = s.ListComputes(ctx(t), "ws")
	must(t, err)
	if len(list) != 2 || list[0].Name != "cpu" || list[1].Name != "gpu" {
		t.Fatalf("list = %+v", list)
	}
	same(t, "listed compute", list[1], c2)

	ray := &wharf.Compute{Workspace: "ws", Name: "ray", Type: "Ray", Address: "http://head:8265/"}
	must(t, ray.Validate())
	_, err = s.PutCompute(ctx(t), ray)
	must(t, err)
	got, err = s.FindCompute(ctx(t), "ws", "ray")
	must(t, err)
	if got.Type != wharf.ComputeTypeRay || got.Address != "http://head:8265" {
		t.Errorf("ray compute read back as type %q address %q", got.Type, got.Address)
	}
	if got.Sandbox == nil || !*got.Sandbox {
		t.Errorf("ray compute's sandbox read back as %v, want true, the default", got.Sandbox)
	}
	g, w := *got, *ray
	g.Sandbox, w.Sandbox = nil, nil
	same(t, "ray compute", g, w)
	unsandboxed := false
	ray.Sandbox = &unsandboxed
	_, err = s.PutCompute(ctx(t), ray)
	must(t, err)
	got, err = s.FindCompute(ctx(t), "ws", "ray")
	must(t, err)
	if got.Sandbox == nil || *got.Sandbox {
		t.Errorf("ray compute put with sandbox: false read back as %v", got.Sandbox)
	}
	sandboxed := true
	for _, paths := range [][]string{{"/mnt/datasets", "/srv/shared"}, nil} {
		ray.Sandbox, ray.SandboxReadOnlyPaths = &sandboxed, paths
		_, err = s.PutCompute(ctx(t), ray)
		must(t, err)
		got, err = s.FindCompute(ctx(t), "ws", "ray")
		must(t, err)
		if !slices.Equal(got.SandboxReadOnlyPaths, paths) || (paths == nil) != (got.SandboxReadOnlyPaths == nil) {
			t.Errorf("ray compute put with sandbox_read_only_paths %q read back as %q", paths, got.SandboxReadOnlyPaths)
		}
	}
	must(t, s.DeleteCompute(ctx(t), "ws", "ray"))

	must(t, s.DeleteCompute(ctx(t), "ws", "gpu"))
	_, err = s.FindCompute(ctx(t), "ws", "gpu")
	wantCode(t, err, wharf.ENOTFOUND)
	err = s.DeleteCompute(ctx(t), "ws", "gpu")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, `"gpu"`, `"ws"`)
	if _, err := s.FindCompute(ctx(t), "other", "gpu"); err != nil {
		t.Fatalf("other workspace's compute: %v", err)
	}
}

func testDatastores(t *testing.T, open Opener) {
	s := open(t)
	clk := withClock(t, s)

	d := &wharf.Datastore{Workspace: "nows", Name: "blobs"}
	must(t, d.Validate())
	_, err := s.PutDatastore(ctx(t), d)
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "workspace", `"nows"`)
	_, err = s.ListDatastores(ctx(t), "nows")
	wantCode(t, err, wharf.ENOTFOUND)

	mkWorkspace(t, s, "ws")
	d = &wharf.Datastore{Workspace: "ws", Name: "blobs", Type: wharf.DatastoreS3, AccountName: "acct",
		ContainerName: "c", Endpoint: "http://minio:9000", Region: "eu-west-1", PathStyle: true,
		Credentials: wharf.CredentialsAccessKey, Description: "d", Tags: map[string]string{"a": "b"}}
	must(t, d.Validate())
	created, err := s.PutDatastore(ctx(t), d)
	must(t, err)
	if !created {
		t.Fatal("created = false")
	}
	got, err := s.FindDatastore(ctx(t), "ws", "blobs")
	must(t, err)
	same(t, "found datastore", got, d)

	clk.Advance(time.Minute)
	d2 := &wharf.Datastore{Workspace: "ws", Name: "blobs", Type: wharf.DatastoreAzureBlob, AccountName: "acct",
		ContainerName: "c", Endpoint: "http://127.0.0.1:10000/acct", Protocol: "http", Credentials: wharf.CredentialsSASToken}
	must(t, d2.Validate())
	created, err = s.PutDatastore(ctx(t), d2)
	must(t, err)
	if created {
		t.Fatal("update: created = true")
	}
	if !d2.CreatedAt.Equal(d.CreatedAt) || !d2.UpdatedAt.Equal(clk.stored()) {
		t.Errorf("update timestamps %v / %v", d2.CreatedAt, d2.UpdatedAt)
	}
	got, err = s.FindDatastore(ctx(t), "ws", "blobs")
	must(t, err)
	same(t, "updated datastore", got, d2)

	mkDatastore(t, s, "ws", "a", false)
	list, err := s.ListDatastores(ctx(t), "ws")
	must(t, err)
	if len(list) != 2 || list[0].Name != "a" || list[1].Name != "blobs" {
		t.Fatalf("list = %+v", list)
	}

	_, err = s.FindDatastore(ctx(t), "ws", "nope")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "datastore", `"nope"`, `"ws"`)
	must(t, s.DeleteDatastore(ctx(t), "ws", "blobs"))
	err = s.DeleteDatastore(ctx(t), "ws", "blobs")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "datastore", `"blobs"`)
}

func testDefaultDatastore(t *testing.T, open Opener) {
	s := open(t)
	mkWorkspace(t, s, "ws")
	mkWorkspace(t, s, "ws2")
	mkDatastore(t, s, "ws2", "d2", true)

	defaults := func(ws string) []string {
		t.Helper()
		list, err := s.ListDatastores(ctx(t), ws)
		must(t, err)
		out := []string{}
		for _, d := range list {
			if d.IsDefault {
				out = append(out, d.Name)
			}
		}
		return out
	}
	mkDatastore(t, s, "ws", "a", true)
	same(t, "defaults", defaults("ws"), []string{"a"})
	mkDatastore(t, s, "ws", "b", true)
	same(t, "defaults after b", defaults("ws"), []string{"b"})
	mkDatastore(t, s, "ws", "c", false)
	same(t, "defaults after non-default c", defaults("ws"), []string{"b"})
	// Re-putting the default as default keeps it.
	mkDatastore(t, s, "ws", "b", true)
	same(t, "defaults after re-put b", defaults("ws"), []string{"b"})
	mkDatastore(t, s, "ws", "a", true)
	same(t, "defaults after a again", defaults("ws"), []string{"a"})
	mkDatastore(t, s, "ws", "a", false)
	same(t, "defaults after unsetting a", defaults("ws"), []string{})
	same(t, "other workspace untouched", defaults("ws2"), []string{"d2"})
}

func testDeleteWorkspaceCascade(t *testing.T, open Opener) {
	s := open(t)
	// Names chosen to catch prefix and LIKE-wildcard mistakes: "w_1"
	// matches "wx1" under LIKE, "w" is a prefix of "w2".
	for _, n := range []string{"w", "w2", "w_1", "wx1", "W"} {
		mkWorkspace(t, s, n)
		mkCompute(t, s, n, "cpu")
		mkDatastore(t, s, n, "store", true)
	}
	sp := mkPrincipal(t, s, "ci")
	scopes := []string{
		"/", "/workspaces/w", "/workspaces/w/sub", "/workspaces/w2", "/workspaces/w_1",
		"/workspaces/wx1", "/workspaces/wx1/sub", "/workspaces/W", "/workspaces/w2/x",
	}
	for _, sc := range scopes {
		_, err := s.SetSecret(ctx(t), sc, "key", []byte("v"), "")
		must(t, err)
		must(t, s.CreateRoleAssignment(ctx(t), &wharf.RoleAssignment{PrincipalID: sp.AppID,
			RoleName: wharf.RoleReader, Scope: sc}))
	}

	check := func(deleted map[string]bool) {
		t.Helper()
		for _, sc := range scopes {
			_, err := s.GetSecret(ctx(t), sc, "key", "")
			ras, lerr := s.ListRoleAssignments(ctx(t), wharf.RoleAssignmentFilter{Scope: sc})
			must(t, lerr)
			if deleted[sc] {
				wantCode(t, err, wharf.ENOTFOUND)
				if len(ras) != 0 {
					t.Errorf("role assignment at %s survived", sc)
				}
			} else {
				if err != nil {
					t.Errorf("secret at %s: %v", sc, err)
				}
				if len(ras) != 1 {
					t.Errorf("role assignment at %s: %d", sc, len(ras))
				}
			}
		}
	}

	must(t, s.DeleteWorkspace(ctx(t), "w"))
	check(map[string]bool{"/workspaces/w": true, "/workspaces/w/sub": true})
	_, err := s.FindCompute(ctx(t), "w", "cpu")
	wantCode(t, err, wharf.ENOTFOUND)
	_, err = s.FindDatastore(ctx(t), "w", "store")
	wantCode(t, err, wharf.ENOTFOUND)

	must(t, s.DeleteWorkspace(ctx(t), "w_1"))
	check(map[string]bool{"/workspaces/w": true, "/workspaces/w/sub": true, "/workspaces/w_1": true})

	for _, n := range []string{"w2", "wx1", "W"} {
		if _, err := s.FindCompute(ctx(t), n, "cpu"); err != nil {
			t.Errorf("compute of %s: %v", n, err)
		}
		if _, err := s.FindDatastore(ctx(t), n, "store"); err != nil {
			t.Errorf("datastore of %s: %v", n, err)
		}
	}

	// Recreating the workspace shows nothing of the old one.
	mkWorkspace(t, s, "w")
	cs, err := s.ListComputes(ctx(t), "w")
	must(t, err)
	ds, err := s.ListDatastores(ctx(t), "w")
	must(t, err)
	if len(cs) != 0 || len(ds) != 0 {
		t.Errorf("recreated workspace has %d computes and %d datastores", len(cs), len(ds))
	}
	secs, err := s.ListSecrets(ctx(t), "/workspaces/w")
	must(t, err)
	if len(secs) != 0 {
		t.Errorf("recreated workspace has %d secrets", len(secs))
	}
}
