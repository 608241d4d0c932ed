package http_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/internal/oidctest"
)

// ssoFixture is a test server whose single sign-on is a real OpenID
// Connect provider (see oidctest) with three accounts: alice, whose email
// is a Wharf user's name; bob, matched by preferred_username because his
// email is unverified; and mallory, whom no Wharf user matches.
func ssoFixture(t *testing.T) (*fixture, *oidctest.Provider) {
	t.Helper()
	f := newFixture(t)
	p := oidctest.Start(t, []string{f.http.URL + wharfhttp.SSOCallbackPath}, oidctest.Accounts{
		"alice":   {"email": "Alice@Team", "email_verified": true, "preferred_username": "someone-else@team", "name": "Alice"},
		"bob":     {"email": "alice@team", "email_verified": false, "preferred_username": "bob@team"},
		"mallory": {"email": "mallory@elsewhere", "email_verified": true},
	})
	must(t, f.srv.SetSingleSignOn(&wharfhttp.SingleSignOn{ProviderName: "Test IdP", Issuer: p.Issuer,
		ClientID: oidctest.ClientID, ClientSecret: oidctest.ClientSecret}))
	return f, p
}

// ssoSignIn goes from the sign-in page's single sign-on link through the
// provider as login and returns the server's answer to the callback.
func (b *browser) ssoSignIn(p *oidctest.Provider, login string) (*http.Response, string) {
	b.t.Helper()
	_, page := b.do("GET", "/signin?next=/device", nil, nil)
	if !strings.Contains(page, `href="/signin/sso?next=%2fdevice"`) || !strings.Contains(page, "Sign in with Test IdP") {
		b.t.Fatalf("the sign-in page offers no single sign-on:\n%s", page)
	}
	back, err := p.Authorize(b.c, b.base+"/signin/sso?next=/device", login)
	if err != nil {
		b.t.Fatal(err)
	}
	if !strings.HasPrefix(back, b.base+wharfhttp.SSOCallbackPath+"?") {
		b.t.Fatalf("the provider sent the browser to %s", back)
	}
	return b.do("GET", strings.TrimPrefix(back, b.base), nil, nil)
}

func TestSingleSignOnStartsASessionWhoseRolesApply(t *testing.T) {
	f, p := ssoFixture(t)
	f.workspace("w1")
	f.workspace("w2")
	f.user("alice@team", alicePassword, [2]string{wharf.RoleReader, "/workspaces/w1"})
	f.user("someone-else@team", alicePassword, [2]string{wharf.RoleOwner, "/"})
	b := newBrowser(t, f.http.URL, "", nil)

	// The flow begins with PKCE (S256), a state and a nonce.
	resp, _ := b.do("GET", "/signin/sso", nil, nil)
	to, err := url.Parse(resp.Header.Get("Location"))
	must(t, err)
	q := to.Query()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(to.String(), p.Issuer+"/") ||
		q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 || q.Get("state") == "" || q.Get("nonce") == "" ||
		q.Get("client_id") != oidctest.ClientID || q.Get("redirect_uri") != f.http.URL+wharfhttp.SSOCallbackPath {
		t.Fatalf("GET /signin/sso: %d to %s", resp.StatusCode, to)
	}

	resp, body := b.ssoSignIn(p, "alice")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/device" {
		t.Fatalf("callback: %d to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	c := sessionCookie(resp)
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
		t.Fatalf("the callback set no session cookie like a password sign-in's: %+v", c)
	}
	// The email wins over preferred_username: this is alice, a Reader of
	// w1, not the Owner her preferred_username names.
	resp, me := b.do("GET", "/api/v1/me", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(me, `"alice@team"`) {
		t.Fatalf("GET /api/v1/me after single sign-on: %d %s", resp.StatusCode, me)
	}
	if resp, _ := b.do("GET", "/api/v1/workspaces/w1", nil, nil); resp.StatusCode != 200 {
		t.Errorf("alice reads w1: %d, want 200", resp.StatusCode)
	}
	if resp, _ := b.do("GET", "/api/v1/workspaces/w2", nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("alice reads w2: %d, want 403", resp.StatusCode)
	}
	_, page := b.do("GET", "/", nil, nil)
	csrf := formToken(t, page)
	if code := b.api("PUT", "/api/v1/workspaces/w1", `{}`, csrf); code != http.StatusForbidden {
		t.Errorf("alice, a Reader, writes w1: %d, want 403", code)
	}

	// An unverified email is not matched: bob is bob@team by his
	// preferred_username, though his email claims alice's name.
	f.user("bob@team", alicePassword)
	b2 := newBrowser(t, f.http.URL, "", nil)
	if resp, body := b2.ssoSignIn(p, "bob"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("bob's callback: %d\n%s", resp.StatusCode, body)
	}
	if _, me := b2.do("GET", "/api/v1/me", nil, nil); !strings.Contains(me, `"bob@team"`) {
		t.Errorf("bob signed in as %s", me)
	}
	if !auditHas(t, f, "signin/oidc alice@team succeeded") {
		t.Error("the single sign-on is not in the audit log")
	}
}

func TestSingleSignOnRefusesAnUnknownUser(t *testing.T) {
	f, p := ssoFixture(t)
	b := newBrowser(t, f.http.URL, "", nil)
	resp, page := b.ssoSignIn(p, "mallory")
	if resp.StatusCode != http.StatusForbidden || sessionCookie(resp) != nil ||
		!strings.Contains(page, "no Wharf user has that name") || !strings.Contains(page, "administrator must create the user") ||
		!strings.Contains(page, "mallory@elsewhere") {
		t.Fatalf("unknown user's callback: %d\n%s", resp.StatusCode, page)
	}
	if resp, _ := b.do("GET", "/api/v1/me", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/me after a refused sign-in: %d, want 401", resp.StatusCode)
	}
	if !auditHas(t, f, "signin/oidc mallory@elsewhere denied") {
		t.Error("the refused single sign-on is not in the audit log")
	}
}

// TestSingleSignOnRefusesAnotherBrowsersAnswer: a code and state obtained
// in one browser (an attacker's) and delivered to another (the victim's)
// signs nobody in, nor does an answer with no attempt behind it.
func TestSingleSignOnRefusesAnotherBrowsersAnswer(t *testing.T) {
	f, p := ssoFixture(t)
	f.user("alice@team", alicePassword)
	attacker := newBrowser(t, f.http.URL, "", nil)
	back, err := p.Authorize(attacker.c, f.http.URL+"/signin/sso", "alice")
	must(t, err)
	callback := strings.TrimPrefix(back, f.http.URL)

	victim := newBrowser(t, f.http.URL, "", nil)
	if resp, page := victim.do("GET", callback, nil, nil); resp.StatusCode != http.StatusBadRequest || sessionCookie(resp) != nil ||
		!strings.Contains(page, "expired or began in another browser") {
		t.Errorf("callback without an attempt: %d\n%s", resp.StatusCode, page)
	}
	victim.do("GET", "/signin/sso", nil, nil) // the victim's own attempt, with its own state
	if resp, page := victim.do("GET", callback, nil, nil); resp.StatusCode != http.StatusBadRequest || sessionCookie(resp) != nil ||
		!strings.Contains(page, "state differs") {
		t.Errorf("callback with another attempt's state: %d\n%s", resp.StatusCode, page)
	}
	if !auditHas(t, f, "signin/oidc  denied") {
		t.Error("the refused answers are not in the audit log")
	}
	// The attacker's own browser still holds its attempt and finishes it:
	// the refusal above came from the mismatch, not from a broken flow.
	if resp, page := attacker.do("GET", callback, nil, nil); resp.StatusCode != http.StatusSeeOther || sessionCookie(resp) == nil {
		t.Errorf("the browser that began the attempt: %d\n%s", resp.StatusCode, page)
	}
}

func TestSignInPageWithoutSingleSignOnOffersNone(t *testing.T) {
	f := newFixture(t)
	b := newBrowser(t, f.http.URL, "", nil)
	if _, page := b.do("GET", "/signin", nil, nil); strings.Contains(page, "/signin/sso") {
		t.Errorf("the sign-in page offers single sign-on that is not configured:\n%s", page)
	}
	if resp, _ := b.do("GET", "/signin/sso", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /signin/sso without single sign-on: %d, want 404", resp.StatusCode)
	}
	if err := f.srv.SetSingleSignOn(&wharfhttp.SingleSignOn{Issuer: "ftp://x"}); err == nil ||
		!strings.Contains(err.Error(), "issuer") || !strings.Contains(err.Error(), "client id") || !strings.Contains(err.Error(), "client secret") {
		t.Errorf("an incomplete configuration: %v", err)
	}
}

// auditHas reports whether the audit log has an event "ACTION PRINCIPAL
// OUTCOME".
func auditHas(t *testing.T, f *fixture, want string) bool {
	t.Helper()
	events, err := f.db.ListAuditEvents(context.Background(), wharf.AuditFilter{})
	must(t, err)
	for _, e := range events {
		if e.Action+" "+e.PrincipalName+" "+e.Outcome == want {
			return true
		}
	}
	return false
}

func TestSingleSignOnUnderTLSSetsSecureCookies(t *testing.T) {
	f := newFixture(t)
	f.user("alice@team", alicePassword)
	ts := httptest.NewTLSServer(f.srv.Handler())
	t.Cleanup(ts.Close)
	p := oidctest.Start(t, []string{ts.URL + wharfhttp.SSOCallbackPath}, oidctest.Accounts{"alice": {"email": "alice@team"}})
	must(t, f.srv.SetSingleSignOn(&wharfhttp.SingleSignOn{Issuer: p.Issuer, ClientID: oidctest.ClientID, ClientSecret: oidctest.ClientSecret,
		RedirectURL: ts.URL + wharfhttp.SSOCallbackPath}))
	b := newBrowser(t, ts.URL, "", ts.Client().Transport.(*http.Transport))
	resp, _ := b.do("GET", "/signin/sso", nil, nil)
	var attempt *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "wharf_sso" {
			attempt = c
		}
	}
	if attempt == nil || !attempt.Secure || !attempt.HttpOnly || attempt.SameSite != http.SameSiteLaxMode {
		t.Errorf("the sign-in attempt's cookie over TLS: %+v", attempt)
	}
	back, err := p.Authorize(b.c, ts.URL+"/signin/sso", "alice")
	must(t, err)
	resp, body := b.do("GET", strings.TrimPrefix(back, ts.URL), nil, nil)
	if c := sessionCookie(resp); resp.StatusCode != http.StatusSeeOther || c == nil || !c.Secure || !c.HttpOnly {
		t.Fatalf("callback over TLS: %d, session cookie %+v\n%s", resp.StatusCode, c, body)
	}
}

// TestSingleSignOnReportsRefusalsAndOutages: a person who cancels at the
// provider, and a provider that cannot be reached, get the sign-in page
// with a reason (the password form still there), and the audit log gets
// the failure.
func TestSingleSignOnReportsRefusalsAndOutages(t *testing.T) {
	f, _ := ssoFixture(t)
	b := newBrowser(t, f.http.URL, "", nil)
	resp, _ := b.do("GET", "/signin/sso", nil, nil)
	to, err := url.Parse(resp.Header.Get("Location"))
	must(t, err)
	cb := wharfhttp.SSOCallbackPath + "?" + url.Values{"state": {to.Query().Get("state")}, "error": {"access_denied"},
		"error_description": {"End-User aborted interaction"}}.Encode()
	resp, page := b.do("GET", cb, nil, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "Test IdP refused the sign-in: access_denied (End-User aborted interaction)") ||
		!strings.Contains(page, `id="password"`) {
		t.Errorf("a refusal at the provider: %d\n%s", resp.StatusCode, page)
	}

	// A provider that is down: nothing listens on the discarded port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	down := "http://" + ln.Addr().String()
	ln.Close()
	must(t, f.srv.SetSingleSignOn(&wharfhttp.SingleSignOn{ProviderName: "Down IdP", Issuer: down, ClientID: "c", ClientSecret: "s"}))
	resp, page = b.do("GET", "/signin/sso", nil, nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(page, "Down IdP could not be reached") || !strings.Contains(page, `id="password"`) {
		t.Errorf("an unreachable provider: %d\n%s", resp.StatusCode, page)
	}
	events, err := f.db.ListAuditEvents(context.Background(), wharf.AuditFilter{})
	must(t, err)
	var denied []int
	for _, e := range events {
		if e.Action == "signin/oidc" && e.Outcome == wharf.AuditDenied {
			denied = append(denied, e.Status)
		}
	}
	if len(denied) != 2 {
		t.Errorf("audited single sign-on failures: statuses %v, want 502 and 401", denied)
	}
}
