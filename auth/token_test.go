package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testIssuer   = "https://wharf.example.com/tenant-1/v2.0"
	testAudience = "api://wharf"
	testTenant   = "9f1c2a3b-0000-4000-8000-000000000001"
	testSubject  = "5e6f7a8b-0000-4000-8000-000000000002"
	testAppID    = "1a2b3c4d-0000-4000-8000-000000000003"
)

var t0 = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// clock is a settable time source for Issuer.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

func mustKey(t *testing.T, at time.Time) *Key {
	t.Helper()
	k, err := NewKey(at)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newTestIssuer(t *testing.T) (*Issuer, *clock) {
	t.Helper()
	c := &clock{t: t0}
	return &Issuer{
		Issuer:   testIssuer,
		Audience: testAudience,
		TTL:      time.Hour,
		Keys:     NewKeyRing(mustKey(t, t0.Add(-time.Hour))),
		Now:      c.Now,
	}, c
}

func mustIssue(t *testing.T, iss *Issuer) string {
	t.Helper()
	tok, _, err := iss.Issue(testSubject, testTenant, testAppID, "")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// signRaw builds a token from arbitrary header fields and claims, for
// crafting tokens the Issuer itself would never produce.
func signRaw(t *testing.T, method jwt.SigningMethod, key any, header map[string]any, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// validClaims are claims the test issuer would accept at t0.
func validClaims() Claims {
	return Claims{
		Issuer:    testIssuer,
		Subject:   testSubject,
		Audience:  testAudience,
		ExpiresAt: jwt.NewNumericDate(t0.Add(time.Hour)),
		NotBefore: jwt.NewNumericDate(t0),
		IssuedAt:  jwt.NewNumericDate(t0),
		ID:        "jti-1",
		TenantID:  testTenant,
		AppID:     testAppID,
	}
}

// expectReject asserts that verification fails with want and that the
// error text contains neither the token nor any of its segments.
func expectReject(t *testing.T, iss *Issuer, token, audience string, want error) {
	t.Helper()
	c, err := iss.Verify(token, audience)
	if err == nil {
		t.Fatalf("token accepted (claims %+v), want %v", c, want)
	}
	if c != nil {
		t.Fatalf("claims returned alongside error")
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %q does not wrap %q", err, want)
	}
	other := ErrTokenInvalid
	if want == ErrTokenInvalid {
		other = ErrTokenExpired
	}
	if errors.Is(err, other) {
		t.Fatalf("error %q wraps both sentinels", err)
	}
	assertNoLeak(t, err, token)
}

func assertNoLeak(t *testing.T, err error, token string) {
	t.Helper()
	msg := err.Error()
	if token != "" && strings.Contains(msg, token) {
		t.Fatalf("error text contains the token")
	}
	for _, seg := range strings.Split(token, ".") {
		if len(seg) >= 8 && strings.Contains(msg, seg) {
			t.Fatalf("error text contains a token segment")
		}
	}
}

func decodeSegment(t *testing.T, seg string, into any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatal(err)
	}
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	iss, _ := newTestIssuer(t)
	tok, exp, err := iss.Issue(testSubject, testTenant, testAppID, "")
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(t0.Add(time.Hour)) {
		t.Fatalf("expiresAt %v, want %v", exp, t0.Add(time.Hour))
	}

	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments", len(parts))
	}
	var hdr map[string]any
	decodeSegment(t, parts[0], &hdr)
	if hdr["alg"] != "ES256" || hdr["typ"] != "JWT" || hdr["kid"] != iss.Keys.Current().ID {
		t.Fatalf("header %v", hdr)
	}
	var raw map[string]any
	decodeSegment(t, parts[1], &raw)
	if _, isString := raw["aud"].(string); !isString {
		t.Fatalf("aud is %T, want a single string", raw["aud"])
	}

	c, err := iss.Verify(tok, "")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"iss", c.Issuer, testIssuer},
		{"sub", c.Subject, testSubject},
		{"aud", c.Audience, testAudience},
		{"tid", c.TenantID, testTenant},
		{"oid", c.ObjectID, testSubject},
		{"appid", c.AppID, testAppID},
		{"azp", c.AuthorizedParty, testAppID},
		{"idtyp", c.IdentityType, "app"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if c.ID == "" {
		t.Error("jti empty")
	}
	if !c.IssuedAt.Time.Equal(t0) || !c.NotBefore.Time.Equal(t0) || !c.ExpiresAt.Time.Equal(t0.Add(time.Hour)) {
		t.Errorf("times iat=%v nbf=%v exp=%v", c.IssuedAt, c.NotBefore, c.ExpiresAt)
	}

	// Same audience passed explicitly.
	if _, err := iss.Verify(tok, testAudience); err != nil {
		t.Fatal(err)
	}

	// jti is unique per token.
	c2, err := iss.Verify(mustIssue(t, iss), "")
	if err != nil {
		t.Fatal(err)
	}
	if c2.ID == c.ID {
		t.Fatal("jti reused")
	}
}

func TestIssueExplicitAudience(t *testing.T) {
	iss, _ := newTestIssuer(t)
	tok, _, err := iss.Issue(testSubject, testTenant, testAppID, "api://other")
	if err != nil {
		t.Fatal(err)
	}
	c, err := iss.Verify(tok, "api://other")
	if err != nil {
		t.Fatal(err)
	}
	if c.Audience != "api://other" {
		t.Fatalf("aud %q", c.Audience)
	}
	expectReject(t, iss, tok, "", ErrTokenInvalid)
}

func TestIssueRequiresConfiguration(t *testing.T) {
	iss, _ := newTestIssuer(t)
	bad := []func(*Issuer){
		func(i *Issuer) { i.Keys = nil },
		func(i *Issuer) { i.Keys = NewKeyRing() },
		func(i *Issuer) { i.TTL = 0 },
		func(i *Issuer) { i.Issuer = "" },
		func(i *Issuer) { i.Audience = "" },
	}
	for n, mutate := range bad {
		cp := *iss
		mutate(&cp)
		if _, _, err := cp.Issue(testSubject, testTenant, testAppID, ""); err == nil {
			t.Errorf("case %d: issued with bad configuration", n)
		}
	}
	if _, _, err := iss.Issue("", testTenant, testAppID, ""); err == nil {
		t.Error("issued without subject")
	}
}

func TestExpiryLeeway(t *testing.T) {
	for _, tc := range []struct {
		name   string
		leeway time.Duration
		want   time.Duration
	}{
		{"default", 0, DefaultLeeway},
		{"custom", 5 * time.Second, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iss, clk := newTestIssuer(t)
			iss.Leeway = tc.leeway
			tok, exp, err := iss.Issue(testSubject, testTenant, testAppID, "")
			if err != nil {
				t.Fatal(err)
			}

			clk.Set(exp.Add(tc.want - time.Second))
			if _, err := iss.Verify(tok, ""); err != nil {
				t.Fatalf("rejected within leeway: %v", err)
			}

			clk.Set(exp.Add(tc.want + time.Second))
			expectReject(t, iss, tok, "", ErrTokenExpired)
		})
	}
}

func TestNegativeLeewayMeansNone(t *testing.T) {
	iss, clk := newTestIssuer(t)
	iss.Leeway = -1
	tok, exp, err := iss.Issue(testSubject, testTenant, testAppID, "")
	if err != nil {
		t.Fatal(err)
	}
	clk.Set(exp.Add(time.Second))
	expectReject(t, iss, tok, "", ErrTokenExpired)
}

func TestNotBeforeInFuture(t *testing.T) {
	iss, _ := newTestIssuer(t)
	key := iss.Keys.Current()
	hdr := map[string]any{"kid": key.ID}

	c := validClaims()
	c.NotBefore = jwt.NewNumericDate(t0.Add(DefaultLeeway + time.Second))
	expectReject(t, iss, signRaw(t, jwt.SigningMethodES256, key.Private, hdr, c), "", ErrTokenInvalid)

	c.NotBefore = jwt.NewNumericDate(t0.Add(DefaultLeeway - time.Second))
	if _, err := iss.Verify(signRaw(t, jwt.SigningMethodES256, key.Private, hdr, c), ""); err != nil {
		t.Fatalf("nbf within leeway rejected: %v", err)
	}
}

func TestIssuedInFuture(t *testing.T) {
	iss, clk := newTestIssuer(t)
	key := iss.Keys.Current()
	hdr := map[string]any{"kid": key.ID}

	c := validClaims()
	c.NotBefore = nil
	c.IssuedAt = jwt.NewNumericDate(t0.Add(DefaultLeeway + time.Second))
	expectReject(t, iss, signRaw(t, jwt.SigningMethodES256, key.Private, hdr, c), "", ErrTokenInvalid)

	// A token verified by a server whose clock lags beyond the leeway.
	tok := mustIssue(t, iss)
	clk.Set(t0.Add(-DefaultLeeway - time.Second))
	expectReject(t, iss, tok, "", ErrTokenInvalid)
	clk.Set(t0.Add(-DefaultLeeway + time.Second))
	if _, err := iss.Verify(tok, ""); err != nil {
		t.Fatalf("lag within leeway rejected: %v", err)
	}
}

func TestMissingExpRejected(t *testing.T) {
	iss, _ := newTestIssuer(t)
	key := iss.Keys.Current()
	c := validClaims()
	c.ExpiresAt = nil
	expectReject(t, iss, signRaw(t, jwt.SigningMethodES256, key.Private, map[string]any{"kid": key.ID}, c), "", ErrTokenInvalid)
}

func TestTamperedSignature(t *testing.T) {
	iss, _ := newTestIssuer(t)
	tok := mustIssue(t, iss)
	parts := strings.Split(tok, ".")
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, len(sig) / 2, len(sig) - 1} {
		mod := append([]byte(nil), sig...)
		mod[i] ^= 0x01
		bad := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(mod)
		expectReject(t, iss, bad, "", ErrTokenInvalid)
	}
	// Dropping the signature entirely.
	expectReject(t, iss, parts[0]+"."+parts[1]+".", "", ErrTokenInvalid)
	expectReject(t, iss, parts[0]+"."+parts[1], "", ErrTokenInvalid)
}

func TestTamperedPayload(t *testing.T) {
	iss, _ := newTestIssuer(t)
	tok := mustIssue(t, iss)
	parts := strings.Split(tok, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	// Flip one byte inside the subject value, keeping the JSON valid, so
	// only the signature can catch it.
	idx := strings.Index(string(payload), testSubject)
	if idx < 0 {
		t.Fatal("subject not found in payload")
	}
	mod := append([]byte(nil), payload...)
	mod[idx] ^= 0x01
	var check Claims
	if err := json.Unmarshal(mod, &check); err != nil || check.Subject == testSubject {
		t.Fatalf("tampered payload not a valid different claim set: %v", err)
	}
	bad := parts[0] + "." + base64.RawURLEncoding.EncodeToString(mod) + "." + parts[2]
	expectReject(t, iss, bad, "", ErrTokenInvalid)

	// Also a raw flip of one encoded character.
	b := []byte(tok)
	i := len(parts[0]) + 1 + len(parts[1])/2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	expectReject(t, iss, string(b), "", ErrTokenInvalid)
}

func TestAlgNoneRejected(t *testing.T) {
	iss, _ := newTestIssuer(t)
	kid := iss.Keys.Current().ID
	tok := signRaw(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": kid}, validClaims())
	expectReject(t, iss, tok, "", ErrTokenInvalid)

	// Hand-built variants with other spellings of none.
	payload := strings.Split(tok, ".")[1]
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		hdr, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT", "kid": kid})
		h := base64.RawURLEncoding.EncodeToString(hdr)
		expectReject(t, iss, h+"."+payload+".", "", ErrTokenInvalid)
	}
}

func TestHS256WithPublicKeyRejected(t *testing.T) {
	iss, _ := newTestIssuer(t)
	key := iss.Keys.Current()
	pub := &key.Private.PublicKey

	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	point, err := pub.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := iss.Keys.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string][]byte{
		"pem":   pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		"der":   der,
		"point": point,
		"jwks":  jwks,
	}
	for name, secret := range secrets {
		for _, m := range []jwt.SigningMethod{jwt.SigningMethodHS256, jwt.SigningMethodHS384, jwt.SigningMethodHS512} {
			tok := signRaw(t, m, secret, map[string]any{"kid": key.ID}, validClaims())
			t.Run(name+"/"+m.Alg(), func(t *testing.T) {
				expectReject(t, iss, tok, "", ErrTokenInvalid)
			})
		}
	}
}

func TestOtherAlgorithmsRejected(t *testing.T) {
	iss, _ := newTestIssuer(t)
	kid := iss.Keys.Current().ID
	hdr := map[string]any{"kid": kid}

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	expectReject(t, iss, signRaw(t, jwt.SigningMethodRS256, rsaKey, hdr, validClaims()), "", ErrTokenInvalid)
	expectReject(t, iss, signRaw(t, jwt.SigningMethodPS256, rsaKey, hdr, validClaims()), "", ErrTokenInvalid)

	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	expectReject(t, iss, signRaw(t, jwt.SigningMethodES384, p384, hdr, validClaims()), "", ErrTokenInvalid)

	// Correct algorithm and kid, but an attacker's own P-256 key.
	foreign := mustKey(t, t0)
	expectReject(t, iss, signRaw(t, jwt.SigningMethodES256, foreign.Private, hdr, validClaims()), "", ErrTokenInvalid)
}

func TestUnknownKidRejected(t *testing.T) {
	iss, _ := newTestIssuer(t)
	other := mustKey(t, t0)
	tok := signRaw(t, jwt.SigningMethodES256, other.Private, map[string]any{"kid": other.ID}, validClaims())
	expectReject(t, iss, tok, "", ErrTokenInvalid)

	// Unknown, missing or non-string kid, even when signed by the current key.
	cur := iss.Keys.Current().Private
	expectReject(t, iss, signRaw(t, jwt.SigningMethodES256, cur, map[string]any{"kid": other.ID}, validClaims()), "", ErrTokenInvalid)
	expectReject(t, iss, signRaw(t, jwt.SigningMethodES256, cur, nil, validClaims()), "", ErrTokenInvalid)
	expectReject(t, iss, signRaw(t, jwt.SigningMethodES256, cur, map[string]any{"kid": 7}, validClaims()), "", ErrTokenInvalid)
}

func TestWrongIssuerRejected(t *testing.T) {
	iss, _ := newTestIssuer(t)
	for _, other := range []string{
		testIssuer + "/",
		strings.TrimSuffix(testIssuer, "/v2.0"),
		"https://evil.example.com/tenant-1/v2.0",
		strings.ToUpper(testIssuer),
		"",
	} {
		minter := *iss
		minter.Issuer = other
		var tok string
		if other == "" {
			c := validClaims()
			c.Issuer = ""
			key := iss.Keys.Current()
			tok = signRaw(t, jwt.SigningMethodES256, key.Private, map[string]any{"kid": key.ID}, c)
		} else {
			tok = mustIssue(t, &minter)
		}
		expectReject(t, iss, tok, "", ErrTokenInvalid)
	}

	// And the reverse: a verifier configured with a trailing slash does
	// not accept tokens without one.
	slash := *iss
	slash.Issuer = testIssuer + "/"
	expectReject(t, &slash, mustIssue(t, iss), "", ErrTokenInvalid)
}

func TestWrongAudienceRejected(t *testing.T) {
	iss, _ := newTestIssuer(t)
	tok := mustIssue(t, iss)
	for _, aud := range []string{"api://other", testAudience + "/", "API://WHARF"} {
		expectReject(t, iss, tok, aud, ErrTokenInvalid)
	}

	// Token minted for another audience, verified with the default.
	other, _, err := iss.Issue(testSubject, testTenant, testAppID, "api://other")
	if err != nil {
		t.Fatal(err)
	}
	expectReject(t, iss, other, "", ErrTokenInvalid)

	// Token without aud.
	key := iss.Keys.Current()
	c := validClaims()
	c.Audience = ""
	expectReject(t, iss, signRaw(t, jwt.SigningMethodES256, key.Private, map[string]any{"kid": key.ID}, c), "", ErrTokenInvalid)
}

func TestExpiredAndWrongAudienceIsInvalid(t *testing.T) {
	// Expiry is only reported when it is the sole problem.
	iss, clk := newTestIssuer(t)
	tok := mustIssue(t, iss)
	clk.Set(t0.Add(24 * time.Hour))
	expectReject(t, iss, tok, "api://other", ErrTokenInvalid)
}

func TestMalformedTokensRejected(t *testing.T) {
	iss, _ := newTestIssuer(t)
	good := mustIssue(t, iss)
	p := strings.Split(good, ".")
	for _, tok := range []string{
		"",
		"garbage",
		"a.b.c",
		"...",
		good + ".",
		p[0] + "." + p[1] + "=." + p[2],
		p[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("not json")) + "." + p[2],
		strings.Repeat("A", maxTokenLen+1),
	} {
		expectReject(t, iss, tok, "", ErrTokenInvalid)
	}
}

func TestVerifyRequiresConfiguration(t *testing.T) {
	iss, _ := newTestIssuer(t)
	tok := mustIssue(t, iss)
	for _, mutate := range []func(*Issuer){
		func(i *Issuer) { i.Keys = nil },
		func(i *Issuer) { i.Issuer = "" },
		func(i *Issuer) { i.Audience = "" },
	} {
		cp := *iss
		mutate(&cp)
		expectReject(t, &cp, tok, "", ErrTokenInvalid)
	}
}

func TestRotation(t *testing.T) {
	const (
		rotateEvery = 24 * time.Hour
		keep        = 48 * time.Hour
	)
	clk := &clock{t: t0}
	k1 := mustKey(t, t0)
	iss := &Issuer{
		Issuer:   testIssuer,
		Audience: testAudience,
		TTL:      7 * 24 * time.Hour, // long, so only the key decides
		Keys:     NewKeyRing(k1),
		Now:      clk.Now,
	}
	oldTok := mustIssue(t, iss)

	clk.Set(t0.Add(rotateEvery + time.Minute))
	if !iss.Keys.NeedsRotation(clk.Now(), rotateEvery) {
		t.Fatal("rotation not due")
	}
	k2 := mustKey(t, clk.Now())
	iss.Keys.Add(k2)
	iss.Keys.Prune(clk.Now(), keep)
	if iss.Keys.NeedsRotation(clk.Now(), rotateEvery) {
		t.Fatal("rotation still due after adding a key")
	}
	if iss.Keys.Current().ID != k2.ID {
		t.Fatal("new key is not current")
	}

	newTok := mustIssue(t, iss)
	var hdr map[string]any
	decodeSegment(t, strings.Split(newTok, ".")[0], &hdr)
	if hdr["kid"] != k2.ID {
		t.Fatalf("new token signed with kid %v, want %v", hdr["kid"], k2.ID)
	}
	if _, err := iss.Verify(oldTok, ""); err != nil {
		t.Fatalf("token from older kept key rejected: %v", err)
	}
	if _, err := iss.Verify(newTok, ""); err != nil {
		t.Fatal(err)
	}

	// Past the keep window the old key is pruned and its tokens die, even
	// though they have not expired.
	clk.Set(t0.Add(keep + time.Minute))
	iss.Keys.Prune(clk.Now(), keep)
	if _, ok := iss.Keys.Lookup(k1.ID); ok {
		t.Fatal("old key survived pruning")
	}
	expectReject(t, iss, oldTok, "", ErrTokenInvalid)
	if _, err := iss.Verify(newTok, ""); err != nil {
		t.Fatalf("token from current key rejected after prune: %v", err)
	}
}

func TestConcurrentIssueVerifyRotate(t *testing.T) {
	iss, _ := newTestIssuer(t)
	iss.Now = func() time.Time { return t0 }
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				tok, _, err := iss.Issue(testSubject, testTenant, testAppID, "")
				if err != nil {
					errs <- err
					return
				}
				if _, err := iss.Verify(tok, ""); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 10; i++ {
			k, err := NewKey(t0.Add(time.Duration(i) * time.Second))
			if err != nil {
				errs <- err
				return
			}
			iss.Keys.Add(k)
			// Keep everything a verifier could still need.
			iss.Keys.Prune(t0, time.Hour*2)
			_, _ = iss.Keys.JWKS()
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
