package auth

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"
)

// KeyRing holds the signing keys that are currently trusted. The newest key
// signs; older keys stay only so tokens they signed keep verifying until
// they expire. It is safe for concurrent use.
type KeyRing struct {
	mu   sync.RWMutex
	keys []*Key // sorted oldest first; the last one is current
}

// NewKeyRing returns a ring holding keys. Invalid or nil keys are skipped,
// as Add does.
func NewKeyRing(keys ...*Key) *KeyRing {
	r := &KeyRing{}
	for _, k := range keys {
		r.Add(k)
	}
	return r
}

// Add puts k in the ring, replacing any key with the same ID. A key that is
// nil, has no ID or is not P-256 is ignored, because signing or publishing
// it could only fail later at a worse moment.
func (r *KeyRing) Add(k *Key) {
	if validateKey(k) != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = slices.DeleteFunc(r.keys, func(e *Key) bool { return e.ID == k.ID })
	r.keys = append(r.keys, k)
	// Stable, so keys created in the same instant keep insertion order and
	// the one added last becomes current.
	slices.SortStableFunc(r.keys, func(a, b *Key) int { return a.CreatedAt.Compare(b.CreatedAt) })
}

// Current returns the newest key, which is the one new tokens are signed
// with, or nil when the ring is empty.
func (r *KeyRing) Current() *Key {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.keys) == 0 {
		return nil
	}
	return r.keys[len(r.keys)-1]
}

// Lookup finds a key by its ID (the JWT "kid").
func (r *KeyRing) Lookup(kid string) (*Key, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, k := range r.keys {
		if k.ID == kid {
			return k, true
		}
	}
	return nil, false
}

// Keys returns a snapshot of the ring, newest first.
func (r *KeyRing) Keys() []*Key {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := slices.Clone(r.keys)
	slices.Reverse(out)
	return out
}

// NeedsRotation reports whether a new key should be generated: the ring is
// empty or its newest key is older than maxAge.
func (r *KeyRing) NeedsRotation(now time.Time, maxAge time.Duration) bool {
	cur := r.Current()
	return cur == nil || now.Sub(cur.CreatedAt) > maxAge
}

// Prune drops keys older than keep, except the newest, which is never
// removed so the issuer can always sign. keep should be at least the
// rotation interval plus the token TTL, or tokens signed just before a
// rotation stop verifying early.
func (r *KeyRing) Prune(now time.Time, keep time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.keys) <= 1 {
		return
	}
	newest := r.keys[len(r.keys)-1]
	r.keys = slices.DeleteFunc(r.keys, func(k *Key) bool {
		return k != newest && now.Sub(k.CreatedAt) > keep
	})
}

type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

type jwks struct {
	Keys []jwk `json:"keys"`
}

// JWKS renders the public halves of all keys in the ring as an RFC 7517
// JSON Web Key Set, newest first, for resource servers to verify tokens.
func (r *KeyRing) JWKS() ([]byte, error) {
	set := jwks{Keys: []jwk{}}
	for _, k := range r.Keys() {
		// Uncompressed SEC 1 point: 0x04 || X (32 bytes) || Y (32 bytes),
		// which gives the fixed-width coordinates RFC 7518 requires.
		pt, err := k.Private.PublicKey.Bytes()
		if err != nil || len(pt) != 65 || pt[0] != 4 {
			return nil, fmt.Errorf("auth: encode public key %s", k.ID)
		}
		set.Keys = append(set.Keys, jwk{
			Kty: "EC",
			Crv: "P-256",
			X:   base64.RawURLEncoding.EncodeToString(pt[1:33]),
			Y:   base64.RawURLEncoding.EncodeToString(pt[33:65]),
			Kid: k.ID,
			Use: "sig",
			Alg: "ES256",
		})
	}
	return json.Marshal(set)
}
