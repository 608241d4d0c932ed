package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	wharfhttp "github.com/wharfml/wharf/http"
)

func TestSingleSignOnFlags(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(ssoSecretEnv, "")
	for _, c := range []struct {
		o    serverOptions
		want string
	}{
		{serverOptions{ssoClientID: "wharf"}, "need --oidc-issuer"},
		{serverOptions{ssoIssuer: "https://idp.example", ssoClientID: "wharf"}, "client secret"},
		{serverOptions{ssoIssuer: "https://idp.example", ssoSecretFile: secret}, "--oidc-client-id"},
		{serverOptions{ssoIssuer: "https://idp.example", ssoClientID: "wharf", ssoSecretFile: secret + ".missing"}, "--oidc-client-secret-file"},
		{serverOptions{ssoIssuer: "idp.example", ssoClientID: "wharf", ssoSecretFile: secret}, "http(s) URL"},
		{serverOptions{ssoIssuer: "https://idp.example", ssoClientID: "wharf", ssoSecretFile: secret}, ""},
		{serverOptions{}, ""},
	} {
		err := configureSSO(wharfhttp.NewServer(nil, nil, "t", nil), c.o)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
	}
	t.Setenv(ssoSecretEnv, "from-env")
	if err := configureSSO(wharfhttp.NewServer(nil, nil, "t", nil), serverOptions{ssoIssuer: "https://idp.example", ssoClientID: "wharf"}); err != nil {
		t.Errorf("secret from $%s: %v", ssoSecretEnv, err)
	}
}
