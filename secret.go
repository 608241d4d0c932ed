package wharf

import (
	"context"
	"time"
)

// Secret is one version of a named secret in a scope's secret store. Each
// write creates a new version, so a rotated value never overwrites the one
// that running consumers still hold.
type Secret struct {
	Scope       string    `json:"scope"`
	Name        string    `json:"name"`
	Version     string    `json:"version"`
	Value       []byte    `json:"-"`
	ContentType string    `json:"contentType"`
	Enabled     bool      `json:"enabled"`
	CreatedAt   time.Time `json:"created"`
}

// Sealer encrypts secret values at rest. additionalData binds a ciphertext to
// its scope, name and version, so a value copied to another row fails to open.
type Sealer interface {
	Seal(plaintext, additionalData []byte) ([]byte, error)
	Open(ciphertext, additionalData []byte) ([]byte, error)
}

// SecretService is the secret store.
type SecretService interface {
	// SetSecret writes a new version and returns it (without value).
	SetSecret(ctx context.Context, scope, name string, value []byte, contentType string) (*Secret, error)
	// GetSecret returns a version with its value; an empty version means
	// the newest enabled one.
	GetSecret(ctx context.Context, scope, name, version string) (*Secret, error)
	// ListSecretVersions lists every version of a secret, newest first,
	// without values.
	ListSecretVersions(ctx context.Context, scope, name string) ([]*Secret, error)
	// ListSecrets lists the newest version of each secret in scope,
	// without values.
	ListSecrets(ctx context.Context, scope string) ([]*Secret, error)
	DeleteSecret(ctx context.Context, scope, name string) error
}
