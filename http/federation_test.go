package http_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/federation"
	"github.com/wharfml/wharf/federation/federationtest"
)

const ghSubject = "repo:org/repo:ref:refs/heads/main"

// fedFixture is a server whose principal "ci" trusts a real test issuer
// for subject ghSubject, and whose Verifier trusts that issuer's CA.
type fedFixture struct {
	*fixture
	iss      *federationtest.Issuer
	owner    string
	tokenURL string
	clock    time.Time
}

func newFedFixture(t *testing.T) *fedFixture {
	f := &fedFixture{fixture: newFixture(t), iss: federationtest.New(t)}
	v, err := federation.NewVerifier(f.iss.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	v.OwnIssuers = []string{f.issuer.Issuer}
	v.FetchTimeout = 300 * time.Millisecond
	f.clock = time.Now()
	v.Now = func() time.Time { return f.clock }
	f.srv.Federation = v
	f.owner = f.principal("owner", [2]string{wharf.RoleOwner, "/"})
	f.workspace("ws")
	f.principal("ci", [2]string{wharf.RoleDataScientist, "/workspaces/ws"})
	f.tokenURL = f.http.URL + "/" + testTenant + "/oauth2/v2.0/token"
	f.createFIC("main", f.iss.URL, ghSubject, "")
	return f
}

func (f *fedFixture) createFIC(name, issuer, subject, aud string) error {
	body := map[string]any{"name": name, "issuer": issuer, "subject": subject}
	if aud != "" {
		body["audiences"] = []string{aud}
	}
	return f.client(f.owner).Do(context.Background(), "POST", "/api/v1/servicePrincipals/app-ci/federatedIdentityCredentials", body, nil)
}

// exchange presents assertion for client and returns the status and body.
func (f *fedFixture) exchange(client, assertion string) (int, map[string]any) {
	f.t.Helper()
	resp, body := postForm(f.t, f.tokenURL, url.Values{"grant_type": {"client_credentials"}, "client_id": {client},
		"client_assertion_type": {federation.AssertionType}, "client_assertion": {assertion}, "scope": {"api://wharf/.default"}})
	return resp.StatusCode, body
}

// refused checks that the exchange failed with Entra's code and nothing
// more specific.
func (f *fedFixture) refused(what, assertion string, code int) {
	f.t.Helper()
	status, body := f.exchange("app-ci", assertion)
	desc, _ := body["error_description"].(string)
	if status == http.StatusOK || !strings.HasPrefix(desc, fmt.Sprintf("AADSTS%d:", code)) {
		f.t.Errorf("%s: status %d, %v; want AADSTS%d", what, status, body, code)
	}
	if _, ok := body["access_token"]; ok {
		f.t.Errorf("%s: a token was issued", what)
	}
	for _, leak := range []string{"subject", "audience", "sub ", "aud "} {
		if strings.Contains(strings.ToLower(desc), leak) {
			f.t.Errorf("%s: the answer %q tells which claim failed", what, desc)
		}
	}
}

func TestFederatedExchangeGrantsTheAppsRoles(t *testing.T) {
	f := newFedFixture(t)
	ctx := context.Background()
	var tokens []string
	for _, kid := range []string{federationtest.RSAKid, federationtest.ECKid} {
		a := f.iss.Sign(t, f.iss.Claims(ghSubject, wharf.DefaultFederatedAudience), kid)
		status, body := f.exchange("app-ci", a)
		tok, _ := body["access_token"].(string)
		if status != http.StatusOK || tok == "" {
			t.Fatalf("%s assertion: %d %v", kid, status, body)
		}
		tokens = append(tokens, tok, a)
		claims, err := f.issuer.Verify(tok, "")
		if err != nil || claims.AppID != "app-ci" {
			t.Fatalf("issued token: %v %+v", err, claims)
		}
		c := f.client(tok)
		// Data Scientist on ws: may read ws's jobs, may not create a workspace
		// or touch another principal's credentials.
		if err := c.Do(ctx, "GET", "/api/v1/workspaces/ws/jobs", nil, nil); err != nil {
			t.Errorf("read jobs with the exchanged token: %v", err)
		}
		err = c.Do(ctx, "PUT", "/api/v1/workspaces/other", map[string]any{}, nil)
		if wharf.ErrorCode(err) != wharf.EFORBIDDEN {
			t.Errorf("create workspace with a Data Scientist token: %v", err)
		}
		err = c.Do(ctx, "POST", "/api/v1/servicePrincipals/app-ci/federatedIdentityCredentials",
			map[string]any{"name": "mine", "issuer": f.iss.URL, "subject": "repo:org/fork:pull_request"}, nil)
		if wharf.ErrorCode(err) != wharf.EFORBIDDEN {
			t.Errorf("a federated principal added itself a credential: %v", err)
		}
	}
	// The log says who exchanged what, never an assertion or a token.
	log := f.logs.String()
	if !strings.Contains(log, "federated credential exchanged") || !strings.Contains(log, ghSubject) {
		t.Errorf("exchange not logged:\n%s", log)
	}
	for _, s := range tokens {
		for _, part := range strings.Split(s, ".") {
			if strings.Contains(log, part) {
				t.Fatalf("the server log holds part of a token or an assertion")
			}
		}
	}
}

func TestFederatedExchangeRefusesAttacks(t *testing.T) {
	f := newFedFixture(t)
	aud := wharf.DefaultFederatedAudience
	iss := f.iss
	signed := func(mut func(jwt.MapClaims)) string {
		c := iss.Claims(ghSubject, aud)
		mut(c)
		return iss.Sign(t, c, federationtest.RSAKid)
	}
	f.refused("other branch", iss.Token(t, "repo:org/repo:ref:refs/heads/dev", aud), federation.CodeNoMatch)
	f.refused("pull_request", iss.Token(t, "repo:org/repo:pull_request", aud), federation.CodeNoMatch)
	f.refused("wrong aud", iss.Token(t, ghSubject, "https://github.com/org"), federation.CodeNoMatch)
	f.refused("issuer with a trailing slash", signed(func(c jwt.MapClaims) { c["iss"] = iss.URL + "/" }), federation.CodeNoMatch)
	f.refused("expired", signed(func(c jwt.MapClaims) {
		c["iat"], c["nbf"], c["exp"] = time.Now().Add(-20*time.Minute).Unix(), time.Now().Add(-20*time.Minute).Unix(), time.Now().Add(-15*time.Minute).Unix()
	}), federation.CodeTimeRange)
	f.refused("not yet valid", signed(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(10 * time.Minute).Unix() }), federation.CodeTimeRange)
	f.refused("no exp", signed(func(c jwt.MapClaims) { delete(c, "exp") }), federation.CodeTimeRange)

	// alg none, and HS256 keyed with the issuer's public key.
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, iss.Claims(ghSubject, aud)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	f.refused("alg none", none, federation.CodeSignature)
	pub := iss.RSAKey(federationtest.RSAKid).PublicKey
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, iss.Claims(ghSubject, aud))
	hs.Header["kid"] = federationtest.RSAKid
	hsTok, err := hs.SignedString([]byte(fmt.Sprintf("%x%x", pub.N, pub.E)))
	if err != nil {
		t.Fatal(err)
	}
	f.refused("HS256 keyed with the public key", hsTok, federation.CodeSignature)
	// A signature from a key the issuer never published, under its kid.
	good := iss.Token(t, ghSubject, aud)
	other := iss.Token(t, "x", aud)
	parts, oparts := strings.Split(good, "."), strings.Split(other, ".")
	f.refused("signature of another token", parts[0]+"."+parts[1]+"."+oparts[2], federation.CodeSignature)
	f.refused("not a JWT", "not-a-jwt", federation.CodeMalformed)

	// A Wharf token presented as an assertion, and an assertion presented
	// as a Wharf token.
	f.refused("Wharf token as assertion", f.owner, federation.CodeOwnToken)
	err = f.client(good).Do(context.Background(), "GET", "/api/v1/workspaces", nil, nil)
	if wharf.ErrorCode(err) != wharf.EUNAUTHENTICATED {
		t.Errorf("assertion used as an access token: %v", err)
	}

	// A replayed assertion past its exp: accepted while valid, refused after.
	if status, body := f.exchange("app-ci", good); status != http.StatusOK {
		t.Fatalf("first use: %d %v", status, body)
	}
	f.clock = time.Now().Add(10 * time.Minute)
	f.refused("replayed past exp", good, federation.CodeTimeRange)
	f.clock = time.Now()

	// An unknown client and a client without credentials: same answer.
	f.principal("bare")
	for _, client := range []string{"app-bare", "no-such-app"} {
		status, body := f.exchange(client, iss.Token(t, ghSubject, aud))
		if status != http.StatusUnauthorized || !strings.HasPrefix(body["error_description"].(string), "AADSTS70021:") {
			t.Errorf("client %s: %d %v", client, status, body)
		}
	}
	if strings.Contains(f.logs.String(), parts[2]) {
		t.Error("the server log holds an assertion's signature")
	}
}

func TestFederatedExchangeKeysAndIssuerFailures(t *testing.T) {
	f := newFedFixture(t)
	aud := wharf.DefaultFederatedAudience
	iss := f.iss
	if status, body := f.exchange("app-ci", iss.Token(t, ghSubject, aud)); status != http.StatusOK {
		t.Fatalf("%d %v", status, body)
	}
	served := iss.JWKSServed()

	// Unknown kid, once the refresh interval has passed: one refresh, then
	// refused; a second unknown kid soon after causes no fetch.
	f.clock = f.clock.Add(2 * federation.DefaultRefreshInterval)
	c := iss.Claims(ghSubject, aud)
	stranger := federationtest.New(t)
	forged := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	forged.Header["kid"] = "rsa-unknown"
	forgedTok, err := forged.SignedString(stranger.RSAKey(federationtest.RSAKid))
	if err != nil {
		t.Fatal(err)
	}
	f.refused("unknown kid", forgedTok, federation.CodeSignature)
	if got := iss.JWKSServed(); got != served+1 {
		t.Errorf("JWKS fetched %d times for an unknown kid, want once", got-served)
	}
	f.refused("unknown kid again", forgedTok, federation.CodeSignature)
	if got := iss.JWKSServed(); got != served+1 {
		t.Errorf("JWKS fetched again within the refresh interval (%d)", got-served)
	}
	// The issuer rotates: a token by its new key is accepted after one
	// refresh, once the refresh interval has passed.
	iss.AddRSAKey(t, "rsa-2")
	f.clock = f.clock.Add(2 * federation.DefaultRefreshInterval)
	rotated := iss.Sign(t, iss.Claims(ghSubject, aud), "rsa-2")
	if status, body := f.exchange("app-ci", rotated); status != http.StatusOK {
		t.Fatalf("rotated key: %d %v", status, body)
	}

	// A slow issuer and a 10 MB JWKS, for a credential on another issuer
	// (nothing cached yet).
	slow := federationtest.New(t)
	if err := f.createFIC("slow", slow.URL, ghSubject, ""); err != nil {
		t.Fatal(err)
	}
	slow.SetSlow(true)
	f.refused("slow issuer", slow.Token(t, ghSubject, aud), federation.CodeIssuerUnreachable)
	slow.SetSlow(false)
	slow.SetHugeJWKS(true)
	f.refused("10 MB JWKS", slow.Token(t, ghSubject, aud), federation.CodeIssuerUnreachable)
	// Without the issuer's CA (no --oidc-ca-file) its certificate is not
	// trusted, and nothing is fetched over the unverified connection.
	plain, err := federation.NewVerifier("")
	if err != nil {
		t.Fatal(err)
	}
	f.srv.Federation = plain
	f.refused("untrusted certificate", iss.Token(t, ghSubject, aud), federation.CodeIssuerUnreachable)
}

func TestFederatedCredentialRules(t *testing.T) {
	f := newFedFixture(t)
	ctx := context.Background()
	base := "/api/v1/servicePrincipals/app-ci/federatedIdentityCredentials"
	for _, bad := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"name": "x", "issuer": f.iss.URL, "subject": "s"}, "name"},
		{map[string]any{"name": "-bad", "issuer": f.iss.URL, "subject": "s"}, "name"},
		{map[string]any{"name": "ok-name", "issuer": "http://insecure.example", "subject": "s"}, "issuer"},
		{map[string]any{"name": "ok-name", "issuer": f.iss.URL + " ", "subject": "s"}, "issuer"},
		{map[string]any{"name": "ok-name", "issuer": f.iss.URL, "subject": "repo:org/*"}, "subject"},
		{map[string]any{"name": "ok-name", "issuer": f.iss.URL, "subject": "s", "audiences": []string{"a", "b"}}, "audiences"},
		{map[string]any{"name": "ok-name", "issuer": f.iss.URL, "subject": strings.Repeat("s", 601)}, "subject"},
	} {
		err := f.client(f.owner).Do(ctx, "POST", base, bad.body, nil)
		if wharf.ErrorCode(err) != wharf.EINVALID || !strings.Contains(err.Error(), bad.field) {
			t.Errorf("%v: %v, want an error naming %s", bad.body, err, bad.field)
		}
	}
	var fc wharf.FederatedCredential
	if err := f.client(f.owner).Do(ctx, "GET", base+"/main", nil, &fc); err != nil || fc.Audiences[0] != wharf.DefaultFederatedAudience {
		t.Fatalf("show: %v %+v", err, fc)
	}
	// Name immutable, update replaces the rest.
	err := f.client(f.owner).Do(ctx, "PATCH", base+"/main", map[string]any{"name": "renamed", "issuer": f.iss.URL, "subject": ghSubject}, nil)
	if wharf.ErrorCode(err) != wharf.EINVALID {
		t.Errorf("rename: %v", err)
	}
	if err := f.client(f.owner).Do(ctx, "PATCH", base+"/main", map[string]any{"issuer": f.iss.URL, "subject": "repo:org/repo:environment:prod"}, nil); err != nil {
		t.Fatal(err)
	}
	f.refused("subject changed by update", f.iss.Token(t, ghSubject, wharf.DefaultFederatedAudience), federation.CodeNoMatch)
	if status, _ := f.exchange("app-ci", f.iss.Token(t, "repo:org/repo:environment:prod", wharf.DefaultFederatedAudience)); status != http.StatusOK {
		t.Errorf("updated subject refused: %d", status)
	}
	// 20 at most; issuer+subject unique.
	if err := f.createFIC("dup", f.iss.URL, "repo:org/repo:environment:prod", ""); wharf.ErrorCode(err) != wharf.ECONFLICT {
		t.Errorf("duplicate issuer and subject: %v", err)
	}
	for i := 2; i <= wharf.MaxFederatedCredentials; i++ {
		if err := f.createFIC(fmt.Sprintf("env-%d", i), f.iss.URL, fmt.Sprintf("repo:org/repo:environment:e%d", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.createFIC("one-too-many", f.iss.URL, "s21", ""); wharf.ErrorCode(err) != wharf.ECONFLICT {
		t.Errorf("21st credential: %v", err)
	}
	// Owner only: a Contributor at / may read but not write; writes are audited.
	contrib := f.principal("contrib", [2]string{wharf.RoleContributor, "/"})
	if err := f.client(contrib).Do(ctx, "GET", base, nil, nil); err != nil {
		t.Errorf("contributor list: %v", err)
	}
	if err := f.client(contrib).Do(ctx, "DELETE", base+"/main", nil, nil); wharf.ErrorCode(err) != wharf.EFORBIDDEN {
		t.Errorf("contributor delete: %v", err)
	}
	if err := f.client(f.owner).Do(ctx, "DELETE", base+"/main", nil, nil); err != nil {
		t.Fatal(err)
	}
	var events []wharf.AuditEvent
	if err := f.client(f.owner).Do(ctx, "GET", "/api/v1/auditEvents", nil, &events); err != nil {
		t.Fatal(err)
	}
	want := []struct{ who, action, outcome string }{
		{"app-owner", wharf.ActionFederatedCredentialDelete, wharf.AuditSucceeded},
		{"app-contrib", wharf.ActionFederatedCredentialDelete, wharf.AuditDenied},
	}
	for i, w := range want {
		if e := events[i]; e.PrincipalID != w.who || e.Action != w.action || e.Outcome != w.outcome {
			t.Errorf("audit event %d = %+v, want %+v", i, e, w)
		}
	}
}
