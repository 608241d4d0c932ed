// Package pgtest gives tests an empty PostgreSQL database of their own on
// the server named by WHARF_TEST_POSTGRES_URL.
package pgtest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	// The pgx driver, registered as "pgx".
	_ "github.com/jackc/pgx/v5/stdlib"
)

// BaseURL returns the server the tests create their databases on. Without
// one the tests skip on a developer machine, but fail under CI, so that a
// misconfigured pipeline cannot pass without ever touching PostgreSQL.
func BaseURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("WHARF_TEST_POSTGRES_URL")
	if u == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("WHARF_TEST_POSTGRES_URL is not set, and CI is: PostgreSQL tests must run in CI")
		}
		t.Skip("WHARF_TEST_POSTGRES_URL is not set")
	}
	return u
}

// FreshDatabase creates an empty database for one test, dropped when the
// test ends, and returns its URL.
func FreshDatabase(t testing.TB) string {
	t.Helper()
	base := BaseURL(t)
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("WHARF_TEST_POSTGRES_URL must be a postgres:// URL, got %q", base)
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "wharf_t_" + hex.EncodeToString(b[:])

	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	// A linguistic collation where the server has one (PostgreSQL 15+
	// built with ICU), so that code relying on byte order without saying
	// so fails here rather than on a production database's locale.
	if _, err := admin.Exec(`CREATE DATABASE ` + name +
		` TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'`); err != nil {
		if _, err := admin.Exec(`CREATE DATABASE ` + name); err != nil {
			t.Fatalf("create test database: %v", err)
		}
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			t.Error(err)
			return
		}
		defer admin.Close()
		// FORCE: a test that failed midway may have left a connection.
		if _, err := admin.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	u.Path = "/" + name
	return u.String()
}
