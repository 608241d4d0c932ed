package storetest

import (
	"fmt"
	"testing"

	"github.com/wharfml/wharf"
)

func testFederatedCredentials(t *testing.T, open Opener) {
	s := open(t)
	clk := withClock(t, s)
	sp := mkPrincipal(t, s, "ci")
	other := mkPrincipal(t, s, "other")
	const gh = "https://token.actions.githubusercontent.com"

	fc := &wharf.FederatedCredential{ID: "f1", PrincipalID: sp.AppID, Name: "main", Issuer: gh,
		Subject: "repo:org/repo:ref:refs/heads/main", Audiences: []string{wharf.DefaultFederatedAudience}, Description: "deploys"}
	must(t, s.CreateFederatedCredential(ctx(t), fc))
	if !fc.CreatedAt.Equal(clk.stored()) {
		t.Errorf("CreatedAt = %v, want %v", fc.CreatedAt, clk.stored())
	}
	for _, key := range []string{"f1", "main"} {
		got, err := s.FindFederatedCredential(ctx(t), sp.AppID, key)
		must(t, err)
		same(t, "found by "+key, got, fc)
	}
	// Another principal's credential is not reachable through this one.
	_, err := s.FindFederatedCredential(ctx(t), other.AppID, "main")
	wantCode(t, err, wharf.ENOTFOUND)

	dupName := *fc
	dupName.ID, dupName.Subject = "f2", "repo:org/repo:pull_request"
	err = s.CreateFederatedCredential(ctx(t), &dupName)
	wantCode(t, err, wharf.ECONFLICT)
	wantMessage(t, err, `named "main"`)
	dupPair := *fc
	dupPair.ID, dupPair.Name = "f2", "main-again"
	err = s.CreateFederatedCredential(ctx(t), &dupPair)
	wantCode(t, err, wharf.ECONFLICT)
	wantMessage(t, err, "issuer and subject pair")
	// The same pair and name on another principal is fine.
	onOther := *fc
	onOther.ID, onOther.PrincipalID = "f-other", other.AppID
	must(t, s.CreateFederatedCredential(ctx(t), &onOther))

	err = s.CreateFederatedCredential(ctx(t), &wharf.FederatedCredential{ID: "fx", PrincipalID: "nobody", Name: "x", Issuer: gh, Subject: "s"})
	wantCode(t, err, wharf.ENOTFOUND)

	// Up to 20 per principal, and a failed create stores nothing.
	for i := 2; i <= wharf.MaxFederatedCredentials; i++ {
		must(t, s.CreateFederatedCredential(ctx(t), &wharf.FederatedCredential{ID: fmt.Sprintf("f%d", i), PrincipalID: sp.AppID,
			Name: fmt.Sprintf("n%02d", i), Issuer: gh, Subject: fmt.Sprintf("repo:org/repo:environment:e%d", i), Audiences: []string{"a"}}))
	}
	err = s.CreateFederatedCredential(ctx(t), &wharf.FederatedCredential{ID: "f21", PrincipalID: sp.AppID, Name: "n21", Issuer: gh, Subject: "s21"})
	wantCode(t, err, wharf.ECONFLICT)
	wantMessage(t, err, "20 federated credentials")
	list, err := s.ListFederatedCredentials(ctx(t), sp.AppID)
	must(t, err)
	if len(list) != wharf.MaxFederatedCredentials || list[0].Name != "main" || list[1].Name != "n02" {
		t.Fatalf("list: %d credentials, first %q", len(list), list[0].Name)
	}
	if list[1].Audiences[0] != "a" {
		t.Errorf("audience = %v", list[1].Audiences)
	}

	// Update: the name is immutable, the pair stays unique, the rest changes.
	upd := *fc
	upd.Subject, upd.Description = "repo:org/repo:environment:prod", "prod only"
	must(t, s.UpdateFederatedCredential(ctx(t), &upd))
	got, err := s.FindFederatedCredential(ctx(t), sp.AppID, "main")
	must(t, err)
	if got.Subject != upd.Subject || got.Description != "prod only" {
		t.Errorf("after update: %+v", got)
	}
	renamed := upd
	renamed.Name = "renamed"
	wantCode(t, s.UpdateFederatedCredential(ctx(t), &renamed), wharf.EINVALID)
	clash := upd
	clash.Subject = "repo:org/repo:environment:e2"
	err = s.UpdateFederatedCredential(ctx(t), &clash)
	wantCode(t, err, wharf.ECONFLICT)
	got, err = s.FindFederatedCredential(ctx(t), sp.AppID, "main")
	must(t, err)
	same(t, "after refused updates", got.Subject, upd.Subject)
	missing := upd
	missing.ID = "nope"
	wantCode(t, s.UpdateFederatedCredential(ctx(t), &missing), wharf.ENOTFOUND)

	must(t, s.DeleteFederatedCredential(ctx(t), sp.AppID, "main"))
	wantCode(t, s.DeleteFederatedCredential(ctx(t), sp.AppID, "main"), wharf.ENOTFOUND)
	must(t, s.DeleteFederatedCredential(ctx(t), sp.AppID, "f2"))
	// Room again after a delete.
	must(t, s.CreateFederatedCredential(ctx(t), &wharf.FederatedCredential{ID: "f21", PrincipalID: sp.AppID, Name: "n21", Issuer: gh, Subject: "s21"}))

	// Deleting the principal deletes its credentials, not another's.
	must(t, s.DeleteServicePrincipal(ctx(t), sp.AppID))
	_, err = s.ListFederatedCredentials(ctx(t), sp.AppID)
	wantCode(t, err, wharf.ENOTFOUND)
	sp2 := mkPrincipal(t, s, "ci")
	list, err = s.ListFederatedCredentials(ctx(t), sp2.AppID)
	must(t, err)
	if len(list) != 0 {
		t.Errorf("a recreated principal inherited %d credentials", len(list))
	}
	list, err = s.ListFederatedCredentials(ctx(t), other.AppID)
	must(t, err)
	if len(list) != 1 {
		t.Errorf("other principal has %d credentials, want 1", len(list))
	}
}
