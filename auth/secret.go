package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// SecretPrefix starts every generated client secret so that leaked secrets
// can be found by secret scanners and a plain grep.
const SecretPrefix = "wh~"

// secretRandomChars is how many random base64url characters follow the
// prefix: 38 × 6 = 228 bits, the smallest count reaching 224 bits.
const secretRandomChars = 38

// SecretLength is the length of every generated client secret.
const SecretLength = len(SecretPrefix) + secretRandomChars

const secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// GenerateSecret returns a new client secret: SecretPrefix followed by
// random URL-safe characters carrying 228 bits from crypto/rand. The secret
// is shown to the user once and only its HashSecret form is stored.
func GenerateSecret() (string, error) {
	var buf [secretRandomChars]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", fmt.Errorf("auth: generate secret: %w", err)
	}
	var b strings.Builder
	b.Grow(SecretLength)
	b.WriteString(SecretPrefix)
	for _, c := range buf {
		// 64 divides 256, so masking keeps the choice uniform.
		b.WriteByte(secretAlphabet[c&63])
	}
	clear(buf[:])
	return b.String(), nil
}

// Argon2id parameters used for new hashes: OWASP's minimum recommendation
// (19 MiB, 2 passes, 1 lane). Verification reads the parameters from each
// stored hash, so raising these later does not invalidate existing secrets.
const (
	argonMemoryKiB = 19456
	argonTime      = 2
	argonThreads   = 1
	argonSaltLen   = 16
	argonKeyLen    = 32
)

// Bounds on parameters accepted from a stored hash, so a corrupted or
// planted row cannot make verification allocate gigabytes or spin for
// minutes.
const (
	maxArgonMemoryKiB = 1 << 20 // 1 GiB
	maxArgonTime      = 16
	maxArgonThreads   = 16
	minArgonSaltLen   = 8
	maxArgonSaltLen   = 64
	minArgonKeyLen    = 16
	maxArgonKeyLen    = 64
)

// ErrMalformedHash is returned by VerifySecret for a stored hash it cannot
// parse or refuses to use.
var ErrMalformedHash = errors.New("auth: malformed secret hash")

var phcB64 = base64.RawStdEncoding.Strict()

// HashSecret hashes a client secret with argon2id and a fresh 16-byte salt,
// returning a PHC string such as
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash> for storage.
func HashSecret(secret string) (string, error) {
	if secret == "" {
		return "", errors.New("auth: refusing to hash an empty secret")
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: generate salt: %w", err)
	}
	key := argon2.IDKey([]byte(secret), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemoryKiB, argonTime, argonThreads,
		phcB64.EncodeToString(salt), phcB64.EncodeToString(key)), nil
}

// VerifySecret reports whether secret matches a hash produced by
// HashSecret. A wrong secret gives (false, nil); an unusable hash gives an
// error wrapping ErrMalformedHash. Neither the secret nor the stored hash is
// ever included in the error.
func VerifySecret(encoded, secret string) (bool, error) {
	p, err := parsePHC(encoded)
	if err != nil {
		return false, fmt.Errorf("%w: %s", ErrMalformedHash, err.Error())
	}
	got := argon2.IDKey([]byte(secret), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(got, p.key) == 1, nil
}

type phcParams struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

// parsePHC errors describe the problem only in fixed words; they never
// quote the input, which might be a plaintext secret stored by mistake.
func parsePHC(encoded string) (*phcParams, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return nil, errors.New("not a PHC string")
	}
	if parts[1] != "argon2id" {
		return nil, errors.New("unsupported algorithm")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return nil, errors.New("unsupported argon2 version")
	}

	var p phcParams
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return nil, errors.New("bad parameter list")
	}
	for i, name := range []string{"m", "t", "p"} {
		k, v, ok := strings.Cut(params[i], "=")
		if !ok || k != name {
			return nil, errors.New("bad parameter list")
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("bad value for parameter %s", name)
		}
		switch name {
		case "m":
			p.memory = uint32(n)
		case "t":
			p.time = uint32(n)
		case "p":
			if n > maxArgonThreads {
				return nil, errors.New("parameter p out of range")
			}
			p.threads = uint8(n)
		}
	}
	if p.threads < 1 {
		return nil, errors.New("parameter p out of range")
	}
	if p.time < 1 || p.time > maxArgonTime {
		return nil, errors.New("parameter t out of range")
	}
	if p.memory < 8*uint32(p.threads) || p.memory > maxArgonMemoryKiB {
		return nil, errors.New("parameter m out of range")
	}

	var err error
	if p.salt, err = phcB64.DecodeString(parts[4]); err != nil {
		return nil, errors.New("bad salt encoding")
	}
	if len(p.salt) < minArgonSaltLen || len(p.salt) > maxArgonSaltLen {
		return nil, errors.New("salt length out of range")
	}
	if p.key, err = phcB64.DecodeString(parts[5]); err != nil {
		return nil, errors.New("bad hash encoding")
	}
	if len(p.key) < minArgonKeyLen || len(p.key) > maxArgonKeyLen {
		return nil, errors.New("hash length out of range")
	}
	return &p, nil
}
