package serving

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/sqlite"
)

// BenchmarkTokenPrincipalCheck measures what checking an aml_token's
// principal and role adds to every scoring request on SQLite, with a
// server's worth of other principals and assignments around.
func BenchmarkTokenPrincipalCheck(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "wharf.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.PutWorkspace(ctx, &wharf.Workspace{Name: "mlw"}); err != nil {
		b.Fatal(err)
	}
	for i := range 200 {
		sp := &wharf.ServicePrincipal{AppID: "app-" + string(rune('a'+i%26)) + string(rune('a'+i/26)),
			ObjectID: "obj-" + string(rune('a'+i%26)) + string(rune('a'+i/26)), DisplayName: "sp"}
		sp.DisplayName += sp.AppID
		if err := db.CreateServicePrincipal(ctx, sp); err != nil {
			b.Fatal(err)
		}
		if err := db.CreateRoleAssignment(ctx, &wharf.RoleAssignment{PrincipalID: sp.AppID, RoleName: wharf.RoleDataScientist,
			Scope: wharf.WorkspaceScope("mlw")}); err != nil {
			b.Fatal(err)
		}
	}
	rt := &Router{Store: db}
	b.ResetTimer()
	for b.Loop() {
		if err := rt.mayScore(ctx, "app-ha", "mlw"); err != nil {
			b.Fatal(err)
		}
	}
}
