package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestNewKey(t *testing.T) {
	a := mustKey(t, t0)
	b := mustKey(t, t0)
	if a.ID == "" || a.ID == b.ID {
		t.Fatalf("kids %q and %q", a.ID, b.ID)
	}
	if a.Private.Curve != elliptic.P256() {
		t.Fatal("not P-256")
	}
	if !a.CreatedAt.Equal(t0) {
		t.Fatalf("CreatedAt %v", a.CreatedAt)
	}
}

func TestMarshalUnmarshalKey(t *testing.T) {
	k := mustKey(t, t0.Add(123*time.Millisecond))
	data, err := MarshalKey(k)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	pemText, _ := raw["private_key"].(string)
	if !strings.HasPrefix(pemText, "-----BEGIN PRIVATE KEY-----") {
		t.Fatalf("private_key is not PKCS#8 PEM")
	}

	back, err := UnmarshalKey(data)
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != k.ID || !back.CreatedAt.Equal(k.CreatedAt) || !back.Private.Equal(k.Private) {
		t.Fatal("round trip changed the key")
	}

	// A token signed by the restored key verifies against the original.
	iss, _ := newTestIssuer(t)
	iss.Keys = NewKeyRing(k)
	signer := *iss
	signer.Keys = NewKeyRing(back)
	if _, err := iss.Verify(mustIssue(t, &signer), ""); err != nil {
		t.Fatal(err)
	}
}

func TestUnmarshalKeyRejects(t *testing.T) {
	k := mustKey(t, t0)
	good, err := MarshalKey(k)
	if err != nil {
		t.Fatal(err)
	}
	var s storedKey
	if err := json.Unmarshal(good, &s); err != nil {
		t.Fatal(err)
	}
	encode := func(mutate func(*storedKey)) []byte {
		c := s
		mutate(&c)
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der384, _ := x509.MarshalPKCS8PrivateKey(p384)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	derRSA, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	derEC, _ := x509.MarshalECPrivateKey(k.Private)

	cases := map[string][]byte{
		"not json":  []byte("{" + s.PrivateKey),
		"no kid":    encode(func(c *storedKey) { c.ID = "" }),
		"wrong alg": encode(func(c *storedKey) { c.Algorithm = "HS256" }),
		"no pem":    encode(func(c *storedKey) { c.PrivateKey = "" }),
		"bad pem":   encode(func(c *storedKey) { c.PrivateKey = strings.Replace(c.PrivateKey, "M", "!", 3) }),
		"P-384": encode(func(c *storedKey) {
			c.PrivateKey = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der384}))
		}),
		"RSA": encode(func(c *storedKey) {
			c.PrivateKey = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: derRSA}))
		}),
		"SEC1 block": encode(func(c *storedKey) {
			c.PrivateKey = string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: derEC}))
		}),
		"two blocks": encode(func(c *storedKey) { c.PrivateKey += c.PrivateKey }),
	}
	pemBody := strings.Join(strings.Split(s.PrivateKey, "\n")[1:3], "")
	for name, data := range cases {
		_, err := UnmarshalKey(data)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), pemBody[:16]) {
			t.Errorf("%s: error text contains key material", name)
		}
	}
}

func TestMarshalKeyRejectsInvalid(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for name, k := range map[string]*Key{
		"nil":     nil,
		"no priv": {ID: "x"},
		"no kid":  {Private: mustKey(t, t0).Private},
		"P-384":   {ID: "x", Private: p384},
	} {
		if _, err := MarshalKey(k); err == nil {
			t.Errorf("%s: marshalled", name)
		}
	}
}

func TestKeyRingBasics(t *testing.T) {
	r := NewKeyRing()
	if r.Current() != nil {
		t.Fatal("empty ring has a current key")
	}
	if !r.NeedsRotation(t0, time.Hour) {
		t.Fatal("empty ring does not need rotation")
	}

	k1 := mustKey(t, t0)
	k2 := mustKey(t, t0.Add(time.Hour))
	k3 := mustKey(t, t0.Add(2*time.Hour))
	// Added out of order: newest by CreatedAt wins, not last added.
	r = NewKeyRing(k2, k3, k1, nil)
	if r.Current() != k3 {
		t.Fatal("Current is not the newest key")
	}
	keys := r.Keys()
	if len(keys) != 3 || keys[0] != k3 || keys[1] != k2 || keys[2] != k1 {
		t.Fatal("Keys not newest first")
	}
	keys[0] = nil // snapshot must not alias the ring
	if r.Current() != k3 {
		t.Fatal("Keys returned the internal slice")
	}
	for _, k := range []*Key{k1, k2, k3} {
		if got, ok := r.Lookup(k.ID); !ok || got != k {
			t.Fatalf("Lookup(%s) failed", k.ID)
		}
	}
	if _, ok := r.Lookup("nope"); ok {
		t.Fatal("Lookup found unknown kid")
	}
	if _, ok := r.Lookup(""); ok {
		t.Fatal("Lookup found empty kid")
	}

	// Re-adding the same kid replaces, never duplicates.
	r.Add(&Key{ID: k1.ID, Private: k1.Private, CreatedAt: k1.CreatedAt})
	if len(r.Keys()) != 3 {
		t.Fatal("duplicate kid stored twice")
	}
	// Invalid keys are ignored.
	r.Add(&Key{ID: "", Private: k1.Private, CreatedAt: t0.Add(9 * time.Hour)})
	r.Add(&Key{ID: "x", CreatedAt: t0.Add(9 * time.Hour)})
	if len(r.Keys()) != 3 || r.Current() != k3 {
		t.Fatal("invalid key was added")
	}
}

func TestNeedsRotation(t *testing.T) {
	r := NewKeyRing(mustKey(t, t0))
	if r.NeedsRotation(t0.Add(23*time.Hour), 24*time.Hour) {
		t.Fatal("young key needs rotation")
	}
	if !r.NeedsRotation(t0.Add(25*time.Hour), 24*time.Hour) {
		t.Fatal("old key does not need rotation")
	}
}

func TestPrune(t *testing.T) {
	k1 := mustKey(t, t0)
	k2 := mustKey(t, t0.Add(24*time.Hour))
	k3 := mustKey(t, t0.Add(48*time.Hour))
	r := NewKeyRing(k1, k2, k3)

	r.Prune(t0.Add(50*time.Hour), 30*time.Hour)
	if _, ok := r.Lookup(k1.ID); ok {
		t.Fatal("k1 not pruned")
	}
	if _, ok := r.Lookup(k2.ID); !ok {
		t.Fatal("k2 pruned too early")
	}

	// Even when everything is ancient the newest key stays.
	r.Prune(t0.Add(1000*time.Hour), time.Hour)
	keys := r.Keys()
	if len(keys) != 1 || keys[0] != k3 {
		t.Fatalf("prune left %d keys", len(keys))
	}
}

func TestJWKS(t *testing.T) {
	k1 := mustKey(t, t0)
	k2 := mustKey(t, t0.Add(24*time.Hour))
	k3 := mustKey(t, t0.Add(48*time.Hour))
	r := NewKeyRing(k1, k2, k3)
	r.Prune(t0.Add(50*time.Hour), 30*time.Hour) // drops k1

	data, err := r.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		t.Fatalf("JWKS is not JSON: %v", err)
	}
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want 2", len(set.Keys))
	}
	if bytes.Contains(data, []byte(k1.ID)) {
		t.Fatal("pruned key still published")
	}
	for _, want := range []*Key{k2, k3} {
		var got map[string]string
		for _, j := range set.Keys {
			if j["kid"] == want.ID {
				got = j
			}
		}
		if got == nil {
			t.Fatalf("kid %s missing from JWKS", want.ID)
		}
		for field, val := range map[string]string{"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256"} {
			if got[field] != val {
				t.Errorf("%s = %q, want %q", field, got[field], val)
			}
		}
		if _, ok := got["d"]; ok {
			t.Fatal("private key published")
		}
		x, errX := base64.RawURLEncoding.DecodeString(got["x"])
		y, errY := base64.RawURLEncoding.DecodeString(got["y"])
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			t.Fatalf("x/y not 32-byte base64url")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			t.Fatal(err)
		}
		if !pub.Equal(&want.Private.PublicKey) {
			t.Fatal("JWKS coordinates do not match the key")
		}

		// A verifier holding only the JWKS key accepts a token from the ring.
		tok := signRaw(t, jwt.SigningMethodES256, want.Private, map[string]any{"kid": want.ID}, validClaims())
		if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return pub, nil },
			jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(func() time.Time { return t0 })); err != nil {
			t.Fatalf("token does not verify with JWKS key: %v", err)
		}
	}

	empty, err := NewKeyRing().JWKS()
	if err != nil || string(empty) != `{"keys":[]}` {
		t.Fatalf("empty JWKS = %s, %v", empty, err)
	}
}
