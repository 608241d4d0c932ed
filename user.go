package wharf

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"
)

// Principal types, as role assignments report them (Azure's principalType).
const (
	PrincipalTypeServicePrincipal = "ServicePrincipal"
	PrincipalTypeUser             = "User"
)

// User is a person who signs in with a password: to the web studio with a
// session cookie, or to the CLI through the device-code or password grant.
// ObjectID is what role assignments name, as a service principal's AppID is.
type User struct {
	ObjectID          string `json:"id"`
	UserPrincipalName string `json:"userPrincipalName"`
	DisplayName       string `json:"displayName"`
	// PasswordHash is the argon2id PHC string of the password; the
	// password itself is never stored.
	PasswordHash string `json:"-"`
	// ForceChangePassword makes the next sign-in choose a new password
	// before it gets a session or a token.
	ForceChangePassword bool      `json:"forceChangePasswordNextSignIn"`
	PasswordChangedAt   time.Time `json:"lastPasswordChangeDateTime"`
	CreatedAt           time.Time `json:"createdDateTime"`
}

// MinPasswordLength is the shortest password accepted: length is what makes
// a password hard to guess (NIST SP 800-63B asks for at least 8; 12 leaves
// margin for an offline attack on a stolen hash).
const MinPasswordLength = 12

// maxPasswordLength bounds the work one sign-in attempt can ask of the
// hash function.
const maxPasswordLength = 256

// ValidatePassword checks the password policy: MinPasswordLength to 256
// characters, and not the user principal name (nor its name before '@').
// Composition rules are not imposed, as NIST SP 800-63B advises.
func ValidatePassword(password, upn string) error {
	n := utf8.RuneCountInString(password)
	if n < MinPasswordLength {
		return Errorf(EINVALID, "password must be at least %d characters", MinPasswordLength).WithField("password")
	}
	if n > maxPasswordLength {
		return Errorf(EINVALID, "password must be at most %d characters", maxPasswordLength).WithField("password")
	}
	p := strings.ToLower(password)
	name, _, _ := strings.Cut(strings.ToLower(upn), "@")
	if p == strings.ToLower(upn) || p == name {
		return Errorf(EINVALID, "password must not be the user principal name").WithField("password")
	}
	return nil
}

// NormalizeUserPrincipalName validates a user principal name (NAME@DOMAIN,
// as Entra ID's) and returns it lower-cased: sign-in ignores case.
func NormalizeUserPrincipalName(upn string) (string, error) {
	u := strings.ToLower(strings.TrimSpace(upn))
	name, domain, ok := strings.Cut(u, "@")
	if !ok || name == "" || domain == "" || len(u) > 113 || strings.ContainsAny(u, " \t\r\n/\\\"<>") || strings.Contains(domain, "@") {
		return "", Errorf(EINVALID, "userPrincipalName %q is not valid: use NAME@DOMAIN (at most 113 characters), e.g. alice@team", upn).WithField("userPrincipalName")
	}
	return u, nil
}

// Session is a signed-in browser's server-side state. Only a hash of the
// cookie's random id is stored, so a copy of the database signs nobody in.
type Session struct {
	IDHash     string
	UserID     string
	CreatedAt  time.Time
	LastSeenAt time.Time
}

// UserService manages users and their web sessions.
type UserService interface {
	// CreateUser returns ECONFLICT when the object id or user principal
	// name is taken.
	CreateUser(ctx context.Context, u *User) error
	// FindUser looks a user up by object id or user principal name.
	FindUser(ctx context.Context, id string) (*User, error)
	ListUsers(ctx context.Context) ([]*User, error)
	// DeleteUser removes the user, its sessions and its role assignments.
	DeleteUser(ctx context.Context, objectID string) error
	// SetUserPassword replaces the password hash and ends every session of
	// the user in the same transaction.
	SetUserPassword(ctx context.Context, objectID, hash string, force bool) error

	CreateSession(ctx context.Context, s *Session) error
	// FindSession returns ENOTFOUND for an unknown (or ended) session.
	FindSession(ctx context.Context, idHash string) (*Session, error)
	TouchSession(ctx context.Context, idHash string, at time.Time) error
	DeleteSession(ctx context.Context, idHash string) error

	// FindUserGrants returns the user whose object id is objectID with
	// the role assignments that name it, read together in one statement:
	// the request pipeline's lookup of a user token's user. ENOTFOUND
	// when no user has that object id.
	FindUserGrants(ctx context.Context, objectID string) (*UserGrants, error)
	// FindSessionGrants returns the session whose id hashes to idHash,
	// its user and the user's role assignments, read together in one
	// statement: the request pipeline's lookup of a session cookie.
	// ENOTFOUND for an unknown (or ended) session.
	FindSessionGrants(ctx context.Context, idHash string) (*UserGrants, error)
}

// UserGrants is a user with its role assignments as they were when read,
// and the browser session it was found by (nil when found by object id).
type UserGrants struct {
	User        *User
	Session     *Session
	Assignments []*RoleAssignment
}
