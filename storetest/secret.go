package storetest

import (
	"bytes"
	"regexp"
	"testing"
	"time"

	"github.com/wharfml/wharf"
)

var versionRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

func testSecrets(t *testing.T, open Opener) {
	s := open(t)
	clk := withClock(t, s)
	const scope = "/workspaces/ws"

	_, err := s.GetSecret(ctx(t), scope, "db-password", "")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, "secret", `"db-password"`)
	_, err = s.ListSecretVersions(ctx(t), scope, "db-password")
	wantCode(t, err, wharf.ENOTFOUND)

	v1, err := s.SetSecret(ctx(t), scope, "db-password", []byte("hunter2"), "text/plain")
	must(t, err)
	if !versionRE.MatchString(v1.Version) {
		t.Errorf("version %q is not 32 lowercase hex characters", v1.Version)
	}
	if v1.Value != nil || !v1.Enabled || v1.ContentType != "text/plain" || v1.Scope != scope ||
		v1.Name != "db-password" || !v1.CreatedAt.Equal(clk.stored()) {
		t.Errorf("SetSecret returned %+v", v1)
	}
	clk.Advance(time.Second)
	v2, err := s.SetSecret(ctx(t), scope, "db-password", []byte("correct horse"), "")
	must(t, err)
	if v2.Version == v1.Version {
		t.Fatal("two versions share an id")
	}

	got, err := s.GetSecret(ctx(t), scope, "db-password", "")
	must(t, err)
	if string(got.Value) != "correct horse" || got.Version != v2.Version {
		t.Errorf("newest = %q (%s), want v2", got.Value, got.Version)
	}
	got, err = s.GetSecret(ctx(t), scope, "db-password", v1.Version)
	must(t, err)
	want := *v1
	want.Value = []byte("hunter2")
	same(t, "v1", got, &want)

	_, err = s.GetSecret(ctx(t), scope, "db-password", "00000000000000000000000000000000")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, `"db-password"`, "00000000000000000000000000000000")
	// A version belongs to its secret.
	_, err = s.GetSecret(ctx(t), scope, "other", v1.Version)
	wantCode(t, err, wharf.ENOTFOUND)
	_, err = s.GetSecret(ctx(t), "/workspaces/ws2", "db-password", "")
	wantCode(t, err, wharf.ENOTFOUND)

	versions, err := s.ListSecretVersions(ctx(t), scope, "db-password")
	must(t, err)
	same(t, "versions", versions, []*wharf.Secret{v2, v1})

	clk.Advance(time.Second)
	a, err := s.SetSecret(ctx(t), scope, "api-key", []byte("k"), "")
	must(t, err)
	_, err = s.SetSecret(ctx(t), "/workspaces/ws2", "zz", []byte("k"), "")
	must(t, err)
	list, err := s.ListSecrets(ctx(t), scope)
	must(t, err)
	same(t, "list", list, []*wharf.Secret{a, v2})
	list, err = s.ListSecrets(ctx(t), "/workspaces/none")
	must(t, err)
	if len(list) != 0 {
		t.Errorf("empty scope lists %d", len(list))
	}

	// Empty and binary values round-trip.
	bin := []byte{0, 1, 2, 0xff, 0}
	_, err = s.SetSecret(ctx(t), scope, "bin", bin, "application/octet-stream")
	must(t, err)
	got, err = s.GetSecret(ctx(t), scope, "bin", "")
	must(t, err)
	if !bytes.Equal(got.Value, bin) {
		t.Errorf("binary value = %x", got.Value)
	}
	_, err = s.SetSecret(ctx(t), scope, "empty", nil, "")
	must(t, err)
	got, err = s.GetSecret(ctx(t), scope, "empty", "")
	must(t, err)
	if len(got.Value) != 0 {
		t.Errorf("empty value = %x", got.Value)
	}

	must(t, s.DeleteSecret(ctx(t), scope, "db-password"))
	_, err = s.GetSecret(ctx(t), scope, "db-password", v1.Version)
	wantCode(t, err, wharf.ENOTFOUND)
	_, err = s.ListSecretVersions(ctx(t), scope, "db-password")
	wantCode(t, err, wharf.ENOTFOUND)
	err = s.DeleteSecret(ctx(t), scope, "db-password")
	wantCode(t, err, wharf.ENOTFOUND)
	wantMessage(t, err, `"db-password"`)
	if _, err := s.GetSecret(ctx(t), scope, "api-key", ""); err != nil {
		t.Errorf("other secret: %v", err)
	}
}

// testSecretsSealed reads the stored column to check that values are
// sealed, bound to their row, and never stored in clear.
func testSecretsSealed(t *testing.T, open Opener) {
	s := open(t)
	db := sqlDB(t, s)
	rec := &recordingSealer{inner: NewSealer(t)}
	db.Sealer = rec
	plain := []byte("p4ssw0rd-that-must-not-appear")
	sec, err := s.SetSecret(ctx(t), "/", "k", plain, "")
	must(t, err)
	if rec.seals != 1 {
		t.Fatalf("Seal called %d times", rec.seals)
	}
	wantAD := "/\x00k\x00" + sec.Version
	if string(rec.ads[0]) != wantAD {
		t.Errorf("additional data = %q, want %q", rec.ads[0], wantAD)
	}
	raw, err := db.RawSecretValue(ctx(t), "/", "k", sec.Version)
	must(t, err)
	if bytes.Contains(raw, plain) || len(raw) <= len(plain) {
		t.Fatalf("stored value is not sealed: %q", raw)
	}
	opened, err := rec.inner.Open(raw, []byte(wantAD))
	must(t, err)
	if !bytes.Equal(opened, plain) {
		t.Errorf("stored value opens to %q", opened)
	}
	if _, err := rec.inner.Open(raw, []byte("/\x00other\x00"+sec.Version)); err == nil {
		t.Error("stored value opens under another row's additional data")
	}
	got, err := s.GetSecret(ctx(t), "/", "k", "")
	must(t, err)
	if rec.opens != 1 || !bytes.Equal(got.Value, plain) {
		t.Errorf("GetSecret: %d opens, value %q", rec.opens, got.Value)
	}

	// Under another key the value cannot be read, and the failure is
	// internal, not a client error.
	db.Sealer = NewSealer(t)
	_, err = s.GetSecret(ctx(t), "/", "k", "")
	wantCode(t, err, wharf.EINTERNAL)
}

func testSecretsWithoutKey(t *testing.T, open Opener) {
	s := open(t)
	db := sqlDB(t, s)
	_, err := s.SetSecret(ctx(t), "/", "k", []byte("v"), "")
	must(t, err)
	db.Sealer = nil
	_, err = s.SetSecret(ctx(t), "/", "k2", []byte("v"), "")
	wantCode(t, err, wharf.EINTERNAL)
	wantMessage(t, err, "secret store has no key")
	_, err = s.GetSecret(ctx(t), "/", "k", "")
	wantCode(t, err, wharf.EINTERNAL)
	wantMessage(t, err, "secret store has no key")
	// Nothing was stored for the refused write.
	list, err := s.ListSecrets(ctx(t), "/")
	must(t, err)
	if len(list) != 1 || list[0].Name != "k" {
		t.Errorf("secrets after refused write: %+v", list)
	}
}

// testSecretsSameMicrosecond pins the clock so that versions share a
// timestamp: the newest must still be the last one written.
func testSecretsSameMicrosecond(t *testing.T, open Opener) {
	s := open(t)
	withClock(t, s)
	var versions []*wharf.Secret
	for i := range 5 {
		v, err := s.SetSecret(ctx(t), "/", "k", []byte{byte('a' + i)}, "")
		must(t, err)
		versions = append(versions, v)
		got, err := s.GetSecret(ctx(t), "/", "k", "")
		must(t, err)
		if got.Version != v.Version || string(got.Value) != string(rune('a'+i)) {
			t.Fatalf("after write %d newest is %s (%q)", i, got.Version, got.Value)
		}
		list, err := s.ListSecrets(ctx(t), "/")
		must(t, err)
		if len(list) != 1 || list[0].Version != v.Version {
			t.Fatalf("after write %d list shows %+v", i, list)
		}
	}
	got, err := s.ListSecretVersions(ctx(t), "/", "k")
	must(t, err)
	for i, v := range got {
		if v.Version != versions[len(versions)-1-i].Version {
			t.Fatalf("version %d is %s, want newest first", i, v.Version)
		}
	}
}
