package auth

import (
	"encoding/base64"

	"golang.org/x/crypto/argon2"
)

// argon2Key computes a raw PHC hash field independently of HashSecret.
func argon2Key(secret, salt string, time, memory uint32, threads uint8, keyLen uint32) string {
	return base64.RawStdEncoding.EncodeToString(argon2.IDKey([]byte(secret), []byte(salt), time, memory, threads, keyLen))
}
