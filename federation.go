package wharf

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// DefaultFederatedAudience is the audience CI systems put in the tokens they
// mint for Entra ID's token exchange; Wharf accepts the same so that a
// pipeline's existing configuration works unchanged.
const DefaultFederatedAudience = "api://AzureADTokenExchange"

// MaxFederatedCredentials is how many federated identity credentials one
// service principal may have, Entra ID's limit.
const MaxFederatedCredentials = 20

// FederatedCredential trusts tokens from an external identity provider (a
// CI system's OIDC issuer) as proof of a service principal's identity: a
// token whose iss, sub and aud equal Issuer, Subject and the audience, and
// whose signature the issuer's published keys verify, is exchanged for a
// Wharf access token as if the principal's secret had been presented.
type FederatedCredential struct {
	ID string `json:"id"`
	// PrincipalID is the app id of the service principal it belongs to.
	PrincipalID string `json:"-"`
	// Name is chosen by the caller and cannot change.
	Name string `json:"name"`
	// Issuer must equal the token's iss byte for byte.
	Issuer string `json:"issuer"`
	// Subject must equal the token's sub byte for byte; no wildcards.
	Subject string `json:"subject"`
	// Audiences holds exactly one value, which the token's aud must contain.
	Audiences   []string  `json:"audiences"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"createdDateTime"`
}

// fedNameRE is Entra ID's rule for credential names: URL-safe characters,
// starting with a letter or digit.
var fedNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{2,119}$`)

// Validate checks the credential against Entra ID's rules and fills the
// default audience. Errors name the field at fault.
func (c *FederatedCredential) Validate() error {
	if !fedNameRE.MatchString(c.Name) {
		return Errorf(EINVALID, "name %q is not valid: use 3-120 characters, letters, digits, '-' or '_', starting with a letter or digit", c.Name).WithField("name")
	}
	if err := checkFedText("issuer", c.Issuer, true); err != nil {
		return err
	}
	u, err := url.Parse(c.Issuer)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return Errorf(EINVALID, "issuer %q must be an https:// URL without query or fragment (the iss claim of the tokens to trust, e.g. https://token.actions.githubusercontent.com)", c.Issuer).WithField("issuer")
	}
	if err := checkFedText("subject", c.Subject, true); err != nil {
		return err
	}
	if strings.ContainsAny(c.Subject, "*?") {
		return Errorf(EINVALID, "subject %q contains a wildcard; the subject must equal the token's sub claim exactly", c.Subject).WithField("subject")
	}
	if len(c.Audiences) == 0 {
		c.Audiences = []string{DefaultFederatedAudience}
	}
	if len(c.Audiences) != 1 {
		return Errorf(EINVALID, "audiences must hold exactly one value, e.g. [%q]", DefaultFederatedAudience).WithField("audiences")
	}
	if err := checkFedText("audiences", c.Audiences[0], true); err != nil {
		return err
	}
	return checkFedText("description", c.Description, false)
}

// checkFedText enforces the 600-character limit and refuses the leading or
// trailing blanks that would make a value never match a token's claim.
func checkFedText(field, v string, required bool) error {
	switch {
	case v == "" && required:
		return Errorf(EINVALID, "%s is required", field).WithField(field)
	case len(v) > 600:
		return Errorf(EINVALID, "%s is longer than 600 characters", field).WithField(field)
	case required && strings.TrimSpace(v) != v:
		return Errorf(EINVALID, "%s %q has leading or trailing whitespace; it must equal the token's claim exactly", field, v).WithField(field)
	}
	return nil
}

// FederatedCredentialService stores federated identity credentials.
type FederatedCredentialService interface {
	// CreateFederatedCredential stores c and sets its CreatedAt. ECONFLICT
	// when the principal already has a credential of that name or of that
	// issuer and subject, or already has MaxFederatedCredentials.
	CreateFederatedCredential(ctx context.Context, c *FederatedCredential) error
	// FindFederatedCredential finds one of the principal's credentials by
	// id or name.
	FindFederatedCredential(ctx context.Context, appID, idOrName string) (*FederatedCredential, error)
	// ListFederatedCredentials returns the principal's credentials by name.
	ListFederatedCredentials(ctx context.Context, appID string) ([]*FederatedCredential, error)
	// UpdateFederatedCredential replaces the issuer, subject, audiences and
	// description of the credential with c's ID; the name cannot change.
	UpdateFederatedCredential(ctx context.Context, c *FederatedCredential) error
	DeleteFederatedCredential(ctx context.Context, appID, idOrName string) error
}
