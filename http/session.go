package http

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/auth"
)

// SessionCookieName is the cookie that carries a browser's session id.
const SessionCookieName = "wharf_session"

// CSRFHeader carries the session's CSRF token on requests a page's script
// makes; forms carry it in the field csrfField.
const CSRFHeader = "X-CSRF-Token"

const csrfField = "csrf_token"

// Session lifetimes: a session ends after DefaultSessionIdle without a
// request, and DefaultSessionMaxAge after sign-in whatever its activity.
const (
	DefaultSessionIdle   = 30 * time.Minute
	DefaultSessionMaxAge = 12 * time.Hour
)

// sessionTouchEvery is how stale a session's last-seen time may get before
// a request rewrites it: a page's burst of API calls costs one write.
const sessionTouchEvery = time.Minute

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// secureCookies reports whether cookies must be Secure: the request came
// over TLS, or the server's public URL is https (TLS ends at a proxy).
func (s *Server) secureCookies(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(strings.ToLower(s.URL), "https://")
}

func hashSessionID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// csrfToken is the session's synchronizer token: an HMAC of a fixed label
// keyed with the session id, so it is bound to the session, needs no
// storage, and cannot be computed from what the database holds.
func csrfToken(sessionID string) string {
	m := hmac.New(sha256.New, []byte(sessionID))
	m.Write([]byte("wharf csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// startSession creates a session for u and sets its cookie; it returns the
// session id.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, u *wharf.User) (string, error) {
	id, err := randomToken() // 256 bits from crypto/rand
	if err != nil {
		return "", err
	}
	now := s.now()
	if err := s.Store.CreateSession(r.Context(), &wharf.Session{IDHash: hashSessionID(id), UserID: u.ObjectID, CreatedAt: now, LastSeenAt: now}); err != nil {
		return "", err
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookieName, Value: id, Path: "/", HttpOnly: true,
		Secure: s.secureCookies(r), SameSite: http.SameSiteLaxMode,
		MaxAge: int(s.sessionMaxAge().Seconds()),
	})
	return id, nil
}

func (s *Server) clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookieName, Value: "", Path: "/", HttpOnly: true,
		Secure: s.secureCookies(r), SameSite: http.SameSiteLaxMode, MaxAge: -1,
	})
}

func (s *Server) sessionIdle() time.Duration {
	if s.SessionIdle > 0 {
		return s.SessionIdle
	}
	return DefaultSessionIdle
}

func (s *Server) sessionMaxAge() time.Duration {
	if s.SessionMaxAge > 0 {
		return s.SessionMaxAge
	}
	return DefaultSessionMaxAge
}

// browserSession is a live session found from a request's cookie, with
// its user's role assignments as read with it.
type browserSession struct {
	id     string
	user   *wharf.User
	grants []*wharf.RoleAssignment
}

// session returns the request's live session, or nil when the request has
// no cookie or its session has ended (expired sessions are deleted). The
// session, its user and the user's role assignments are one statement's
// read (FindSessionGrants). A live session's idle clock restarts.
func (s *Server) session(r *http.Request) (*browserSession, error) {
	ck, err := r.Cookie(SessionCookieName)
	if err != nil || ck.Value == "" || len(ck.Value) > 128 {
		return nil, nil
	}
	ctx := r.Context()
	hash := hashSessionID(ck.Value)
	g, err := s.Store.FindSessionGrants(ctx, hash)
	if wharf.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	sess, now := g.Session, s.now()
	if now.Sub(sess.CreatedAt) >= s.sessionMaxAge() || now.Sub(sess.LastSeenAt) >= s.sessionIdle() {
		return nil, s.Store.DeleteSession(context.WithoutCancel(ctx), hash)
	}
	if now.Sub(sess.LastSeenAt) >= sessionTouchEvery {
		if err := s.Store.TouchSession(ctx, hash, now); err != nil && !wharf.IsNotFound(err) {
			return nil, err
		}
	}
	return &browserSession{id: ck.Value, user: g.User, grants: g.Assignments}, nil
}

// checkCSRF requires the session's token in the X-CSRF-Token header or the
// form field csrf_token of a state-changing request. Safe methods need
// none; they change nothing.
func checkCSRF(r *http.Request, sessionID string) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		got = r.PostFormValue(csrfField)
	}
	want := csrfToken(sessionID)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return wharf.Errorf(wharf.EFORBIDDEN, "the request was made with a session cookie but without its CSRF token: send it in the %s header", CSRFHeader)
	}
	return nil
}

// sessionCaller authenticates a request by its session cookie, CSRF token
// included, and returns the user's role assignments read with the
// session; nil without a live session.
func (s *Server) sessionCaller(r *http.Request) (*wharf.Caller, []*wharf.RoleAssignment, error) {
	bs, err := s.session(r)
	if err != nil || bs == nil {
		return nil, nil, err
	}
	if err := checkCSRF(r, bs.id); err != nil {
		return nil, nil, err
	}
	return userCaller(bs.user), bs.grants, nil
}

func userCaller(u *wharf.User) *wharf.Caller {
	return &wharf.Caller{PrincipalID: u.ObjectID, DisplayName: u.UserPrincipalName, User: true}
}

// userFromToken finds the user of a user token with its role assignments,
// in one statement (FindUserGrants). A token minted before the user's last
// password change is refused: a reset revokes what the old password
// obtained.
func (s *Server) userFromToken(ctx context.Context, claims *auth.Claims) (*wharf.UserGrants, error) {
	g, err := s.Store.FindUserGrants(ctx, claims.Subject)
	if wharf.IsNotFound(err) {
		return nil, wharf.Errorf(wharf.EUNAUTHENTICATED, "the user of this token no longer exists")
	} else if err != nil {
		return nil, err
	}
	if claims.IssuedAt == nil || claims.IssuedAt.Time.Before(g.User.PasswordChangedAt.Truncate(time.Second)) {
		return nil, wharf.Errorf(wharf.EUNAUTHENTICATED, "the token was issued before the user's password was last changed; sign in again")
	}
	return g, nil
}

// failureLimiter counts failed sign-in attempts per key (an account, a
// client address) over a sliding window: once limit failures lie within
// Window, further attempts are refused until the oldest leaves it.
type failureLimiter struct {
	Window time.Duration
	Now    func() time.Time

	mu       sync.Mutex
	failures map[string][]time.Time
}

// maxLimiterKeys bounds the limiter's memory against a flood of names.
const maxLimiterKeys = 100000

// retryAfter returns how long key must wait, or zero when it may try.
func (l *failureLimiter) retryAfter(key string, limit int) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Now()
	fs := l.prune(key, now)
	if len(fs) < limit {
		return 0
	}
	return fs[len(fs)-limit].Add(l.Window).Sub(now)
}

func (l *failureLimiter) fail(key string, limit int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Now()
	if l.failures == nil {
		l.failures = map[string][]time.Time{}
	}
	if len(l.failures) >= maxLimiterKeys {
		for k := range l.failures {
			l.prune(k, now)
		}
	}
	fs := append(l.prune(key, now), now)
	if len(fs) > limit {
		fs = fs[len(fs)-limit:]
	}
	l.failures[key] = fs
}

func (l *failureLimiter) prune(key string, now time.Time) []time.Time {
	fs := l.failures[key]
	i := 0
	for i < len(fs) && now.Sub(fs[i]) >= l.Window {
		i++
	}
	fs = fs[i:]
	if len(fs) == 0 {
		delete(l.failures, key)
		return nil
	}
	l.failures[key] = fs
	return fs
}

// Sign-in limits: the 11th attempt within 15 minutes after ten failures,
// for one account or (by default) from one address, is refused.
const (
	SignInMaxFailures = 10
	SignInWindow      = 15 * time.Minute
)

// signInRetryAfter is the wait imposed on a sign-in for upn from the
// request's address, the longer of the two limits.
func (s *Server) signInRetryAfter(r *http.Request, upn string) time.Duration {
	wait := s.accountLimiter.retryAfter(upn, SignInMaxFailures)
	if s.SignInFailuresPerAddress > 0 {
		wait = max(wait, s.addressLimiter.retryAfter(clientIP(r), s.SignInFailuresPerAddress))
	}
	return wait
}

func (s *Server) signInFailed(r *http.Request, upn string) {
	s.accountLimiter.fail(upn, SignInMaxFailures)
	if s.SignInFailuresPerAddress > 0 {
		s.addressLimiter.fail(clientIP(r), s.SignInFailuresPerAddress)
	}
}

// checkUserPassword verifies a user's password in a verification slot. An
// unknown user costs one verification against a decoy hash, so neither
// the answer nor its timing tells which accounts exist.
func (s *Server) checkUserPassword(ctx context.Context, upn, password string) (*wharf.User, error) {
	refused := wharf.Errorf(wharf.EUNAUTHENTICATED, "incorrect user name or password")
	u, err := s.Store.FindUser(ctx, upn)
	if err != nil && !wharf.IsNotFound(err) {
		return nil, err
	}
	hash := decoySecretHash()
	if u != nil {
		hash = u.PasswordHash
	}
	ok, err := verifyClientSecret(ctx, hash, password)
	if err != nil {
		return nil, err
	}
	if u == nil || !ok {
		return nil, refused
	}
	return u, nil
}

// auditSignIn records a sign-in attempt: who it claimed to be, how it
// ended and through which door (web, password grant, device code); never
// the password.
func (s *Server) auditSignIn(r *http.Request, action, upn string, u *wharf.User, status int) {
	e := &wharf.AuditEvent{
		Action: action, Method: r.Method, Path: r.URL.Path, Scope: wharf.ServerScope,
		Status: status, Outcome: wharf.AuditSucceeded, RequestID: requestID(r.Context()),
		PrincipalName: upn,
	}
	if status >= 400 {
		e.Outcome = wharf.AuditDenied
	}
	if u != nil {
		e.PrincipalID, e.PrincipalName = u.ObjectID, u.UserPrincipalName
	}
	if len(e.PrincipalName) > 113 {
		e.PrincipalName = e.PrincipalName[:113]
	}
	s.recordAudit(r, e)
}

// recordAudit writes e even when the request is cancelled; a failure to
// write it is logged loudly.
func (s *Server) recordAudit(r *http.Request, e *wharf.AuditEvent) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if err := s.Store.RecordAuditEvent(ctx, e); err != nil {
		s.Logger.Error("audit write failed", "path", e.Path, "principal", e.PrincipalID, "err", err)
	}
}
