package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// Key is one ES256 (ECDSA P-256) signing key. ID is published as the JWT
// "kid" header so verifiers can pick the right public key after rotation.
type Key struct {
	ID        string
	Private   *ecdsa.PrivateKey
	CreatedAt time.Time
}

// NewKey generates a fresh P-256 key with a random 128-bit key ID.
// CreatedAt is taken from now so rotation logic can be driven by a clock
// other than the wall clock.
func NewKey(now time.Time) (*Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("auth: generate signing key: %w", err)
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("auth: generate key id: %w", err)
	}
	return &Key{
		ID:        base64.RawURLEncoding.EncodeToString(id[:]),
		Private:   priv,
		CreatedAt: now.UTC(),
	}, nil
}

// storedKey is the serialised form of a Key. The private key is PKCS#8 PEM
// so it can also be inspected or imported with standard tooling.
type storedKey struct {
	ID         string    `json:"kid"`
	Algorithm  string    `json:"alg"`
	CreatedAt  time.Time `json:"created_at"`
	PrivateKey string    `json:"private_key"`
}

// MarshalKey serialises a key, private half included, for the server's
// secret store. The result is as sensitive as the key itself and must only
// be stored encrypted.
func MarshalKey(k *Key) ([]byte, error) {
	if err := validateKey(k); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, errors.New("auth: encode signing key: PKCS#8 marshal failed")
	}
	defer clear(der)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	defer clear(pemBytes)
	return json.Marshal(storedKey{
		ID:         k.ID,
		Algorithm:  "ES256",
		CreatedAt:  k.CreatedAt.UTC(),
		PrivateKey: string(pemBytes),
	})
}

// UnmarshalKey is the inverse of MarshalKey. It refuses anything other than
// a P-256 key so a tampered store cannot downgrade the signing algorithm.
func UnmarshalKey(data []byte) (*Key, error) {
	var s storedKey
	if err := json.Unmarshal(data, &s); err != nil {
		// json errors can quote input bytes; report only the kind.
		return nil, errors.New("auth: decode signing key: invalid JSON")
	}
	if s.ID == "" {
		return nil, errors.New("auth: decode signing key: missing kid")
	}
	if s.Algorithm != "ES256" {
		return nil, errors.New("auth: decode signing key: unsupported alg")
	}
	block, rest := pem.Decode([]byte(s.PrivateKey))
	if block == nil || block.Type != "PRIVATE KEY" || len(rest) != 0 {
		return nil, errors.New("auth: decode signing key: expected one PKCS#8 PEM block")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	clear(block.Bytes)
	if err != nil {
		return nil, errors.New("auth: decode signing key: invalid PKCS#8 data")
	}
	priv, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, errors.New("auth: decode signing key: not an ECDSA P-256 key")
	}
	k := &Key{ID: s.ID, Private: priv, CreatedAt: s.CreatedAt.UTC()}
	return k, nil
}

func validateKey(k *Key) error {
	if k == nil || k.Private == nil {
		return errors.New("auth: signing key is missing")
	}
	if k.ID == "" {
		return errors.New("auth: signing key has no kid")
	}
	if k.Private.Curve != elliptic.P256() {
		return errors.New("auth: signing key is not ECDSA P-256")
	}
	return nil
}
