package http_test

import (
	"context"
	"errors"
	"testing"

	"github.com/wharfml/wharf"
)

// TestEndpointKeySecretsAreReserved checks that the secrets holding an
// online endpoint's keys can be neither overwritten nor deleted through
// the secrets API, whatever the case of the name, while other names are
// untouched.
func TestEndpointKeySecretsAreReserved(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.workspace("ws")
	c := f.client(f.principal("admin", [2]string{wharf.RoleOwner, "/"}))
	if err := c.Do(ctx, "PUT", "/api/v1/workspaces/ws/onlineEndpoints/ep", map[string]any{"auth_mode": "key"}, nil); err != nil {
		t.Fatal(err)
	}
	var before map[string]string
	if err := c.Do(ctx, "POST", "/api/v1/workspaces/ws/onlineEndpoints/ep/listKeys", nil, &before); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"online-endpoint-ep-primary", "Online-Endpoint-ep-secondary", "online-endpoint-other-primary"} {
		err := c.Do(ctx, "PUT", "/api/v1/workspaces/ws/secrets/"+name, map[string]string{"value": "chosen-by-the-caller"}, nil)
		wantReserved(t, "PUT "+name, err)
		wantReserved(t, "DELETE "+name, c.Do(ctx, "DELETE", "/api/v1/workspaces/ws/secrets/"+name, nil, nil))
	}
	var after map[string]string
	if err := c.Do(ctx, "POST", "/api/v1/workspaces/ws/onlineEndpoints/ep/listKeys", nil, &after); err != nil {
		t.Fatal(err)
	}
	if after["primaryKey"] != before["primaryKey"] || after["secondaryKey"] != before["secondaryKey"] || after["primaryKey"] == "" {
		t.Errorf("keys changed through the secrets API: %v -> %v", before, after)
	}
	// Names that merely resemble the prefix stay the user's.
	for _, name := range []string{"online-endpoint", "my-online-endpoint-ep-primary"} {
		if err := c.Do(ctx, "PUT", "/api/v1/workspaces/ws/secrets/"+name, map[string]string{"value": "v"}, nil); err != nil {
			t.Errorf("PUT %s: %v", name, err)
		}
		if err := c.Do(ctx, "DELETE", "/api/v1/workspaces/ws/secrets/"+name, nil, nil); err != nil {
			t.Errorf("DELETE %s: %v", name, err)
		}
	}
}

func wantReserved(t *testing.T, what string, err error) {
	t.Helper()
	var we *wharf.Error
	if !errors.As(err, &we) || we.Code != wharf.EINVALID || we.Field != "name" {
		t.Errorf("%s: %v, want a 400 naming the field name", what, err)
	}
}

// TestSecretValueReadsAreAudited checks that reading a secret's value
// leaves an audit line whether it was allowed, denied or failed, while
// listing secret names (a plain read) still leaves none.
func TestSecretValueReadsAreAudited(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.workspace("ws")
	admin := f.client(f.principal("admin", [2]string{wharf.RoleOwner, "/"}))
	ds := f.client(f.principal("datasci", [2]string{wharf.RoleDataScientist, "/workspaces/ws"}))
	if err := admin.Do(ctx, "PUT", "/api/v1/workspaces/ws/secrets/db-password", map[string]string{"value": "hunter2"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := admin.Do(ctx, "GET", "/api/v1/workspaces/ws/secrets/db-password", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := ds.Do(ctx, "GET", "/api/v1/workspaces/ws/secrets/db-password", nil, nil); wharf.ErrorCode(err) != wharf.EFORBIDDEN {
		t.Fatalf("data scientist read a secret value: %v", err)
	}
	if err := admin.Do(ctx, "GET", "/api/v1/workspaces/ws/secrets/nope", nil, nil); wharf.ErrorCode(err) != wharf.ENOTFOUND {
		t.Fatalf("missing secret: %v", err)
	}
	if err := admin.Do(ctx, "GET", "/api/v1/workspaces/ws/secrets", nil, nil); err != nil {
		t.Fatal(err)
	}

	events, err := f.db.ListAuditEvents(ctx, wharf.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	type line struct{ principal, path, outcome string }
	var reads []line
	for _, e := range events {
		if e.Method == "GET" {
			if e.Action != wharf.ActionSecretValue {
				t.Errorf("a plain read was audited: %+v", e)
			}
			reads = append(reads, line{e.PrincipalID, e.Path, e.Outcome})
		}
	}
	// Newest first.
	want := []line{
		{"app-admin", "/api/v1/workspaces/ws/secrets/nope", wharf.AuditFailed},
		{"app-datasci", "/api/v1/workspaces/ws/secrets/db-password", wharf.AuditDenied},
		{"app-admin", "/api/v1/workspaces/ws/secrets/db-password", wharf.AuditSucceeded},
	}
	if len(reads) != len(want) {
		t.Fatalf("audited reads %+v, want %+v", reads, want)
	}
	for i := range want {
		if reads[i] != want[i] {
			t.Errorf("audited read %d: %+v, want %+v", i, reads[i], want[i])
		}
	}
}
