// Package servertest runs a real Wharf API server for tests of the http and
// mlflow packages: a SQLite store with sealed secrets, a token issuer, a
// blob store on disk and MLflow's API mounted as `wharf server` mounts it,
// served over loopback HTTP. Nothing in it is a fake, so a test through it
// fails when the server it stands for would.
package servertest

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/arm"
	"github.com/wharfml/wharf/auth"
	"github.com/wharfml/wharf/blob"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/mlflow"
	"github.com/wharfml/wharf/seal"
	"github.com/wharfml/wharf/sqlite"
	"github.com/wharfml/wharf/sqlstore"
)

// Tenant is the directory the test server's tokens are issued in.
const Tenant = "00000000-0000-4000-8000-000000000001"

// Server is one test server and what it runs on.
type Server struct {
	DB     *sqlstore.DB
	API    *wharfhttp.Server
	MLflow *mlflow.Handler
	HTTP   *httptest.Server
	Issuer *auth.Issuer
	// Blobs is the content store of both the REST content routes and the
	// MLflow artifact proxy, in BlobRoot.
	Blobs    *blob.FS
	BlobRoot string
	// Logs holds what the server logged, for tests that check what it must
	// never log.
	Logs *Log

	t testing.TB
}

// New starts a server that lives until the test ends.
func New(t testing.TB) *Server {
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
	if db.Sealer, err = seal.NewSealer(key); err != nil {
		t.Fatal(err)
	}
	k, err := auth.NewKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	issuer := &auth.Issuer{Issuer: "urn:wharf:tenant:" + Tenant, Audience: wharfhttp.APIAudience, TTL: time.Hour, Keys: auth.NewKeyRing(k)}
	root := t.TempDir()
	blobs, err := blob.NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	logs := &Log{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	api := wharfhttp.NewServer(db, issuer, Tenant, logger)
	api.Blobs = blobs
	ml := &mlflow.Handler{Store: db, Blobs: blobs, Logger: logger}
	ml.Register(api.Group(mlflow.Prefix, ml.WriteError))
	azml := &arm.Handler{Store: db, Blobs: blobs, Endpoints: api, Models: api, Assets: api, Jobs: api, URL: func() string { return api.URL }, Logger: logger}
	azml.Register(func(prefix string) arm.Group { return api.Group(prefix, azml.WriteError) })
	api.VirtualHost(azml.BlobHost)
	hs := httptest.NewServer(api.Handler())
	api.URL = hs.URL
	t.Cleanup(func() {
		hs.Close()
		db.Close()
	})
	return &Server{DB: db, API: api, MLflow: ml, HTTP: hs, Issuer: issuer, Blobs: blobs, BlobRoot: root, Logs: logs, t: t}
}

// Principal creates a service principal with the given grants, each a
// role and a scope, and returns a token for it, minted directly (the token
// endpoint has tests of its own).
func (s *Server) Principal(name string, grants ...[2]string) string {
	s.t.Helper()
	ctx := context.Background()
	sp := &wharf.ServicePrincipal{AppID: "app-" + name, ObjectID: "obj-" + name, DisplayName: name}
	if err := s.DB.CreateServicePrincipal(ctx, sp); err != nil {
		s.t.Fatal(err)
	}
	for _, g := range grants {
		if err := s.DB.CreateRoleAssignment(ctx, &wharf.RoleAssignment{PrincipalID: sp.AppID, RoleName: g[0], Scope: g[1]}); err != nil {
			s.t.Fatal(err)
		}
	}
	tok, _, err := s.Issuer.Issue(sp.AppID, Tenant, sp.AppID, wharfhttp.APIAudience)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// Workspace creates a workspace directly in the store.
func (s *Server) Workspace(name string) {
	s.t.Helper()
	ws := &wharf.Workspace{Name: name}
	if err := ws.Validate(); err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.DB.PutWorkspace(context.Background(), ws); err != nil {
		s.t.Fatal(err)
	}
}

// Log is a log destination safe for the server's goroutines.
type Log struct {
	mu  sync.Mutex
	buf []byte
}

// Write appends p to the log; it never fails.
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	return len(p), nil
}

// String returns everything logged so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}
