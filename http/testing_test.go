package http_test

import (
	"context"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/wharfml/wharf/auth"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/http/servertest"
	"github.com/wharfml/wharf/sqlstore"
)

// fixture is a server on a real SQLite store, with MLflow's API mounted,
// served over real HTTP on loopback (see servertest).
type fixture struct {
	t      *testing.T
	ts     *servertest.Server
	db     *sqlstore.DB
	srv    *wharfhttp.Server
	http   *httptest.Server
	issuer *auth.Issuer
	logs   *servertest.Log
}

const testTenant = servertest.Tenant

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ts := servertest.New(t)
	return &fixture{t: t, ts: ts, db: ts.DB, srv: ts.API, http: ts.HTTP, issuer: ts.Issuer, logs: ts.Logs}
}

// principal creates a service principal with the given grants and returns a
// token for it.
func (f *fixture) principal(name string, grants ...[2]string) string {
	f.t.Helper()
	return f.ts.Principal(name, grants...)
}

func (f *fixture) workspace(name string) {
	f.t.Helper()
	f.ts.Workspace(name)
}

func (f *fixture) client(token string) *wharfhttp.Client {
	return wharfhttp.NewClient(f.http.URL, func(context.Context) (string, error) { return token, nil })
}

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }
