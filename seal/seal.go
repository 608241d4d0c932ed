// Package seal encrypts values at rest for the secret store.
//
// Every sealed value is self-describing (a version byte and its own nonce),
// so the format can evolve without a flag day and a value can never be
// decrypted under the wrong context: callers bind each value to where it
// lives via the additional data.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// KeySize is the master key length in bytes; 32 selects AES-256.
const KeySize = 32

const (
	formatV1  = 0x01
	nonceSize = 12
	tagSize   = 16
	// headerSize is the version byte plus the nonce.
	headerSize = 1 + nonceSize
)

// ErrOpen is returned for any value that cannot be decrypted. It is
// deliberately uninformative: telling an attacker whether the version,
// length, tag or additional data was wrong only helps them.
var ErrOpen = errors.New("seal: cannot open sealed value")

// Sealer encrypts and authenticates values with a single master key. It is
// safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer builds a Sealer from a raw key. The key is copied by the cipher
// setup, so the caller may wipe its slice afterwards.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal: key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: init cipher: %w", err)
	}
	aead, err := cipher.NewGCMWithNonceSize(block, nonceSize)
	if err != nil {
		return nil, fmt.Errorf("seal: init GCM: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext and binds it to additionalData, which must be
// supplied again, unchanged, to Open. The output layout is
// version(1) || nonce(12) || ciphertext || tag(16).
//
// Nonces are random; with 96-bit nonces that stays safe far beyond the
// number of values a secret store holds under one key.
func (s *Sealer) Seal(plaintext, additionalData []byte) ([]byte, error) {
	out := make([]byte, headerSize, headerSize+len(plaintext)+tagSize)
	out[0] = formatV1
	if _, err := rand.Read(out[1:headerSize]); err != nil {
		return nil, fmt.Errorf("seal: read nonce: %w", err)
	}
	return s.aead.Seal(out, out[1:headerSize], plaintext, s.ad(out[0], additionalData)), nil
}

// Open authenticates and decrypts a value produced by Seal. Any truncation,
// modification or mismatch of additionalData yields ErrOpen.
func (s *Sealer) Open(ciphertext, additionalData []byte) ([]byte, error) {
	if len(ciphertext) < headerSize+tagSize || ciphertext[0] != formatV1 {
		return nil, ErrOpen
	}
	nonce := ciphertext[1:headerSize]
	plaintext, err := s.aead.Open(nil, nonce, ciphertext[headerSize:], s.ad(ciphertext[0], additionalData))
	if err != nil {
		return nil, ErrOpen
	}
	return plaintext, nil
}

// ad prefixes the caller's additional data with the version byte so the
// header is authenticated too, not merely checked.
func (s *Sealer) ad(version byte, additionalData []byte) []byte {
	ad := make([]byte, 0, 1+len(additionalData))
	ad = append(ad, version)
	return append(ad, additionalData...)
}
