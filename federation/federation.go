// Package federation verifies the tokens external identity providers (CI
// systems: GitHub Actions, Azure Pipelines, GitLab) issue, so that a
// service principal can log in with one in place of a secret: workload
// identity federation, as Entra ID does it.
//
// An issuer's keys are fetched over HTTPS from its OpenID Connect discovery
// document, only for issuers some federated credential names, with bounded
// size and time, and cached. Errors carry Entra ID's AADSTS codes and never
// contain the token or say which of its claims failed to match.
package federation

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wharfml/wharf"
)

// AssertionType is the client_assertion_type of a JWT client assertion
// (RFC 7523).
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Entra ID's error codes for federated token exchange.
const (
	// CodeNoMatch: no federated credential of the client matches the
	// assertion's issuer, subject and audience together.
	CodeNoMatch = 70021
	// CodeTimeRange: the assertion is expired, not yet valid, or issued in
	// the future.
	CodeTimeRange = 700024
	// CodeSignature: the signature does not verify with the issuer's keys
	// (unknown key, forbidden algorithm, wrong key type, bad signature).
	CodeSignature = 700027
	// CodeMalformed: not a JWT.
	CodeMalformed = 50027
	// CodeIssuerUnreachable: the issuer's discovery document or keys could
	// not be fetched (unreachable, slow, too large, not valid).
	CodeIssuerUnreachable = 50166
	// CodeOwnToken: a token this server issued was presented as an
	// assertion.
	CodeOwnToken = 700222
)

var messages = map[int]string{
	CodeNoMatch:           "No matching federated identity record found for presented assertion.",
	CodeTimeRange:         "Client assertion is not within its valid time range.",
	CodeSignature:         "Client assertion failed signature validation.",
	CodeMalformed:         "The client assertion is not a valid JWT.",
	CodeIssuerUnreachable: "Request to External OIDC endpoint failed.",
	CodeOwnToken:          "A token issued by this server cannot be used as a federated identity assertion.",
}

// Error is a refused assertion. Error() is what the client is told; Reason
// says why for the server's log, and names no part of the token beyond its
// issuer and subject.
type Error struct {
	Code   int
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("AADSTS%d: %s", e.Code, messages[e.Code]) }

func refuse(code int, format string, args ...any) *Error {
	return &Error{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// Defaults of the Verifier's bounds.
const (
	DefaultLeeway          = 60 * time.Second
	DefaultFetchTimeout    = 5 * time.Second
	DefaultMaxDocument     = 1 << 20
	DefaultKeysTTL         = time.Hour
	DefaultRefreshInterval = time.Minute
	// MaxKeys is how many keys of an issuer's JWKS are kept, Entra ID's cap.
	MaxKeys = 100
	// maxAssertionLen bounds the work done on what an unauthenticated
	// caller sends; CI tokens are 1-2 KiB.
	maxAssertionLen = 16 << 10
)

// allowedAlgs are the only signature algorithms accepted: asymmetric ones,
// so that no public key can be used as a shared secret.
var allowedAlgs = []string{jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg()}

// Verifier checks assertions against federated credentials. Its zero value
// is not usable; make one with NewVerifier.
type Verifier struct {
	// Client fetches discovery documents and keys; its TLS roots decide
	// which issuers are trusted, and verification is never off.
	Client *http.Client
	// OwnIssuers are the iss values of this server's own tokens, refused as
	// assertions.
	OwnIssuers []string
	// Now replaces time.Now.
	Now func() time.Time
	// Leeway is the clock skew tolerated on exp, nbf and iat.
	Leeway time.Duration
	// FetchTimeout bounds one fetch of a discovery document or a JWKS.
	FetchTimeout time.Duration
	// MaxDocument bounds the size of a discovery document or a JWKS.
	MaxDocument int64
	// KeysTTL is how long fetched keys are used before they are fetched
	// again; RefreshInterval is the least time between two fetches for an
	// unknown key id, so a stream of made-up key ids cannot make the server
	// hammer an issuer.
	KeysTTL, RefreshInterval time.Duration

	mu      sync.Mutex
	issuers map[string]*issuerKeys
}

// issuerKeys is the cached key set of one issuer. Its mutex is held during
// a fetch, so concurrent exchanges for one issuer fetch once.
type issuerKeys struct {
	mu        sync.Mutex
	keys      map[string]any
	fetchedAt time.Time
}

// NewVerifier returns a verifier with the default bounds that trusts the
// system's certificate authorities plus those in the PEM file caFile, if
// given.
func NewVerifier(caFile string) (*Verifier, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("OIDC CA file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("OIDC CA file %s holds no PEM certificate", caFile)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyFromEnvironment
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	client := &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != "https" || len(via) > 3 {
				return errors.New("redirect refused")
			}
			return nil
		},
	}
	return &Verifier{Client: client, issuers: map[string]*issuerKeys{}}, nil
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func orDefault[T int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Assertion is a verified token and the credential it matched.
type Assertion struct {
	Issuer, Subject, ID string
	Credential          *wharf.FederatedCredential
}

// claims are the registered claims an assertion must carry; aud may be a
// string or an array.
type claims struct {
	jwt.RegisteredClaims
}

// Verify checks token against the client's federated credentials: an
// issuer named by one of them, a signature by one of that issuer's keys
// with RS256 or ES256, exp, nbf and iat within Leeway of now, and iss, sub
// and aud all equal to one credential's. The error is an *Error, or the
// context's error.
func (v *Verifier) Verify(ctx context.Context, token string, creds []*wharf.FederatedCredential) (*Assertion, error) {
	if len(token) == 0 || len(token) > maxAssertionLen {
		return nil, refuse(CodeMalformed, "assertion empty or too long")
	}
	var unverified claims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &unverified); err != nil {
		return nil, refuse(CodeMalformed, "assertion is not a JWT")
	}
	iss := unverified.Issuer
	for _, own := range v.OwnIssuers {
		if iss == own {
			return nil, refuse(CodeOwnToken, "a Wharf access token was presented as an assertion")
		}
	}
	var candidates []*wharf.FederatedCredential
	for _, c := range creds {
		if c.Issuer == iss {
			candidates = append(candidates, c)
		}
	}
	if len(candidates) == 0 {
		// The issuer is nobody's to trust: never fetch anything from it.
		return nil, refuse(CodeNoMatch, "no federated credential names issuer %q", iss)
	}
	ik := v.keysOf(iss)
	if err := v.ensureKeys(ctx, ik, iss, false); err != nil {
		return nil, err
	}

	parser := jwt.NewParser(
		jwt.WithValidMethods(allowedAlgs),
		jwt.WithIssuer(iss),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(orDefault(v.Leeway, DefaultLeeway)),
		jwt.WithTimeFunc(v.now),
	)
	var fetchErr error
	var c claims
	_, err := parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		key, ok := ik.lookup(kid)
		if !ok {
			// A rotated key: fetch again, at most once per RefreshInterval.
			if fetchErr = v.ensureKeys(ctx, ik, iss, true); fetchErr != nil {
				return nil, fetchErr
			}
			if key, ok = ik.lookup(kid); !ok {
				return nil, errors.New("unknown key")
			}
		}
		switch t.Method {
		case jwt.SigningMethodRS256:
			if k, ok := key.(*rsa.PublicKey); ok {
				return k, nil
			}
		case jwt.SigningMethodES256:
			if k, ok := key.(*ecdsa.PublicKey); ok && k.Curve == elliptic.P256() {
				return k, nil
			}
		}
		return nil, errors.New("key type does not match the algorithm")
	})
	var fe *Error
	switch {
	case err == nil:
	case errors.As(fetchErr, &fe):
		return nil, fe
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(err, jwt.ErrTokenMalformed):
		return nil, refuse(CodeMalformed, "assertion from %q is malformed", iss)
	case errors.Is(err, jwt.ErrTokenExpired), errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return nil, refuse(CodeTimeRange, "assertion from %q for %q is outside its validity", iss, c.Subject)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return nil, refuse(CodeTimeRange, "assertion from %q has no exp", iss)
	default:
		return nil, refuse(CodeSignature, "assertion from %q: signature not verified (algorithm, key id or signature)", iss)
	}
	for _, cred := range candidates {
		if cred.Subject == c.Subject && len(cred.Audiences) == 1 && containsAud(c.Audience, cred.Audiences[0]) {
			return &Assertion{Issuer: iss, Subject: c.Subject, ID: c.ID, Credential: cred}, nil
		}
	}
	return nil, refuse(CodeNoMatch, "no federated credential for issuer %q matches subject %q and audience %q", iss, c.Subject, []string(c.Audience))
}

func containsAud(auds jwt.ClaimStrings, want string) bool {
	for _, a := range auds {
		if a == want {
			return true
		}
	}
	return false
}

func (v *Verifier) keysOf(iss string) *issuerKeys {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.issuers == nil {
		v.issuers = map[string]*issuerKeys{}
	}
	ik := v.issuers[iss]
	if ik == nil {
		ik = &issuerKeys{}
		v.issuers[iss] = ik
	}
	return ik
}

func (ik *issuerKeys) lookup(kid string) (any, bool) {
	ik.mu.Lock()
	defer ik.mu.Unlock()
	k, ok := ik.keys[kid]
	return k, ok && kid != ""
}

// ensureKeys fetches the issuer's keys when there are none, when they are
// older than KeysTTL, or, with unknownKid, when the last fetch is older
// than RefreshInterval.
func (v *Verifier) ensureKeys(ctx context.Context, ik *issuerKeys, iss string, unknownKid bool) error {
	ik.mu.Lock()
	defer ik.mu.Unlock()
	age := v.now().Sub(ik.fetchedAt)
	switch {
	case ik.keys == nil:
	case unknownKid && age >= orDefault(v.RefreshInterval, DefaultRefreshInterval):
	case !unknownKid && age >= orDefault(v.KeysTTL, DefaultKeysTTL):
	default:
		return nil
	}
	keys, err := v.fetchKeys(ctx, iss)
	if err != nil {
		if ik.keys != nil && !unknownKid {
			// Keep serving the keys we have while the issuer is down; a
			// key it no longer publishes is still refused once it is back.
			ik.fetchedAt = v.now().Add(-orDefault(v.KeysTTL, DefaultKeysTTL) + orDefault(v.RefreshInterval, DefaultRefreshInterval))
			return nil
		}
		if ik.keys != nil {
			ik.fetchedAt = v.now()
		}
		return refuse(CodeIssuerUnreachable, "issuer %q: %v", iss, err)
	}
	ik.keys, ik.fetchedAt = keys, v.now()
	return nil
}

// fetchKeys reads the issuer's discovery document and its JWKS.
func (v *Verifier) fetchKeys(ctx context.Context, iss string) (map[string]any, error) {
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := v.getJSON(ctx, strings.TrimSuffix(iss, "/")+"/.well-known/openid-configuration", &doc); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	if doc.Issuer != iss {
		return nil, fmt.Errorf("discovery names issuer %q", doc.Issuer)
	}
	u, err := url.Parse(doc.JWKSURI)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, errors.New("discovery's jwks_uri is not an https URL")
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := v.getJSON(ctx, doc.JWKSURI, &set); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	keys := map[string]any{}
	for _, raw := range set.Keys {
		if len(keys) == MaxKeys {
			break
		}
		kid, key, ok := parseJWK(raw)
		if ok {
			keys[kid] = key
		}
	}
	return keys, nil
}

// getJSON GETs url into v within FetchTimeout and MaxDocument bytes.
func (v *Verifier) getJSON(ctx context.Context, u string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, orDefault(v.FetchTimeout, DefaultFetchTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return errors.New("timed out")
		}
		return errors.New("unreachable or TLS verification failed")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	max := orDefault(v.MaxDocument, DefaultMaxDocument)
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return errors.New("read failed or timed out")
	}
	if int64(len(b)) > max {
		return fmt.Errorf("larger than %d bytes", max)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return errors.New("not valid JSON")
	}
	return nil
}

// parseJWK reads a signing key: RSA of at least 2048 bits, or EC P-256.
func parseJWK(raw json.RawMessage) (string, any, bool) {
	var k struct {
		Kid, Kty, Use, Crv, N, E, X, Y string
	}
	if json.Unmarshal(raw, &k) != nil || k.Kid == "" || (k.Use != "" && k.Use != "sig") {
		return "", nil, false
	}
	b64 := func(s string) *big.Int {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(b) == 0 {
			return nil
		}
		return new(big.Int).SetBytes(b)
	}
	switch k.Kty {
	case "RSA":
		n, e := b64(k.N), b64(k.E)
		if n == nil || e == nil || n.BitLen() < 2048 || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
			return "", nil, false
		}
		return k.Kid, &rsa.PublicKey{N: n, E: int(e.Int64())}, true
	case "EC":
		x, y := b64(k.X), b64(k.Y)
		if k.Crv != "P-256" || x == nil || y == nil || x.BitLen() > 256 || y.BitLen() > 256 {
			return "", nil, false
		}
		// crypto/ecdh refuses a point that is not on the curve.
		point := append([]byte{4}, append(x.FillBytes(make([]byte, 32)), y.FillBytes(make([]byte, 32))...)...)
		if _, err := ecdh.P256().NewPublicKey(point); err != nil {
			return "", nil, false
		}
		return k.Kid, &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}, true
	}
	return "", nil, false
}
