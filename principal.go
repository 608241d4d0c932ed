package wharf

import (
	"context"
	"time"
)

// ServicePrincipal is a non-human identity, the kind CI pipelines log in as.
// Its AppID is the OAuth2 client id.
type ServicePrincipal struct {
	AppID       string    `json:"appId"`
	ObjectID    string    `json:"id"`
	DisplayName string    `json:"displayName"`
	CreatedAt   time.Time `json:"createdDateTime"`
}

// PasswordCredential is one client secret of a service principal. Only a slow
// hash of the secret is kept; the secret itself is shown once, at creation.
type PasswordCredential struct {
	KeyID       string `json:"keyId"`
	PrincipalID string `json:"-"`
	// Hint holds the first characters of the secret, so an operator can
	// tell credentials apart without the secret being stored.
	Hint       string    `json:"hint"`
	SecretHash string    `json:"-"`
	StartDate  time.Time `json:"startDateTime"`
	EndDate    time.Time `json:"endDateTime"`
}

// PrincipalService manages service principals and their credentials.
type PrincipalService interface {
	CreateServicePrincipal(ctx context.Context, sp *ServicePrincipal) error
	// FindServicePrincipal looks a principal up by app id, object id or
	// display name, as `az ad sp show --id` does.
	FindServicePrincipal(ctx context.Context, id string) (*ServicePrincipal, error)
	ListServicePrincipals(ctx context.Context) ([]*ServicePrincipal, error)
	// DeleteServicePrincipal removes the principal, its credentials and its
	// role assignments.
	DeleteServicePrincipal(ctx context.Context, appID string) error
	// AddCredential stores a credential. With replace, every other
	// credential of the principal is removed in the same transaction, the
	// semantics of `az ad sp credential reset` without --append.
	AddCredential(ctx context.Context, c *PasswordCredential, replace bool) error
	ListCredentials(ctx context.Context, appID string) ([]*PasswordCredential, error)
	DeleteCredential(ctx context.Context, appID, keyID string) error
	// CreateFirstOwner stores sp, Owner at ServerScope for it, and its
	// credential c, all in one transaction, when no service principal
	// exists yet. It reports false and stores nothing when one does,
	// also when another server starting on the same database created
	// the first Owner a moment before: there is only ever one.
	CreateFirstOwner(ctx context.Context, sp *ServicePrincipal, c *PasswordCredential) (bool, error)
}
