package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestGenerateSecretFormat(t *testing.T) {
	seen := make(map[string]bool)
	for i := 0; i < 500; i++ {
		s, err := GenerateSecret()
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != SecretLength {
			t.Fatalf("length %d, want %d", len(s), SecretLength)
		}
		if !strings.HasPrefix(s, SecretPrefix) {
			t.Fatalf("missing prefix %q", SecretPrefix)
		}
		for _, c := range s[len(SecretPrefix):] {
			if !strings.ContainsRune(secretAlphabet, c) {
				t.Fatalf("character %q is not URL-safe base64", c)
			}
		}
		if seen[s] {
			t.Fatal("duplicate secret")
		}
		seen[s] = true
	}
	// 6 bits per random character must reach the 224-bit floor.
	if bits := 6 * (SecretLength - len(SecretPrefix)); bits < 224 {
		t.Fatalf("only %d random bits", bits)
	}
}

func TestGenerateSecretUsesWholeAlphabet(t *testing.T) {
	// A coarse check that every character position draws from all 64
	// symbols, which catches a mask or alphabet mistake.
	counts := make(map[rune]int)
	for i := 0; i < 200; i++ {
		s, err := GenerateSecret()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range s[len(SecretPrefix):] {
			counts[c]++
		}
	}
	if len(counts) != 64 {
		t.Fatalf("saw %d distinct characters in 7600 draws, want 64", len(counts))
	}
}

func TestHashVerifyRoundTrip(t *testing.T) {
	secret, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	h, err := HashSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("unexpected hash format: %s", h)
	}
	if parts := strings.Split(h, "$"); len(parts) != 6 || len(parts[4]) != 22 || len(parts[5]) != 43 {
		t.Fatalf("salt/hash not 16/32 bytes in unpadded base64: %s", h)
	}
	if strings.Contains(h, secret) {
		t.Fatal("hash contains the secret")
	}
	ok, err := VerifySecret(h, secret)
	if err != nil || !ok {
		t.Fatalf("VerifySecret(correct) = %v, %v", ok, err)
	}

	for _, wrong := range []string{secret[:len(secret)-1], secret + "x", strings.ToUpper(secret), "", "wh~"} {
		ok, err := VerifySecret(h, wrong)
		if err != nil || ok {
			t.Fatalf("VerifySecret(wrong) = %v, %v", ok, err)
		}
	}
}

func TestHashIsSalted(t *testing.T) {
	h1, err := HashSecret("same secret")
	if err != nil {
		t.Fatal(err)
	}
	h2, err := HashSecret("same secret")
	if err != nil {
		t.Fatal(err)
	}
	if h1 == h2 {
		t.Fatal("two hashes of the same secret are identical")
	}
	if strings.Split(h1, "$")[4] == strings.Split(h2, "$")[4] {
		t.Fatal("salt reused")
	}
}

func TestVerifyUsesStoredParameters(t *testing.T) {
	// A hash made with different (cheaper) parameters must still verify,
	// so the defaults can change without invalidating stored secrets.
	const encoded = "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$"
	secret := "wh~parameter-test"
	key := argon2Key(secret, "somesaltsomesalt", 1, 64, 1, 32)
	ok, err := VerifySecret(encoded+key, secret)
	if err != nil || !ok {
		t.Fatalf("VerifySecret = %v, %v", ok, err)
	}
	ok, err = VerifySecret(encoded+key, secret+"!")
	if err != nil || ok {
		t.Fatalf("VerifySecret(wrong) = %v, %v", ok, err)
	}
}

func TestVerifyMalformedHash(t *testing.T) {
	secret := "wh~Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5"
	good, err := HashSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	p := strings.Split(good, "$")
	salt, hash := p[4], p[5]
	cases := map[string]string{
		"empty":             "",
		"plaintext stored":  secret,
		"secret in salt":    "$argon2id$v=19$m=19456,t=2,p=1$" + secret + "$" + hash,
		"secret in hash":    "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + secret,
		"secret in params":  "$argon2id$v=19$" + secret + "$" + salt + "$" + hash,
		"argon2i":           "$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + hash,
		"bcrypt":            "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"old version":       "$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + hash,
		"params reordered":  "$argon2id$v=19$t=2,m=19456,p=1$" + salt + "$" + hash,
		"missing param":     "$argon2id$v=19$m=19456,t=2$" + salt + "$" + hash,
		"huge memory":       "$argon2id$v=19$m=4294967295,t=2,p=1$" + salt + "$" + hash,
		"huge time":         "$argon2id$v=19$m=19456,t=100000,p=1$" + salt + "$" + hash,
		"zero threads":      "$argon2id$v=19$m=19456,t=2,p=0$" + salt + "$" + hash,
		"too many threads":  "$argon2id$v=19$m=19456,t=2,p=300$" + salt + "$" + hash,
		"negative":          "$argon2id$v=19$m=-1,t=2,p=1$" + salt + "$" + hash,
		"padded salt":       "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "==$" + hash,
		"short salt":        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$" + hash,
		"short hash":        "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$aGFzaA",
		"empty hash":        "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$",
		"extra field":       good + "$x",
		"leading garbage":   "x" + good,
		"url-safe alphabet": "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$-_" + hash[2:],
	}
	for name, encoded := range cases {
		ok, err := VerifySecret(encoded, secret)
		if err == nil {
			t.Errorf("%s: no error (ok=%v)", name, ok)
			continue
		}
		if ok {
			t.Errorf("%s: ok=true with error", name)
		}
		if !errors.Is(err, ErrMalformedHash) {
			t.Errorf("%s: error %v does not wrap ErrMalformedHash", name, err)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), secret[3:20]) {
			t.Errorf("%s: error text contains the secret", name)
		}
	}
}

func TestHashSecretRejectsEmpty(t *testing.T) {
	if _, err := HashSecret(""); err == nil {
		t.Fatal("hashed an empty secret")
	}
}
