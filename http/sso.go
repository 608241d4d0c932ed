package http

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/wharfml/wharf"
)

// Single sign-on: the OpenID Connect authorization-code flow with PKCE
// (S256). The state, nonce and code verifier of a sign-in in progress live
// in a short-lived HttpOnly cookie, so any replica of the server can finish
// what another began; the state ties the provider's answer to the browser
// that asked, the verifier ties the code to it, and the nonce ties the ID
// token to this very attempt.

// SSOCallbackPath is where the provider sends the browser back: register
// the server's URL followed by it as the client's redirect URI.
const SSOCallbackPath = "/signin/sso/callback"

const (
	ssoStartPath = "/signin/sso"
	ssoCookie    = "wharf_sso"
	// ssoAttemptTTL bounds how long a person may take at the provider.
	ssoAttemptTTL = 10 * time.Minute
	// ssoFetchTimeout bounds each call to the provider: discovery, the
	// code exchange, a key fetch.
	ssoFetchTimeout = 15 * time.Second
)

// SingleSignOn configures sign-in through an OpenID Connect provider.
type SingleSignOn struct {
	// ProviderName is shown on the sign-in page: "Sign in with
	// ProviderName".
	ProviderName string
	// Issuer is the provider's issuer URL; its discovery document is at
	// Issuer/.well-known/openid-configuration.
	Issuer                 string
	ClientID, ClientSecret string
	// RedirectURL overrides the server's URL + SSOCallbackPath.
	RedirectURL string
	// HTTPClient calls the provider; nil means the server's federation
	// client, which trusts the --oidc-ca-file authorities too.
	HTTPClient *http.Client
}

// sso is the configured single sign-on, its provider discovered on first
// use: a provider that is down when the server starts delays nobody's
// password sign-in.
type sso struct {
	cfg SingleSignOn

	mu       sync.Mutex
	provider *oidc.Provider
}

// SetSingleSignOn enables single sign-on with cfg, or disables it when cfg
// is nil. It is safe to call while serving.
func (s *Server) SetSingleSignOn(cfg *SingleSignOn) error {
	if cfg == nil {
		s.sso.Store(nil)
		return nil
	}
	var problems []string
	u, err := url.Parse(cfg.Issuer)
	if cfg.Issuer == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		problems = append(problems, "the issuer must be an http(s) URL")
	}
	if cfg.ClientID == "" {
		problems = append(problems, "the client id is missing")
	}
	if cfg.ClientSecret == "" {
		problems = append(problems, "the client secret is missing")
	}
	if len(problems) > 0 {
		return wharf.Errorf(wharf.EINVALID, "single sign-on: %s", strings.Join(problems, "; "))
	}
	c := *cfg
	if c.ProviderName == "" {
		c.ProviderName = u.Host
	}
	s.sso.Store(&sso{cfg: c})
	return nil
}

// ssoProviderName is the name the sign-in page shows, "" without single
// sign-on.
func (s *Server) ssoProviderName() string {
	if o := s.sso.Load(); o != nil {
		return o.cfg.ProviderName
	}
	return ""
}

func (s *Server) ssoContext(ctx context.Context, o *sso) context.Context {
	client := o.cfg.HTTPClient
	if client == nil && s.Federation != nil {
		client = s.Federation.Client
	}
	if client == nil {
		return ctx
	}
	return oidc.ClientContext(ctx, client)
}

// discover returns the provider, fetching its discovery document once.
func (s *Server) discover(ctx context.Context, o *sso) (*oidc.Provider, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider != nil {
		return o.provider, nil
	}
	ctx, cancel := context.WithTimeout(ctx, ssoFetchTimeout)
	defer cancel()
	p, err := oidc.NewProvider(s.ssoContext(ctx, o), o.cfg.Issuer)
	if err != nil {
		return nil, err
	}
	// The provider keeps the context's client, not its deadline, for the
	// key fetches to come.
	o.provider = p
	return p, nil
}

// ssoAttempt is what the browser keeps, in ssoCookie, between leaving for
// the provider and coming back.
type ssoAttempt struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"x"`
}

func (s *Server) oauth2Config(o *sso, p *oidc.Provider) *oauth2.Config {
	redirect := o.cfg.RedirectURL
	if redirect == "" {
		redirect = strings.TrimRight(s.URL, "/") + SSOCallbackPath
	}
	return &oauth2.Config{
		ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret,
		Endpoint: p.Endpoint(), RedirectURL: redirect,
		Scopes: []string{oidc.ScopeOpenID, "email", "profile"},
	}
}

// ssoFailure renders the sign-in page with an error, records the failure
// and returns.
func (s *Server) ssoFailure(w http.ResponseWriter, r *http.Request, status int, claimed, msg string) {
	s.auditSignIn(r, "signin/oidc", claimed, nil, status)
	s.signInPage(w, r, status, &pageData{Error: msg, Next: "/"})
}

// handleSSOStart sends the browser to the provider.
func (s *Server) handleSSOStart(w http.ResponseWriter, r *http.Request) {
	o := s.sso.Load()
	if o == nil {
		s.writeError(w, r, wharf.Errorf(wharf.ENOTFOUND, "single sign-on is not configured on this server"))
		return
	}
	p, err := s.discover(r.Context(), o)
	if err != nil {
		s.Logger.Warn("single sign-on provider discovery failed", "issuer", o.cfg.Issuer, "err", err)
		s.ssoFailure(w, r, http.StatusBadGateway, "", o.cfg.ProviderName+" could not be reached. Try again later, or sign in with a password.")
		return
	}
	var a ssoAttempt
	if a.State, err = randomToken(); err == nil {
		a.Nonce, err = randomToken()
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	a.Verifier = oauth2.GenerateVerifier()
	a.Next = safeNext(r.URL.Query().Get("next"))
	val, _ := json.Marshal(a)
	// Lax, not Strict: the provider's redirect back is a cross-site
	// navigation, and a Strict cookie would not come with it.
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Value: base64.RawURLEncoding.EncodeToString(val), Path: ssoStartPath,
		HttpOnly: true, Secure: s.secureCookies(r), SameSite: http.SameSiteLaxMode, MaxAge: int(ssoAttemptTTL.Seconds())})
	to := s.oauth2Config(o, p).AuthCodeURL(a.State, oidc.Nonce(a.Nonce), oauth2.S256ChallengeOption(a.Verifier))
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// ssoClaims are the ID token's claims a user is matched by.
type ssoClaims struct {
	Email             string `json:"email"`
	EmailVerified     *bool  `json:"email_verified"`
	PreferredUsername string `json:"preferred_username"`
}

// names are the user principal names the claims may match, in order:
// a verified (or not said to be unverified) email first, then
// preferred_username.
func (c *ssoClaims) names() []string {
	var out []string
	if c.Email != "" && (c.EmailVerified == nil || *c.EmailVerified) {
		out = append(out, strings.ToLower(strings.TrimSpace(c.Email)))
	}
	if c.PreferredUsername != "" {
		out = append(out, strings.ToLower(strings.TrimSpace(c.PreferredUsername)))
	}
	return out
}

// handleSSOCallback finishes a sign-in: it checks the state, redeems the
// code with the verifier, verifies the ID token and its nonce, and starts
// a session for the Wharf user the token names.
func (s *Server) handleSSOCallback(w http.ResponseWriter, r *http.Request) {
	o := s.sso.Load()
	if o == nil {
		s.writeError(w, r, wharf.Errorf(wharf.ENOTFOUND, "single sign-on is not configured on this server"))
		return
	}
	q := r.URL.Query()
	var a ssoAttempt
	ck, err := r.Cookie(ssoCookie)
	if err == nil {
		var raw []byte
		if raw, err = base64.RawURLEncoding.DecodeString(ck.Value); err == nil {
			err = json.Unmarshal(raw, &a)
		}
	}
	// One use: whatever happens next, this attempt is over.
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Value: "", Path: ssoStartPath, HttpOnly: true,
		Secure: s.secureCookies(r), SameSite: http.SameSiteLaxMode, MaxAge: -1})
	if err != nil || a.State == "" || a.Verifier == "" || a.Nonce == "" {
		s.ssoFailure(w, r, http.StatusBadRequest, "", "The single sign-on attempt expired or began in another browser. Please try again.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(a.State)) != 1 {
		s.ssoFailure(w, r, http.StatusBadRequest, "", "The answer from "+o.cfg.ProviderName+" does not belong to this sign-in (its state differs). Please try again.")
		return
	}
	if e := q.Get("error"); e != "" {
		msg := o.cfg.ProviderName + " refused the sign-in: " + e
		if d := q.Get("error_description"); d != "" {
			msg += " (" + d + ")"
		}
		s.ssoFailure(w, r, http.StatusUnauthorized, "", msg+".")
		return
	}
	u, claimed, err := s.ssoUser(r, o, q.Get("code"), &a)
	if err != nil {
		var f *ssoRefusal
		if errors.As(err, &f) {
			s.ssoFailure(w, r, f.status, claimed, f.msg)
			return
		}
		s.writeError(w, r, err)
		return
	}
	if _, err := s.startSession(w, r, u); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.auditSignIn(r, "signin/oidc", claimed, u, http.StatusSeeOther)
	http.Redirect(w, r, safeNext(a.Next), http.StatusSeeOther)
}

// ssoRefusal is a sign-in the provider's answer does not allow, with what
// the person is told.
type ssoRefusal struct {
	status int
	msg    string
}

func (f *ssoRefusal) Error() string { return f.msg }

// ssoUser redeems the code and returns the Wharf user the ID token names,
// and the name it claimed (for the audit log).
func (s *Server) ssoUser(r *http.Request, o *sso, code string, a *ssoAttempt) (*wharf.User, string, error) {
	name := o.cfg.ProviderName
	p, err := s.discover(r.Context(), o)
	if err != nil {
		s.Logger.Warn("single sign-on provider discovery failed", "issuer", o.cfg.Issuer, "err", err)
		return nil, "", &ssoRefusal{http.StatusBadGateway, name + " could not be reached. Try again later, or sign in with a password."}
	}
	ctx, cancel := context.WithTimeout(r.Context(), ssoFetchTimeout)
	defer cancel()
	ctx = s.ssoContext(ctx, o)
	tok, err := s.oauth2Config(o, p).Exchange(ctx, code, oauth2.VerifierOption(a.Verifier))
	if err != nil {
		s.Logger.Warn("single sign-on code exchange failed", "issuer", o.cfg.Issuer, "err", err)
		return nil, "", &ssoRefusal{http.StatusBadGateway, name + " did not accept the sign-in code. Please try again."}
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, "", &ssoRefusal{http.StatusBadGateway, name + " sent no ID token."}
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: o.cfg.ClientID, Now: s.now}).Verify(ctx, raw)
	if err != nil {
		s.Logger.Warn("single sign-on ID token refused", "issuer", o.cfg.Issuer, "err", err)
		return nil, "", &ssoRefusal{http.StatusUnauthorized, "The ID token from " + name + " could not be verified."}
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(a.Nonce)) != 1 {
		return nil, "", &ssoRefusal{http.StatusUnauthorized, "The ID token from " + name + " was not issued for this sign-in (its nonce differs)."}
	}
	var c ssoClaims
	if err := idt.Claims(&c); err != nil {
		return nil, "", &ssoRefusal{http.StatusBadGateway, "The ID token from " + name + " could not be read."}
	}
	names := c.names()
	if len(names) == 0 {
		return nil, "", &ssoRefusal{http.StatusForbidden, "The ID token from " + name + " has neither a verified email nor a preferred_username, so no Wharf user can be matched to it."}
	}
	for _, n := range names {
		u, err := s.Store.FindUser(r.Context(), n)
		if err == nil {
			return u, n, nil
		} else if !wharf.IsNotFound(err) {
			return nil, n, err
		}
	}
	return nil, names[0], &ssoRefusal{http.StatusForbidden, "You signed in to " + name + " as " + strings.Join(names, " / ") +
		", but no Wharf user has that name. An administrator must create the user first (wharf ad user create --user-principal-name " + names[0] + " ...) and give it a role."}
}
