package federation

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/federation/federationtest"
)

const sub = "repo:org/repo:ref:refs/heads/main"

func newVerifier(t *testing.T, iss *federationtest.Issuer) (*Verifier, []*wharf.FederatedCredential) {
	t.Helper()
	v, err := NewVerifier(iss.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	v.FetchTimeout = 300 * time.Millisecond
	creds := []*wharf.FederatedCredential{{Name: "main", Issuer: iss.URL, Subject: sub, Audiences: []string{wharf.DefaultFederatedAudience}}}
	return v, creds
}

func wantCode(t *testing.T, what string, err error, code int) {
	t.Helper()
	var fe *Error
	if !errors.As(err, &fe) || fe.Code != code {
		t.Errorf("%s: %v, want AADSTS%d", what, err, code)
	}
}

func TestKeyTypeMustMatchTheAlgorithm(t *testing.T) {
	iss := federationtest.New(t)
	v, creds := newVerifier(t, iss)
	ctx := context.Background()
	if _, err := v.Verify(ctx, iss.Token(t, sub, wharf.DefaultFederatedAudience), creds); err != nil {
		t.Fatal(err)
	}
	forge := func(m jwt.SigningMethod, kid string, key any) string {
		tok := jwt.NewWithClaims(m, iss.Claims(sub, wharf.DefaultFederatedAudience))
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ek384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for what, tok := range map[string]string{
		// RS256 under the EC key's kid, and ES256 under the RSA key's kid.
		"RS256 with an EC key's kid":  forge(jwt.SigningMethodRS256, federationtest.ECKid, rk),
		"ES256 with an RSA key's kid": forge(jwt.SigningMethodES256, federationtest.RSAKid, ek),
		// ES384 and PS256 are not on the allow-list, whatever the key.
		"ES384": forge(jwt.SigningMethodES384, federationtest.ECKid, ek384),
		"PS256": forge(jwt.SigningMethodPS256, federationtest.RSAKid, iss.RSAKey(federationtest.RSAKid)),
	} {
		_, err := v.Verify(ctx, tok, creds)
		wantCode(t, what, err, CodeSignature)
	}
}

func TestIssuerNotNamedByACredentialIsNeverFetched(t *testing.T) {
	iss := federationtest.New(t)
	v, creds := newVerifier(t, iss)
	other := federationtest.New(t)
	_, err := v.Verify(context.Background(), other.Token(t, sub, wharf.DefaultFederatedAudience), creds)
	wantCode(t, "unconfigured issuer", err, CodeNoMatch)
	if other.JWKSServed() != 0 {
		t.Errorf("the keys of an issuer no credential names were fetched")
	}
}

func TestKeysOutliveAnIssuerOutage(t *testing.T) {
	iss := federationtest.New(t)
	v, creds := newVerifier(t, iss)
	now := time.Now()
	v.Now = func() time.Time { return now }
	ctx := context.Background()
	if _, err := v.Verify(ctx, iss.Token(t, sub, wharf.DefaultFederatedAudience), creds); err != nil {
		t.Fatal(err)
	}
	// The keys are due for a refresh, and the issuer does not answer.
	now = now.Add(DefaultKeysTTL + time.Second)
	iss.SetSlow(true)
	c := iss.Claims(sub, wharf.DefaultFederatedAudience)
	c["iat"], c["nbf"], c["exp"] = now.Unix(), now.Unix(), now.Add(5*time.Minute).Unix()
	if _, err := v.Verify(ctx, iss.Sign(t, c, federationtest.RSAKid), creds); err != nil {
		t.Errorf("known key refused while the issuer is down: %v", err)
	}
	iss.SetSlow(false)
}

// TestDiscoveryMustNameTheIssuer: a discovery document for another issuer,
// or with keys at a plain-http URL, is refused.
func TestDiscoveryMustNameTheIssuer(t *testing.T) {
	for name, doc := range map[string]func(self string) map[string]string{
		"other issuer": func(self string) map[string]string {
			return map[string]string{"issuer": "https://token.actions.githubusercontent.com", "jwks_uri": self + "/keys"}
		},
		"http jwks_uri": func(self string) map[string]string {
			return map[string]string{"issuer": self, "jwks_uri": "http://" + self[len("https://"):] + "/keys"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			iss := federationtest.New(t)
			var self string
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = json.NewEncoder(w).Encode(doc(self))
			}))
			t.Cleanup(srv.Close)
			self = srv.URL
			v, _ := newVerifier(t, iss) // the same test CA signs srv's certificate
			c := iss.Claims(sub, wharf.DefaultFederatedAudience)
			c["iss"] = self
			creds := []*wharf.FederatedCredential{{Name: "x", Issuer: self, Subject: sub, Audiences: []string{wharf.DefaultFederatedAudience}}}
			_, err := v.Verify(context.Background(), iss.Sign(t, c, federationtest.RSAKid), creds)
			wantCode(t, name, err, CodeIssuerUnreachable)
		})
	}
}

func TestWeakAndForeignKeysAreSkipped(t *testing.T) {
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	strong, _ := rsa.GenerateKey(rand.Reader, 2048)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	e := b64(big.NewInt(65537).Bytes())
	for _, tc := range []struct {
		jwk string
		ok  bool
	}{
		{fmt.Sprintf(`{"kty":"RSA","kid":"a","n":%q,"e":%q}`, b64(strong.N.Bytes()), e), true},
		{fmt.Sprintf(`{"kty":"RSA","kid":"a","n":%q,"e":%q}`, b64(weak.N.Bytes()), e), false},
		{fmt.Sprintf(`{"kty":"RSA","kid":"a","use":"enc","n":%q,"e":%q}`, b64(strong.N.Bytes()), e), false},
		{fmt.Sprintf(`{"kty":"RSA","n":%q,"e":%q}`, b64(strong.N.Bytes()), e), false},
		{fmt.Sprintf(`{"kty":"EC","kid":"b","crv":"P-256","x":%q,"y":%q}`, b64(ec.X.Bytes()), b64(ec.Y.Bytes())), true},
		{fmt.Sprintf(`{"kty":"EC","kid":"b","crv":"P-256","x":%q,"y":%q}`, b64(ec.X.Bytes()), b64(new(big.Int).Add(ec.Y, big.NewInt(1)).Bytes())), false},
		{`{"kty":"oct","kid":"c","k":"c2VjcmV0"}`, false},
	} {
		if _, _, ok := parseJWK(json.RawMessage(tc.jwk)); ok != tc.ok {
			t.Errorf("%.60s...: accepted %v, want %v", tc.jwk, ok, tc.ok)
		}
	}
}
