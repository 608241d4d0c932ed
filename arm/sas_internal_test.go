package arm

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharfml/wharf/seal"
	"github.com/wharfml/wharf/sqlite"
)

// TestSASExpiryAndPermissions: a signature the server made is refused once
// it has expired, and for what its permissions do not grant, however
// valid it is otherwise; two servers over one store check each other's.
func TestSASExpiryAndPermissions(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "wharf.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if db.Sealer, err = seal.NewSealer(make([]byte, seal.KeySize)); err != nil {
		t.Fatal(err)
	}
	keys := &sasKeys{store: db}
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	token, err := keys.sign(t.Context(), sas{Permissions: "r", Expiry: now.Add(time.Hour), Resource: "ws1.store/LocalUpload/abc", ObjectID: "app-ds"})
	if err != nil {
		t.Fatal(err)
	}
	q, _ := url.ParseQuery(token)
	if got, err := keys.verify(t.Context(), q, "ws1.store/LocalUpload/abc/src/a.py", "r", now); err != nil || got.ObjectID != "app-ds" {
		t.Fatalf("a valid read: %+v %v", got, err)
	}
	for _, tc := range []struct {
		perm string
		at   time.Time
		says string
	}{
		{"r", now.Add(time.Hour), "expired"},
		{"w", now, "AuthorizationPermissionMismatch"},
	} {
		if _, err := keys.verify(t.Context(), q, "ws1.store/LocalUpload/abc/src/a.py", tc.perm, tc.at); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s at %s: %v, want %q", tc.perm, tc.at, err, tc.says)
		}
	}
	// Another server over the same store, which has read no key yet.
	other := &sasKeys{store: db}
	if _, err := other.verify(t.Context(), q, "ws1.store/LocalUpload/abc/a", "r", now); err != nil {
		t.Errorf("another server: %v", err)
	}
}
