package http

import (
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/wharfml/wharf"
)

// The web studio's pages are rendered on the server with html/template and
// work without JavaScript. Every form that changes state carries a CSRF
// token: the session's, or before sign-in a token paired with a cookie.

const signInCSRFCookie = "wharf_signin_csrf"

var pages = template.Must(template.New("layout").Parse(`{{define "top"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · Wharf</title>{{if .User}}
<meta name="csrf-token" content="{{.CSRF}}">{{end}}
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.4rem;box-sizing:border-box}button{margin-top:1rem;padding:.4rem 1rem}.error{color:#a00}a.button{display:inline-block;padding:.4rem 1rem;border:1px solid #555;border-radius:3px;color:inherit;text-decoration:none}</style>
</head><body><main><h1>{{.Title}}</h1>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}{{if .Message}}<p role="status">{{.Message}}</p>{{end}}{{end}}
{{define "bottom"}}</main></body></html>{{end}}

{{define "signin"}}{{template "top" .}}
<form method="post" action="/signin">
<input type="hidden" name="csrf_token" value="{{.CSRF}}"><input type="hidden" name="next" value="{{.Next}}">
<label for="username">User name</label>
<input id="username" name="username" type="email" autocomplete="username" required value="{{.Username}}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
{{if .ChangePassword}}<label for="new_password">New password (at least 12 characters)</label>
<input id="new_password" name="new_password" type="password" autocomplete="new-password" minlength="12" required>{{end}}
<button type="submit">Sign in</button>
</form>{{if .SSOName}}
<p class="or">or</p>
<p><a class="button" id="sso" href="/signin/sso?next={{.Next}}">Sign in with {{.SSOName}}</a></p>{{end}}{{template "bottom" .}}{{end}}

{{define "device"}}{{template "top" .}}
<p>Signed in as <strong>{{.User.UserPrincipalName}}</strong>. Enter the code the CLI printed to let it act as you.</p>
<form method="post" action="/device"><input type="hidden" name="csrf_token" value="{{.CSRF}}">
<label for="user_code">Code</label>
<input id="user_code" name="user_code" autocomplete="off" autocapitalize="characters" required value="{{.Code}}">
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>{{template "bottom" .}}{{end}}

{{define "done"}}{{template "top" .}}<p><a href="/">Back</a></p>{{template "bottom" .}}{{end}}
`))

// pageData is what every page template reads.
type pageData struct {
	Title, Error, Message string
	CSRF, Next, Username  string
	Code                  string
	// SSOName is the single sign-on provider's name, "" without one.
	SSOName        string
	ChangePassword bool
	User           *wharf.User
}

func (s *Server) renderPage(w http.ResponseWriter, status int, name string, d *pageData) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, d); err != nil {
		s.Logger.Error("page render failed", "page", name, "err", err)
	}
}

func (s *Server) registerWebRoutes() {
	s.public("GET /{$}", s.handleHome)
	s.public("GET /signin", s.handleSignInPage)
	s.public("POST /signin", s.handleSignIn)
	s.public("POST /signout", s.handleSignOut)
	s.public("GET "+ssoStartPath, s.handleSSOStart)
	s.public("GET "+SSOCallbackPath, s.handleSSOCallback)
	s.public("GET /device", s.handleDevicePage)
	s.public("POST /device", s.handleDeviceDecision)
	s.public("POST /oauth2/v2.0/devicecode", s.handleDeviceCode)
	s.public("POST /{tenant}/oauth2/v2.0/devicecode", s.handleDeviceCode)
}

// safeNext keeps a post-sign-in redirect on this server's own pages: the
// device page, or a studio page (a path below /workspaces/ without a
// backslash, which some browsers read as a slash).
func safeNext(next string) string {
	if next == "/device" || userCodeNextRE.MatchString(next) ||
		(strings.HasPrefix(next, "/workspaces/") && !strings.ContainsAny(next, "\\\r\n")) {
		return next
	}
	return "/"
}

var userCodeNextRE = regexp.MustCompile(`^/device\?user_code=[A-Za-z0-9-]{1,16}$`)

// webSession returns the live session of a page request, or redirects to
// the sign-in page and returns nil.
func (s *Server) webSession(w http.ResponseWriter, r *http.Request) *browserSession {
	bs, err := s.session(r)
	if err != nil {
		s.writeError(w, r, err)
		return nil
	}
	if bs == nil {
		http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
	}
	return bs
}

// handleHome is the studio's landing page: the workspaces the user may
// open.
func (s *Server) handleHome(w http.ResponseWriter, r *http.Request) {
	bs := s.webSession(w, r)
	if bs == nil {
		return
	}
	ctx := wharf.NewContextWithCaller(r.Context(), userCaller(bs.user))
	p, err := s.newStudioPage(r.WithContext(ctx), "Wharf", "")
	if err != nil {
		s.writeStudioError(w, r, err)
		return
	}
	s.renderStudio(w, r, http.StatusOK, "index", p)
}

// signInPage renders the form with a fresh login-CSRF token in a cookie.
func (s *Server) signInPage(w http.ResponseWriter, r *http.Request, status int, d *pageData) {
	tok, err := randomToken()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: signInCSRFCookie, Value: tok, Path: "/signin", HttpOnly: true,
		Secure: s.secureCookies(r), SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	d.Title, d.CSRF, d.SSOName = "Sign in to Wharf", csrfToken(tok), s.ssoProviderName()
	s.renderPage(w, status, "signin", d)
}

func (s *Server) handleSignInPage(w http.ResponseWriter, r *http.Request) {
	s.signInPage(w, r, http.StatusOK, &pageData{Next: safeNext(r.URL.Query().Get("next"))})
}

// handleSignIn checks the password and starts a session. Failures say
// only that the name or password is wrong; the 11th failure within the
// window, per account or per address, is refused with 429 before any
// password is checked.
func (s *Server) handleSignIn(w http.ResponseWriter, r *http.Request) {
	const action = "signin"
	if err := r.ParseForm(); err != nil {
		s.writeError(w, r, wharf.Errorf(wharf.EINVALID, "the form could not be read"))
		return
	}
	d := &pageData{Next: safeNext(r.PostForm.Get("next"))}
	ck, err := r.Cookie(signInCSRFCookie)
	if err != nil || checkCSRF(r, ck.Value) != nil {
		d.Error = "The sign-in form expired; please try again."
		s.signInPage(w, r, http.StatusForbidden, d)
		return
	}
	upn := strings.ToLower(strings.TrimSpace(r.PostForm.Get("username")))
	password := r.PostForm.Get("password")
	d.Username = upn
	if retry := s.signInRetryAfter(r, upn); retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((retry+time.Second-1)/time.Second)))
		d.Error = "Too many failed sign-in attempts. Try again later."
		s.auditSignIn(r, action, upn, nil, http.StatusTooManyRequests)
		s.signInPage(w, r, http.StatusTooManyRequests, d)
		return
	}
	u, err := s.checkUserPassword(r.Context(), upn, password)
	if wharf.ErrorCode(err) == wharf.EUNAUTHENTICATED {
		s.signInFailed(r, upn)
		s.auditSignIn(r, action, upn, nil, http.StatusUnauthorized)
		d.Error = "Incorrect user name or password."
		s.signInPage(w, r, http.StatusUnauthorized, d)
		return
	} else if err != nil {
		s.writeError(w, r, err)
		return
	}
	if u.ForceChangePassword {
		newPassword := r.PostForm.Get("new_password")
		d.ChangePassword = true
		if newPassword == "" {
			d.Message = "Your password must be changed before you sign in. Choose a new one."
			s.signInPage(w, r, http.StatusOK, d)
			return
		}
		if newPassword == password {
			d.Error = "The new password must differ from the current one."
			s.signInPage(w, r, http.StatusBadRequest, d)
			return
		}
		hash, err := hashPassword(newPassword, u.UserPrincipalName)
		if err != nil {
			d.Error = wharf.ErrorMessage(err)
			s.signInPage(w, r, http.StatusBadRequest, d)
			return
		}
		if err := s.Store.SetUserPassword(r.Context(), u.ObjectID, hash, false); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if _, err := s.startSession(w, r, u); err != nil {
		s.writeError(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: signInCSRFCookie, Value: "", Path: "/signin", MaxAge: -1})
	s.auditSignIn(r, action, upn, u, http.StatusSeeOther)
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

func (s *Server) handleSignOut(w http.ResponseWriter, r *http.Request) {
	bs, err := s.session(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if bs != nil {
		if err := checkCSRF(r, bs.id); err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := s.Store.DeleteSession(r.Context(), hashSessionID(bs.id)); err != nil {
			s.writeError(w, r, err)
			return
		}
		s.auditSignIn(r, "signout", "", bs.user, http.StatusSeeOther)
	}
	s.clearSessionCookie(w, r)
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

func (s *Server) handleDevicePage(w http.ResponseWriter, r *http.Request) {
	bs := s.webSession(w, r)
	if bs == nil {
		return
	}
	s.renderPage(w, http.StatusOK, "device", &pageData{Title: "Sign in to the Wharf CLI", User: bs.user,
		CSRF: csrfToken(bs.id), Code: r.URL.Query().Get("user_code")})
}

// handleDeviceDecision approves or denies a device code as the signed-in
// user.
func (s *Server) handleDeviceDecision(w http.ResponseWriter, r *http.Request) {
	bs, err := s.session(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if bs == nil {
		s.writeError(w, r, wharf.Errorf(wharf.EUNAUTHENTICATED, "sign in at /signin first"))
		return
	}
	if err := checkCSRF(r, bs.id); err != nil {
		s.writeError(w, r, err)
		return
	}
	approve := r.PostFormValue("decision") != "deny"
	d := &pageData{Title: "Sign in to the Wharf CLI", User: bs.user, CSRF: csrfToken(bs.id)}
	if err := s.devices.decide(r.PostFormValue("user_code"), bs.user.ObjectID, approve); err != nil {
		d.Error = "That code is not valid, was already used, or has expired. Run the CLI's sign-in again for a new one."
		s.auditSignIn(r, "deviceCode/approve", "", bs.user, http.StatusBadRequest)
		s.renderPage(w, http.StatusBadRequest, "device", d)
		return
	}
	if approve {
		s.auditSignIn(r, "deviceCode/approve", "", bs.user, http.StatusOK)
		d.Message = "The Wharf CLI is now signed in as " + bs.user.UserPrincipalName + ". You may close this window."
	} else {
		s.auditSignIn(r, "deviceCode/deny", "", bs.user, http.StatusOK)
		d.Message = "The sign-in was denied."
	}
	d.Title = "Wharf CLI sign-in"
	s.renderPage(w, http.StatusOK, "done", d)
}
