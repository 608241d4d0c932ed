// Package storetest is the conformance suite for wharf.Store. Every engine
// runs the same tests, so SQLite and PostgreSQL cannot drift apart in
// behaviour: error codes, cascades, ordering, timestamps and concurrency.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/seal"
	"github.com/wharfml/wharf/sqlstore"
)

// Opener returns a fresh, empty, migrated store with a working Sealer (see
// NewSealer). It registers the store's cleanup on t itself. Each subtest
// opens its own store, so subtests cannot see each other's rows.
type Opener func(t *testing.T) wharf.Store

// Run runs the whole suite against the stores open returns.
func Run(t *testing.T, open func(t *testing.T) wharf.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"Ping", testPing},
		{"Workspaces", testWorkspaces},
		{"WorkspaceOrdering", testWorkspaceOrdering},
		{"Timestamps", testTimestamps},
		{"Computes", testComputes},
		{"Datastores", testDatastores},
		{"DefaultDatastore", testDefaultDatastore},
		{"DeleteWorkspaceCascade", testDeleteWorkspaceCascade},
		{"Principals", testPrincipals},
		{"DeletePrincipalCascade", testDeletePrincipalCascade},
		{"Credentials", testCredentials},
		{"FederatedCredentials", testFederatedCredentials},
		{"RoleAssignments", testRoleAssignments},
		{"FirstOwnerRace", testFirstOwnerRace},
		{"CallerGrants", testCallerGrants},
		{"Users", testUsers},
		{"Sessions", testSessions},
		{"UserGrants", testUserGrants},
		{"Secrets", testSecrets},
		{"SecretsSealed", testSecretsSealed},
		{"SecretsWithoutKey", testSecretsWithoutKey},
		{"SecretsSameMicrosecond", testSecretsSameMicrosecond},
		{"Audit", testAudit},
		{"AuditLimit", testAuditLimit},
		{"AuditConcurrent", testAuditConcurrent},
		{"AuditWithWrite", testAuditWithWrite},
		{"Settings", testSettings},
		{"InitSettingRace", testInitSettingRace},
		{"ConcurrentWriters", testConcurrentWriters},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// NewSealer returns a sealer with a random key, for Openers to install.
func NewSealer(t testing.TB) wharf.Sealer {
	t.Helper()
	key := make([]byte, seal.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	s, err := seal.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sqlDB returns the store as a *sqlstore.DB, skipping the test when it is
// some other implementation: the clock, sealer and raw-column hooks are
// sqlstore's.
func sqlDB(t *testing.T, s wharf.Store) *sqlstore.DB {
	t.Helper()
	db, ok := s.(*sqlstore.DB)
	if !ok {
		t.Skipf("store is %T, not *sqlstore.DB", s)
	}
	return db
}

// clock is a settable time source. Its times deliberately carry
// nanoseconds and a non-UTC zone, which the store must normalise.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now is the time source installed as the store's clock.
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward, as time passing between calls would.
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// stored returns the clock's current time as the store keeps it.
func (c *clock) stored() time.Time {
	return c.Now().UTC().Truncate(time.Microsecond)
}

var clockStart = time.Date(2024, 2, 29, 23, 59, 58, 123456789, time.FixedZone("CET", 3600))

// withClock installs a fake clock on the store.
func withClock(t *testing.T, s wharf.Store) *clock {
	c := &clock{t: clockStart}
	sqlDB(t, s).Now = c.Now
	return c
}

func ctx(t *testing.T) context.Context { return t.Context() }

// wantCode fails unless err carries code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := wharf.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (err %v), want %q", got, err, code)
	}
}

// wantMessage fails unless err's user-facing message contains every part,
// and shows no sign of SQL or driver text.
func wantMessage(t *testing.T, err error, parts ...string) {
	t.Helper()
	msg := wharf.ErrorMessage(err)
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("message %q does not contain %q", msg, p)
		}
	}
	low := strings.ToLower(msg)
	for _, bad := range []string{"select ", "insert ", "sqlite", "pq:", "sqlstate", "constraint"} {
		if strings.Contains(low, bad) {
			t.Errorf("message %q leaks internals (%q)", msg, bad)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// same compares two values by their printed form. Times print with their
// zone and, unlike ==, ignore nothing, so this also checks that the store
// returns UTC.
func same(t *testing.T, what string, got, want any) {
	t.Helper()
	g, w := show(got), show(want)
	if g != w {
		t.Errorf("%s:\n got  %s\n want %s", what, g, w)
	}
}

// show prints v with pointers followed, including those inside slices,
// which %+v would print as addresses.
func show(v any) string {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer:
		if rv.IsNil() {
			return "nil"
		}
		return show(rv.Elem().Interface())
	case reflect.Slice:
		if rv.Type().Elem().Kind() == reflect.Pointer {
			parts := make([]string, rv.Len())
			for i := range parts {
				parts[i] = show(rv.Index(i).Interface())
			}
			return "[" + strings.Join(parts, ",\n  ") + "]"
		}
	}
	return fmt.Sprintf("%+v", v)
}

func wantUTC(t *testing.T, what string, tm time.Time) {
	t.Helper()
	if tm.IsZero() {
		t.Errorf("%s is zero", what)
	}
	if tm.Location() != time.UTC {
		t.Errorf("%s = %v, not UTC", what, tm)
	}
	if tm.Nanosecond()%1000 != 0 {
		t.Errorf("%s = %v, finer than microseconds", what, tm)
	}
}

func mkWorkspace(t *testing.T, s wharf.Store, name string) *wharf.Workspace {
	t.Helper()
	w := &wharf.Workspace{Name: name}
	must(t, w.Validate())
	created, err := s.PutWorkspace(ctx(t), w)
	must(t, err)
	if !created {
		t.Fatalf("workspace %q existed already", name)
	}
	return w
}

func mkPrincipal(t *testing.T, s wharf.Store, name string) *wharf.ServicePrincipal {
	t.Helper()
	sp := &wharf.ServicePrincipal{AppID: "app-" + name, ObjectID: "obj-" + name, DisplayName: name}
	must(t, s.CreateServicePrincipal(ctx(t), sp))
	return sp
}

func mkCompute(t *testing.T, s wharf.Store, workspace, name string) *wharf.Compute {
	t.Helper()
	c := &wharf.Compute{Workspace: workspace, Name: name}
	must(t, c.Validate())
	_, err := s.PutCompute(ctx(t), c)
	must(t, err)
	return c
}

func mkDatastore(t *testing.T, s wharf.Store, workspace, name string, isDefault bool) *wharf.Datastore {
	t.Helper()
	d := &wharf.Datastore{Workspace: workspace, Name: name, IsDefault: isDefault}
	must(t, d.Validate())
	_, err := s.PutDatastore(ctx(t), d)
	must(t, err)
	return d
}

func testPing(t *testing.T, open Opener) {
	s := open(t)
	must(t, s.Ping(ctx(t)))
}

// recordingSealer wraps a sealer and remembers what it sealed, so a test
// can compare the stored column with what the sealer produced.
type recordingSealer struct {
	inner wharf.Sealer
	mu    sync.Mutex
	seals int
	opens int
	ads   [][]byte
}

// Seal records the call and its additional data, then seals.
func (r *recordingSealer) Seal(p, ad []byte) ([]byte, error) {
	r.mu.Lock()
	r.seals++
	r.ads = append(r.ads, bytes.Clone(ad))
	r.mu.Unlock()
	return r.inner.Seal(p, ad)
}

// Open counts the call, then opens.
func (r *recordingSealer) Open(c, ad []byte) ([]byte, error) {
	r.mu.Lock()
	r.opens++
	r.mu.Unlock()
	return r.inner.Open(c, ad)
}
