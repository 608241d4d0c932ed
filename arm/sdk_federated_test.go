package arm_test

import (
	"context"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/federation"
	"github.com/wharfml/wharf/federation/federationtest"
)

// TestSDKClientAssertionCredential authenticates the SDK with azure-identity's
// ClientAssertionCredential, whose assertion is a token of a real OIDC
// issuer (over HTTPS, with its discovery document and keys) fetched from a
// CI system's token service: the writer principal's federated credential
// trusts that issuer and the workflow's subject, so Wharf trades the
// assertion for its own token and the SDK reads the workspace and creates
// an environment, recorded as the principal's. A token for another
// subject of the same issuer is refused, and the SDK raises it as
// azure-core's ClientAuthenticationError with Entra's AADSTS code.
func TestSDKClientAssertionCredential(t *testing.T) {
	s := newSDKServer(t)
	iss := federationtest.New(t)
	v, err := federation.NewVerifier(iss.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	v.OwnIssuers = []string{s.Issuer.Issuer}
	s.API.Federation = v
	appID := s.writer.AppID
	const subject = "repo:org/repo:ref:refs/heads/main"
	owner := s.Principal("fic-owner", [2]string{wharf.RoleOwner, "/"})
	status, _, body := armCall(t, s.Server, owner, "POST", "/api/v1/servicePrincipals/"+appID+"/federatedIdentityCredentials",
		`{"name": "github-main", "issuer": "`+iss.URL+`", "subject": "`+subject+`"}`)
	if status/100 != 2 {
		t.Fatalf("federated credential: %d %v", status, body)
	}
	const requestToken = "runner-request-token"
	trusted := iss.GitHubTokenService(t, requestToken, subject)
	untrusted := iss.GitHubTokenService(t, requestToken, "repo:org/fork:ref:refs/heads/main")
	env := append(append([]string{}, s.env...), "WHARF_SDK_REQUEST_TOKEN="+requestToken,
		"WHARF_SDK_TRUSTED_TOKENS="+trusted.URL, "WHARF_SDK_UNTRUSTED_TOKENS="+untrusted.URL)
	got := decode[struct {
		Workspace, Environment string
		Untrusted              struct{ Type, Message string }
	}](t, s.runWith(t, env, "federated")["federated"])
	if got.Workspace != "ws1" || got.Environment != "federated-env" {
		t.Errorf("with the trusted subject: %+v", got)
	}
	if got.Untrusted.Type != "ClientAuthenticationError" || !strings.Contains(got.Untrusted.Message, "AADSTS70021") {
		t.Errorf("with another subject: %+v", got.Untrusted)
	}
	if trusted.Asked() == 0 || untrusted.Asked() == 0 {
		t.Errorf("assertions fetched: trusted %d, untrusted %d", trusted.Asked(), untrusted.Asked())
	}
	a, err := s.DB.FindAsset(context.Background(), "ws1", wharf.AssetEnvironment, "federated-env", "1")
	if err != nil || a.CreatedBy != appID {
		t.Errorf("the environment: %+v %v, want it created by %s", a, err, appID)
	}
}
