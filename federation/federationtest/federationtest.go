// Package federationtest runs a real OpenID Connect issuer for tests: its
// discovery document and JWKS are served over HTTPS on loopback by a server
// with its own certificate authority (written to a file, for the Wharf
// server's --oidc-ca-file), and it signs real RS256 and ES256 tokens, the
// way a CI system's issuer does.
package federationtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer is one test issuer; its URL is its iss.
type Issuer struct {
	URL    string
	CAFile string
	HTTP   *httptest.Server

	mu sync.Mutex
	// keys are published; signing uses them by kid.
	rsaKeys    map[string]*rsa.PrivateKey
	ecKeys     map[string]*ecdsa.PrivateKey
	slow       chan struct{}
	hugeJWKS   bool
	jwksServed int
}

// Kids of the keys every issuer starts with.
const (
	RSAKid = "rsa-1"
	ECKid  = "ec-1"
)

// New starts an issuer that lives until the test ends.
func New(t testing.TB) *Issuer {
	t.Helper()
	iss := &Issuer{rsaKeys: map[string]*rsa.PrivateKey{}, ecKeys: map[string]*ecdsa.PrivateKey{}}
	iss.AddRSAKey(t, RSAKid)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	iss.ecKeys[ECKid] = ec
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		iss.wait(r)
		writeJSON(w, map[string]any{"issuer": iss.URL, "jwks_uri": iss.URL + "/.well-known/jwks",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"}})
	})
	mux.HandleFunc("GET /.well-known/jwks", func(w http.ResponseWriter, r *http.Request) {
		iss.wait(r)
		iss.mu.Lock()
		iss.jwksServed++
		huge := iss.hugeJWKS
		iss.mu.Unlock()
		if huge {
			// 10 MB of keys: valid JSON, never ending for a reader that
			// does not bound it.
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"keys":[`))
			filler := []byte(`{"kty":"oct","kid":"` + strings.Repeat("x", 1000) + `"},`)
			for n := 0; n < 10<<20; n += len(filler) {
				if _, err := w.Write(filler); err != nil {
					return
				}
			}
			_, _ = w.Write([]byte(`{}]}`))
			return
		}
		writeJSON(w, iss.jwks())
	})
	iss.HTTP = httptest.NewUnstartedServer(mux)
	// Clients that give up on a slow issuer are expected here.
	iss.HTTP.Config.ErrorLog = log.New(io.Discard, "", 0)
	iss.HTTP.StartTLS()
	iss.URL = iss.HTTP.URL
	iss.CAFile = filepath.Join(t.TempDir(), "issuer-ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: iss.HTTP.Certificate().Raw})
	if err := os.WriteFile(iss.CAFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		iss.SetSlow(false)
		iss.HTTP.Close()
	})
	return iss
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// wait holds a request while the issuer is slow, until it is not or the
// client gives up.
func (iss *Issuer) wait(r *http.Request) {
	iss.mu.Lock()
	slow := iss.slow
	iss.mu.Unlock()
	if slow != nil {
		select {
		case <-slow:
		case <-r.Context().Done():
		}
	}
}

// SetSlow makes the issuer answer no request until it is set fast again.
func (iss *Issuer) SetSlow(slow bool) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	switch {
	case slow && iss.slow == nil:
		iss.slow = make(chan struct{})
	case !slow && iss.slow != nil:
		close(iss.slow)
		iss.slow = nil
	}
}

// SetHugeJWKS makes the JWKS a 10 MB document.
func (iss *Issuer) SetHugeJWKS(huge bool) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.hugeJWKS = huge
}

// JWKSServed counts the JWKS requests answered.
func (iss *Issuer) JWKSServed() int {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	return iss.jwksServed
}

// AddRSAKey generates and publishes a new RSA key, as an issuer rotating
// its keys does.
func (iss *Issuer) AddRSAKey(t testing.TB, kid string) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.rsaKeys[kid] = k
	return k
}

// RSAKey returns the private key with that kid.
func (iss *Issuer) RSAKey(kid string) *rsa.PrivateKey {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	return iss.rsaKeys[kid]
}

func (iss *Issuer) jwks() map[string]any {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	b64 := base64.RawURLEncoding.EncodeToString
	var keys []map[string]string
	for kid, k := range iss.rsaKeys {
		keys = append(keys, map[string]string{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
			"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())})
	}
	for kid, k := range iss.ecKeys {
		keys = append(keys, map[string]string{"kty": "EC", "use": "sig", "alg": "ES256", "kid": kid, "crv": "P-256",
			"x": b64(k.X.FillBytes(make([]byte, 32))), "y": b64(k.Y.FillBytes(make([]byte, 32)))})
	}
	return map[string]any{"keys": keys}
}

// Claims returns the claims of a fresh token for sub and aud, shaped like
// GitHub's: five minutes to live, valid from issue.
func (iss *Issuer) Claims(sub, aud string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"iss": iss.URL, "sub": sub, "aud": aud, "jti": randomID(),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
}

// Sign signs claims with the issuer's key kid, by RS256 or ES256 after
// the key's type.
func (iss *Issuer) Sign(t testing.TB, claims jwt.MapClaims, kid string) string {
	t.Helper()
	iss.mu.Lock()
	rk, ek := iss.rsaKeys[kid], iss.ecKeys[kid]
	iss.mu.Unlock()
	var tok *jwt.Token
	var key any
	switch {
	case rk != nil:
		tok, key = jwt.NewWithClaims(jwt.SigningMethodRS256, claims), rk
	case ek != nil:
		tok, key = jwt.NewWithClaims(jwt.SigningMethodES256, claims), ek
	default:
		t.Fatalf("no key %q", kid)
	}
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Token is a fresh RS256 token for sub and aud.
func (iss *Issuer) Token(t testing.TB, sub, aud string) string {
	return iss.Sign(t, iss.Claims(sub, aud), RSAKid)
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// TokenService plays a CI system's token service, which hands a job a
// token of the issuer; it counts the tokens it handed out.
type TokenService struct {
	*httptest.Server
	asked atomic.Int32
}

// Asked is how many tokens the service handed out.
func (s *TokenService) Asked() int { return int(s.asked.Load()) }

// GitHubTokenService plays GitHub Actions' ID token service: it checks
// the runner's request token as bearer, as GitHub does, and returns
// {"value": JWT} for subject and the audience asked for.
func (iss *Issuer) GitHubTokenService(t testing.TB, requestToken, subject string) *TokenService {
	s := &TokenService{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "bearer "+requestToken {
			http.Error(w, "bad request token", http.StatusUnauthorized)
			return
		}
		s.asked.Add(1)
		writeJSON(w, map[string]string{"value": iss.Token(t, subject, r.URL.Query().Get("audience"))})
	}))
	t.Cleanup(s.Close)
	return s
}

// AzureDevOpsTokenService plays Azure DevOps' OIDC token endpoint: it checks
// what Azure DevOps checks (POST, the job's System.AccessToken as bearer,
// the service connection id, an api-version) and returns {"oidcToken": JWT}
// for subject and audience.
func (iss *Issuer) AzureDevOpsTokenService(t testing.TB, accessToken, connection, subject, audience string) *TokenService {
	s := &TokenService{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer "+accessToken ||
			q.Get("serviceConnectionId") != connection || q.Get("api-version") == "" {
			http.Error(w, "refused", http.StatusUnauthorized)
			return
		}
		s.asked.Add(1)
		writeJSON(w, map[string]string{"oidcToken": iss.Token(t, subject, audience)})
	}))
	t.Cleanup(s.Close)
	return s
}
