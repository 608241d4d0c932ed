package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Errors returned by Verify, always wrapped so errors.Is works. Only
// expiry is singled out, because it is the one failure a well-behaved
// client fixes by fetching a new token; everything else is ErrTokenInvalid.
var (
	ErrTokenExpired = errors.New("auth: token expired")
	ErrTokenInvalid = errors.New("auth: invalid token")
)

// DefaultLeeway is the clock skew tolerated by Verify when Issuer.Leeway
// is zero.
const DefaultLeeway = 60 * time.Second

// IdentityTypeApp is the idtyp claim value for service principals, as in
// Entra ID app-only tokens.
const IdentityTypeApp = "app"

// IdentityTypeUser is the idtyp claim value for users' tokens, whose
// subject is the user's object id.
const IdentityTypeUser = "user"

// CLIClientID is the client id of Wharf's own CLI, the app a user's token
// is issued to (Azure CLI has its own well-known id for the same part).
const CLIClientID = "wharf-cli"

// maxTokenLen bounds the work done on attacker-supplied input; real tokens
// are well under 1 KiB.
const maxTokenLen = 8 << 10

// Claims is the payload of a Wharf access token. Field names follow Entra
// ID so existing tooling reads them. The audience is a single string
// rather than an array because every token has exactly one resource.
type Claims struct {
	// Issuer is the token service URL; verifiers compare it exactly.
	Issuer string `json:"iss,omitempty"`
	// Subject is the service principal's object id.
	Subject string `json:"sub,omitempty"`
	// Audience is the resource the token is for.
	Audience string `json:"aud,omitempty"`
	// ExpiresAt is when the token stops being accepted (plus leeway).
	ExpiresAt *jwt.NumericDate `json:"exp,omitempty"`
	// NotBefore is when the token starts being accepted (minus leeway).
	NotBefore *jwt.NumericDate `json:"nbf,omitempty"`
	// IssuedAt is when the token was minted.
	IssuedAt *jwt.NumericDate `json:"iat,omitempty"`
	// ID is a unique token id, so individual tokens can be traced or
	// denylisted.
	ID string `json:"jti,omitempty"`

	// TenantID is the tenant the principal belongs to.
	TenantID string `json:"tid,omitempty"`
	// ObjectID is the service principal's object id (same as Subject for
	// app tokens).
	ObjectID string `json:"oid,omitempty"`
	// AppID is the OAuth2 client id the token was issued to.
	AppID string `json:"appid,omitempty"`
	// AuthorizedParty is the client id again, under its OIDC name.
	AuthorizedParty string `json:"azp,omitempty"`
	// IdentityType is IdentityTypeApp for client-credentials tokens and
	// IdentityTypeUser for a user's.
	IdentityType string `json:"idtyp,omitempty"`
	// PreferredUsername is a user's user principal name, as Entra ID puts
	// it in user tokens; empty in app tokens.
	PreferredUsername string `json:"preferred_username,omitempty"`

	// Job is set only in a job token: the job (pipeline step) whose
	// processes hold it. Such a token acts for Subject but only inside
	// Workspace, only with a job's actions, and only while the job runs.
	Job string `json:"wharf_job,omitempty"`
	// Workspace is the job's workspace, set with Job.
	Workspace string `json:"wharf_ws,omitempty"`
	// Compute is set only in a compute token: the Ray-backed cluster in
	// Workspace whose driver holds it, which may do nothing but fetch
	// that cluster's work and report on it.
	Compute string `json:"wharf_compute,omitempty"`
}

// GetExpirationTime implements jwt.Claims.
func (c Claims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt, nil }

// GetIssuedAt implements jwt.Claims.
func (c Claims) GetIssuedAt() (*jwt.NumericDate, error) { return c.IssuedAt, nil }

// GetNotBefore implements jwt.Claims.
func (c Claims) GetNotBefore() (*jwt.NumericDate, error) { return c.NotBefore, nil }

// GetIssuer implements jwt.Claims.
func (c Claims) GetIssuer() (string, error) { return c.Issuer, nil }

// GetSubject implements jwt.Claims.
func (c Claims) GetSubject() (string, error) { return c.Subject, nil }

// GetAudience implements jwt.Claims.
func (c Claims) GetAudience() (jwt.ClaimStrings, error) {
	if c.Audience == "" {
		return nil, nil
	}
	return jwt.ClaimStrings{c.Audience}, nil
}

// Issuer mints and verifies access tokens for one issuer URL.
type Issuer struct {
	// Issuer is the exact iss value; Verify compares it byte for byte.
	Issuer string
	// Audience is used when Issue or Verify is given an empty audience.
	Audience string
	// TTL is the lifetime of issued tokens.
	TTL time.Duration
	// Keys signs (current key) and verifies (any key still in the ring).
	Keys *KeyRing
	// Leeway is the tolerated clock skew for exp, nbf and iat; zero means
	// DefaultLeeway and a negative value means none.
	Leeway time.Duration
	// Now replaces time.Now, so tests and callers can control the clock.
	Now func() time.Time
}

func (i *Issuer) now() time.Time {
	if i.Now != nil {
		return i.Now()
	}
	return time.Now()
}

func (i *Issuer) leeway() time.Duration {
	switch {
	case i.Leeway == 0:
		return DefaultLeeway
	case i.Leeway < 0:
		return 0
	default:
		return i.Leeway
	}
}

// Issue signs an app-only access token for subject (the service
// principal's object id) in tenantID, issued to client appID. An empty
// audience means i.Audience. It returns the compact JWT and its expiry,
// which the token endpoint reports as expires_in.
func (i *Issuer) Issue(subject, tenantID, appID string, audience string) (token string, expiresAt time.Time, err error) {
	return i.issue(Claims{Subject: subject, TenantID: tenantID, AppID: appID, Audience: audience}, i.TTL)
}

// IssueJob signs a job token: one for appID's job in workspace, valid for
// ttl, with the given audience. Verifiers tell it from an ordinary token
// by its audience and its Job claim.
func (i *Issuer) IssueJob(tenantID, appID, audience, workspace, job string, ttl time.Duration) (string, time.Time, error) {
	if workspace == "" || job == "" {
		return "", time.Time{}, errors.New("auth: a job token needs its workspace and job")
	}
	return i.issue(Claims{Subject: appID, TenantID: tenantID, AppID: appID, Audience: audience, Job: job, Workspace: workspace}, ttl)
}

// ComputeAppID is the app id of compute tokens: a cluster's driver acts
// for no principal.
const ComputeAppID = "wharf-compute"

// IssueCompute signs a compute token: the credential of the driver of
// compute in workspace, valid for ttl, with the given audience.
func (i *Issuer) IssueCompute(tenantID, audience, workspace, compute string, ttl time.Duration) (string, time.Time, error) {
	if workspace == "" || compute == "" {
		return "", time.Time{}, errors.New("auth: a compute token needs its workspace and compute")
	}
	return i.issue(Claims{Subject: "compute:" + workspace + "/" + compute, TenantID: tenantID, AppID: ComputeAppID,
		Audience: audience, Workspace: workspace, Compute: compute}, ttl)
}

// IssueUser signs a token for a user (subject: the user's object id) with
// the given audience, issued to the Wharf CLI; a zero ttl means i.TTL.
// Refresh tokens are user tokens for a refresh audience.
func (i *Issuer) IssueUser(tenantID, objectID, upn, audience string, ttl time.Duration) (string, time.Time, error) {
	if ttl == 0 {
		ttl = i.TTL
	}
	return i.issue(Claims{Subject: objectID, TenantID: tenantID, AppID: CLIClientID, Audience: audience,
		IdentityType: IdentityTypeUser, PreferredUsername: upn}, ttl)
}

func (i *Issuer) issue(c Claims, ttl time.Duration) (token string, expiresAt time.Time, err error) {
	subject, tenantID, appID, audience := c.Subject, c.TenantID, c.AppID, c.Audience
	if audience == "" {
		audience = i.Audience
	}
	switch {
	case i.Issuer == "":
		return "", time.Time{}, errors.New("auth: issuer is not configured")
	case audience == "":
		return "", time.Time{}, errors.New("auth: no audience for token")
	case ttl <= 0:
		return "", time.Time{}, errors.New("auth: token TTL must be positive")
	case subject == "":
		return "", time.Time{}, errors.New("auth: token subject is empty")
	case appID == "":
		return "", time.Time{}, errors.New("auth: token app id is empty")
	}
	if i.Keys == nil {
		return "", time.Time{}, errors.New("auth: no signing key available")
	}
	key := i.Keys.Current()
	if key == nil {
		return "", time.Time{}, errors.New("auth: no signing key available")
	}

	identityType := c.IdentityType
	if identityType == "" {
		identityType = IdentityTypeApp
	}
	// JWT times have one-second resolution; truncate first so the expiry
	// returned matches the exp claim exactly.
	now := i.now().Truncate(time.Second)
	exp := now.Add(ttl)
	claims := Claims{
		Issuer:            i.Issuer,
		Subject:           subject,
		Audience:          audience,
		ExpiresAt:         jwt.NewNumericDate(exp),
		NotBefore:         jwt.NewNumericDate(now),
		IssuedAt:          jwt.NewNumericDate(now),
		ID:                uuid.NewString(),
		TenantID:          tenantID,
		ObjectID:          subject,
		AppID:             appID,
		AuthorizedParty:   appID,
		IdentityType:      identityType,
		PreferredUsername: c.PreferredUsername,
		Job:               c.Job,
		Workspace:         c.Workspace,
		Compute:           c.Compute,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	t.Header["kid"] = key.ID
	t.Header["typ"] = "JWT"
	signed, err := t.SignedString(key.Private)
	if err != nil {
		return "", time.Time{}, errors.New("auth: sign token failed")
	}
	return signed, exp, nil
}

var errUnknownKey = errors.New("unknown signing key")

// Verify checks a token's signature and claims and returns its claims.
// Only ES256 is accepted, whatever the header says; the kid must name a key
// still in the ring; iss must equal i.Issuer exactly; aud must equal
// audience (or i.Audience when empty); exp is required; exp, nbf and iat are
// checked against Now with the configured leeway.
//
// Errors wrap ErrTokenExpired or ErrTokenInvalid and never contain the
// token or any part of it.
func (i *Issuer) Verify(token string, audience string) (*Claims, error) {
	if audience == "" {
		audience = i.Audience
	}
	return i.VerifyAny(token, audience)
}

// VerifyAny is Verify for a token that may be for any of the audiences; the
// returned claims say which.
func (i *Issuer) VerifyAny(token string, audiences ...string) (*Claims, error) {
	if i.Issuer == "" || len(audiences) == 0 || i.Keys == nil {
		return nil, fmt.Errorf("%w: verifier is not configured", ErrTokenInvalid)
	}
	if len(token) == 0 || len(token) > maxTokenLen {
		return nil, fmt.Errorf("%w: malformed", ErrTokenInvalid)
	}

	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
		jwt.WithIssuer(i.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(i.leeway()),
		jwt.WithTimeFunc(i.now),
		jwt.WithStrictDecoding(),
	)
	var claims Claims
	_, err := parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		// WithValidMethods already enforces this; checking the concrete
		// method again keeps the key type and algorithm tied together here.
		if t.Method != jwt.SigningMethodES256 {
			return nil, errUnknownKey
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errUnknownKey
		}
		key, ok := i.Keys.Lookup(kid)
		if !ok {
			return nil, errUnknownKey
		}
		return &key.Private.PublicKey, nil
	})
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) && !oneOf(claims.Audience, audiences) {
			// Expired and for another resource: a fresh token of the
			// same kind would not help, so it is invalid, not expired.
			return nil, fmt.Errorf("%w: wrong audience", ErrTokenInvalid)
		}
		return nil, classify(err)
	}

	// Defence in depth: the parser has checked these, but the rest of the
	// server trusts them, so make the contract explicit.
	if claims.Issuer != i.Issuer || claims.ExpiresAt == nil {
		return nil, fmt.Errorf("%w: claims", ErrTokenInvalid)
	}
	if !oneOf(claims.Audience, audiences) {
		return nil, fmt.Errorf("%w: wrong audience", ErrTokenInvalid)
	}
	return &claims, nil
}

func oneOf(aud string, audiences []string) bool {
	for _, a := range audiences {
		if a != "" && aud == a {
			return true
		}
	}
	return false
}

// classify maps a jwt error onto this package's errors. The library's own
// messages are dropped on purpose: some of them quote decoded input, which
// would put token contents into logs.
func classify(err error) error {
	var reason string
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		reason = "malformed"
	case errors.Is(err, errUnknownKey):
		reason = "unknown signing key"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		reason = "bad signature or algorithm"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		reason = "wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		reason = "wrong audience"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		reason = "required claim missing"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		reason = "not valid yet"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		reason = "issued in the future"
	case errors.Is(err, jwt.ErrTokenExpired):
		// Checked last: an expired token that is also wrong in another way
		// is invalid, since fetching a fresh one would not help.
		return ErrTokenExpired
	default:
		reason = "rejected"
	}
	return fmt.Errorf("%w: %s", ErrTokenInvalid, reason)
}
