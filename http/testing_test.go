package http_test

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/auth"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/seal"
	"github.com/wharfml/wharf/sqlite"
	"github.com/wharfml/wharf/sqlstore"
)

// fixture is a server on a real SQLite store, served over real HTTP on
// loopback.
type fixture struct {
	t      *testing.T
	db     *sqlstore.DB
	srv    *wharfhttp.Server
	http   *httptest.Server
	issuer *auth.Issuer
	logs   *lockedBuffer
}

const testTenant = "00000000-0000-4000-8000-000000000001"

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "wharf.db"))
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	db.Sealer = sealer
	k, err := auth.NewKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	issuer := &auth.Issuer{Issuer: "urn:wharf:tenant:" + testTenant, Audience: wharfhttp.APIAudience, TTL: time.Hour, Keys: auth.NewKeyRing(k)}
	logs := &lockedBuffer{}
	srv := wharfhttp.NewServer(db, issuer, testTenant, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	hs := httptest.NewServer(srv.Handler())
	srv.URL = hs.URL
	f := &fixture{t: t, db: db, srv: srv, http: hs, issuer: issuer, logs: logs}
	t.Cleanup(func() {
		hs.Close()
		db.Close()
	})
	return f
}

// principal creates a service principal with the given grants and returns a
// token for it, minted directly (the token endpoint has its own tests).
func (f *fixture) principal(name string, grants ...[2]string) string {
	f.t.Helper()
	ctx := context.Background()
	sp := &wharf.ServicePrincipal{AppID: "app-" + name, ObjectID: "obj-" + name, DisplayName: name}
	if err := f.db.CreateServicePrincipal(ctx, sp); err != nil {
		f.t.Fatal(err)
	}
	for _, g := range grants {
		if err := f.db.CreateRoleAssignment(ctx, &wharf.RoleAssignment{PrincipalID: sp.AppID, RoleName: g[0], Scope: g[1]}); err != nil {
			f.t.Fatal(err)
		}
	}
	tok, _, err := f.issuer.Issue(sp.AppID, testTenant, sp.AppID, wharfhttp.APIAudience)
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

func (f *fixture) workspace(name string) {
	f.t.Helper()
	ws := &wharf.Workspace{Name: name}
	if err := ws.Validate(); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.db.PutWorkspace(context.Background(), ws); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) client(token string) *wharfhttp.Client {
	return wharfhttp.NewClient(f.http.URL, func(context.Context) (string, error) { return token, nil })
}

type lockedBuffer struct {
	mu  chanMutex
	buf []byte
}

type chanMutex struct{ ch chan struct{} }

func (m *chanMutex) lock() {
	if m.ch == nil {
		m.ch = make(chan struct{}, 1)
	}
	m.ch <- struct{}{}
}
func (m *chanMutex) unlock() { <-m.ch }

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.lock()
	defer b.mu.unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.lock()
	defer b.mu.unlock()
	return string(b.buf)
}

var _ io.Writer = (*lockedBuffer)(nil)

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }
