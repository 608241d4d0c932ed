package http_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/auth"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/internal/testclock"
)

const alicePassword = "correct horse battery staple"

// userFixture is a test server whose sessions, device codes and sign-in
// limits read a clock the test moves.
func userFixture(t *testing.T) (*fixture, *testclock.Clock) {
	t.Helper()
	f := newFixture(t)
	clk := testclock.New(time.Now())
	f.srv.Now, f.issuer.Now, f.db.Now = clk.Now, clk.Now, clk.Now
	return f, clk
}

// user creates a user directly in the store, with grants.
func (f *fixture) user(upn, password string, grants ...[2]string) *wharf.User {
	f.t.Helper()
	hash, err := auth.HashSecret(password)
	if err != nil {
		f.t.Fatal(err)
	}
	u := &wharf.User{ObjectID: "user-" + strings.Split(upn, "@")[0], UserPrincipalName: upn, DisplayName: upn, PasswordHash: hash}
	if err := f.db.CreateUser(context.Background(), u); err != nil {
		f.t.Fatal(err)
	}
	for _, g := range grants {
		if err := f.db.CreateRoleAssignment(context.Background(), &wharf.RoleAssignment{PrincipalID: u.ObjectID, RoleName: g[0], Scope: g[1]}); err != nil {
			f.t.Fatal(err)
		}
	}
	return u
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so a test sees each answer; from sets its source address.
type browser struct {
	t    *testing.T
	c    *http.Client
	base string
}

func newBrowser(t *testing.T, base string, from string, tr *http.Transport) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	if tr == nil {
		tr = &http.Transport{}
	} else {
		tr = tr.Clone()
	}
	if from != "" {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		tr.DialContext = d.DialContext
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, path string, body io.Reader, header map[string]string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

var csrfFieldRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func formToken(t *testing.T, page string) string {
	t.Helper()
	m := csrfFieldRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf_token field in page:\n%s", page)
	}
	return m[1]
}

func (b *browser) postForm(path string, v url.Values) (*http.Response, string) {
	return b.do("POST", path, strings.NewReader(v.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
}

// signIn submits the sign-in form as a person would: fetch it, fill it in.
func (b *browser) signIn(upn, password string) (*http.Response, string) {
	b.t.Helper()
	resp, page := b.do("GET", "/signin", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(page, `<label for="password">`) {
		b.t.Fatalf("GET /signin: %d\n%s", resp.StatusCode, page)
	}
	return b.postForm("/signin", url.Values{"csrf_token": {formToken(b.t, page)}, "username": {upn}, "password": {password}})
}

// mustSignIn signs in and returns the session's CSRF token from the landing
// page.
func (b *browser) mustSignIn(upn, password string) string {
	b.t.Helper()
	resp, body := b.signIn(upn, password)
	if resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("sign-in as %s: %d\n%s", upn, resp.StatusCode, body)
	}
	resp, page := b.do("GET", "/", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(page, "Signed in as") {
		b.t.Fatalf("landing page: %d\n%s", resp.StatusCode, page)
	}
	return formToken(b.t, page)
}

func (b *browser) api(method, path, body, csrf string) int {
	b.t.Helper()
	h := map[string]string{"Content-Type": "application/json"}
	if csrf != "" {
		h[wharfhttp.CSRFHeader] = csrf
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	resp, _ := b.do(method, path, rd, h)
	return resp.StatusCode
}

func sessionCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == wharfhttp.SessionCookieName {
			return c
		}
	}
	return nil
}

func TestSignInSetsSessionCookie(t *testing.T) {
	f, _ := userFixture(t)
	f.user("alice@team", alicePassword)
	b := newBrowser(t, f.http.URL, "", nil)
	resp, body := b.signIn("Alice@Team", alicePassword)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("sign-in: %d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	c := sessionCookie(resp)
	if c == nil {
		t.Fatal("no session cookie")
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure {
		t.Errorf("cookie attributes over plain HTTP: %+v", c)
	}
	if raw, _ := url.QueryUnescape(c.Value); len(raw) < 43 {
		t.Errorf("session id %q is shorter than 256 bits", c.Value)
	}
	// Only the hash is stored.
	if _, err := f.db.FindSession(context.Background(), c.Value); !wharf.IsNotFound(err) {
		t.Errorf("session stored under its raw id: %v", err)
	}
	sum := sha256.Sum256([]byte(c.Value))
	if _, err := f.db.FindSession(context.Background(), hex.EncodeToString(sum[:])); err != nil {
		t.Errorf("session not stored under its hash: %v", err)
	}
	_, page := b.do("GET", "/", nil, nil)
	if !strings.Contains(page, "alice@team") || !strings.Contains(page, `action="/signout"`) {
		t.Errorf("landing page does not say who is signed in:\n%s", page)
	}
	resp, me := b.do("GET", "/api/v1/me", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(me, `"type":"user"`) || !strings.Contains(me, "alice@team") {
		t.Errorf("GET /api/v1/me with the cookie: %d %s", resp.StatusCode, me)
	}

	// Signing out needs the token, then ends the session.
	if resp, _ := b.postForm("/signout", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-out without CSRF token: %d, want 403", resp.StatusCode)
	}
	_, page = b.do("GET", "/", nil, nil)
	resp, _ = b.postForm("/signout", url.Values{"csrf_token": {formToken(t, page)}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	if resp, _ := b.do("GET", "/api/v1/me", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after sign-out: %d, want 401", resp.StatusCode)
	}
	if resp, _ := b.do("GET", "/", nil, nil); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/signin") {
		t.Errorf("landing page after sign-out: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestSessionCookieSecureUnderTLS(t *testing.T) {
	f, _ := userFixture(t)
	f.user("alice@team", alicePassword)
	tls := httptest.NewTLSServer(f.srv.Handler())
	t.Cleanup(tls.Close)
	b := newBrowser(t, tls.URL, "", tls.Client().Transport.(*http.Transport))
	resp, body := b.signIn("alice@team", alicePassword)
	c := sessionCookie(resp)
	if resp.StatusCode != http.StatusSeeOther || c == nil {
		t.Fatalf("sign-in over TLS: %d\n%s", resp.StatusCode, body)
	}
	if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
		t.Errorf("cookie over TLS: %+v", c)
	}

	// Behind a proxy that ends TLS, the configured https URL decides.
	f.srv.URL = "https://wharf.example"
	b = newBrowser(t, f.http.URL, "", nil)
	resp, _ = b.signIn("alice@team", alicePassword)
	if c := sessionCookie(resp); c == nil || !c.Secure {
		t.Errorf("cookie with an https server URL: %+v", c)
	}
}

func TestSignInRefusesWrongPasswordAlike(t *testing.T) {
	f, _ := userFixture(t)
	f.user("alice@team", alicePassword)
	b := newBrowser(t, f.http.URL, "", nil)
	resp1, page1 := b.signIn("alice@team", "not the password at all")
	resp2, page2 := b.signIn("nobody@team", "not the password at all")
	for _, r := range []*http.Response{resp1, resp2} {
		if r.StatusCode != http.StatusUnauthorized || sessionCookie(r) != nil {
			t.Errorf("failed sign-in: %d, cookie %v", r.StatusCode, sessionCookie(r))
		}
	}
	msg := "Incorrect user name or password."
	if !strings.Contains(page1, msg) || !strings.Contains(page2, msg) {
		t.Errorf("failure pages differ from %q", msg)
	}
	// A form without its token is refused before any password check.
	resp, _ := b.postForm("/signin", url.Values{"username": {"alice@team"}, "password": {alicePassword}})
	if resp.StatusCode != http.StatusForbidden || sessionCookie(resp) != nil {
		t.Errorf("sign-in without the form's token: %d", resp.StatusCode)
	}
}

func TestSessionIdleAndAbsoluteExpiry(t *testing.T) {
	f, clk := userFixture(t)
	f.user("alice@team", alicePassword)

	b := newBrowser(t, f.http.URL, "", nil)
	b.mustSignIn("alice@team", alicePassword)
	// Sliding: activity every 29 minutes keeps the session.
	for i := 0; i < 3; i++ {
		clk.Advance(29 * time.Minute)
		if resp, _ := b.do("GET", "/api/v1/me", nil, nil); resp.StatusCode != 200 {
			t.Fatalf("after %d×29 min of activity: %d", i+1, resp.StatusCode)
		}
	}
	clk.Advance(wharfhttp.DefaultSessionIdle)
	if resp, _ := b.do("GET", "/api/v1/me", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after 30 idle minutes: %d, want 401", resp.StatusCode)
	}

	b = newBrowser(t, f.http.URL, "", nil)
	b.mustSignIn("alice@team", alicePassword)
	start := clk.Now()
	for clk.Now().Sub(start) < wharfhttp.DefaultSessionMaxAge-25*time.Minute {
		clk.Advance(25 * time.Minute)
		if resp, _ := b.do("GET", "/api/v1/me", nil, nil); resp.StatusCode != 200 {
			t.Fatalf("active session refused after %v: %d", clk.Now().Sub(start), resp.StatusCode)
		}
	}
	clk.Set(start.Add(wharfhttp.DefaultSessionMaxAge))
	if resp, _ := b.do("GET", "/api/v1/me", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("active session after 12 h: %d, want 401", resp.StatusCode)
	}
}

// TestSessionCSRFAndRoles checks that a cookie authorizes the REST API with
// the same role rules as a token, and that no state-changing call is made
// on a cookie alone.
func TestSessionCSRFAndRoles(t *testing.T) {
	f, _ := userFixture(t)
	f.workspace("ws-a")
	f.user("rita@team", alicePassword, [2]string{wharf.RoleReader, "/workspaces/ws-a"})
	f.user("dana@team", alicePassword, [2]string{wharf.RoleDataScientist, "/workspaces/ws-a"})

	const put = "/api/v1/workspaces/ws-a/datastores/raw"
	const body = `{"type":"local"}`
	dana := newBrowser(t, f.http.URL, "", nil)
	csrf := dana.mustSignIn("dana@team", alicePassword)
	if got := dana.api("PUT", put, body, ""); got != http.StatusForbidden {
		t.Errorf("PUT with the cookie and no CSRF token: %d, want 403", got)
	}
	if got := dana.api("PUT", put, body, "forged-"+csrf[:10]); got != http.StatusForbidden {
		t.Errorf("PUT with a wrong CSRF token: %d, want 403", got)
	}
	if _, err := f.db.FindDatastore(context.Background(), "ws-a", "raw"); !wharf.IsNotFound(err) {
		t.Fatalf("a refused request wrote the datastore: %v", err)
	}
	if got := dana.api("PUT", put, body, csrf); got >= 300 {
		t.Errorf("Data Scientist PUT datastore with the CSRF token: %d", got)
	}
	if got := dana.api("GET", "/api/v1/workspaces/ws-a/datastores", "", ""); got != 200 {
		t.Errorf("GET needs no CSRF token: %d", got)
	}
	if got := dana.api("PUT", "/api/v1/workspaces/ws-a/computes/c1", `{"type":"amlcompute","max_instances":2}`, csrf); got != http.StatusForbidden {
		t.Errorf("Data Scientist PUT compute: %d, want 403", got)
	}
	// Another session's token does not fit this one.
	rita := newBrowser(t, f.http.URL, "", nil)
	ritaCSRF := rita.mustSignIn("rita@team", alicePassword)
	if got := dana.api("DELETE", put, "", ritaCSRF); got != http.StatusForbidden {
		t.Errorf("DELETE with another session's token: %d, want 403", got)
	}
	// A Reader's forged POST is refused by the role, token or not.
	if got := rita.api("PUT", "/api/v1/workspaces/ws-a/datastores/other", body, ritaCSRF); got != http.StatusForbidden {
		t.Errorf("Reader PUT with a valid CSRF token: %d, want 403", got)
	}
	if got := rita.api("POST", "/api/v1/workspaces/ws-a/roleAssignments", `{"assignee":"rita@team","role":"Owner"}`, ritaCSRF); got != http.StatusForbidden {
		t.Errorf("Reader POST role assignment: %d, want 403", got)
	}
	if got := rita.api("GET", "/api/v1/workspaces/ws-a/datastores/raw", "", ""); got != 200 {
		t.Errorf("Reader GET: %d", got)
	}
}

// TestSignInRateLimit checks both limits, each from its own loopback
// address: failures for one account are refused from any address, and
// failures from one address are refused for any account.
func TestSignInRateLimit(t *testing.T) {
	f, clk := userFixture(t)
	f.user("alice@team", alicePassword)
	f.user("bob@team", alicePassword)
	f.user("carol@team", alicePassword)

	attacker := newBrowser(t, f.http.URL, "127.0.0.2", nil)
	for i := 0; i < wharfhttp.SignInMaxFailures; i++ {
		if resp, _ := attacker.signIn("alice@team", "wrong password number"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, resp.StatusCode)
		}
	}
	// The 11th attempt for alice, even with the right password and from
	// elsewhere, is refused; so is one for an account that does not exist
	// after as many failures, in the same words.
	other := newBrowser(t, f.http.URL, "127.0.0.3", nil)
	resp, page := other.signIn("alice@team", alicePassword)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || sessionCookie(resp) != nil {
		t.Fatalf("11th attempt for the account: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	ghost := newBrowser(t, f.http.URL, "127.0.0.4", nil)
	for i := 0; i < wharfhttp.SignInMaxFailures; i++ {
		ghost.signIn("ghost@team", "wrong password number")
	}
	resp2, page2 := newBrowser(t, f.http.URL, "127.0.0.5", nil).signIn("ghost@team", "wrong password number")
	if resp2.StatusCode != http.StatusTooManyRequests || !strings.Contains(page2, "Too many failed sign-in attempts") || !strings.Contains(page, "Too many failed sign-in attempts") {
		t.Errorf("unknown account after 10 failures: %d", resp2.StatusCode)
	}
	// Bob is not affected from a fresh address.
	if resp, _ := other.signIn("bob@team", alicePassword); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("bob from another address: %d", resp.StatusCode)
	}

	// Per address: 10 failures over 10 accounts from one address.
	spray := newBrowser(t, f.http.URL, "127.0.0.6", nil)
	for i := 0; i < wharfhttp.SignInMaxFailures; i++ {
		spray.signIn("user"+string(rune('a'+i))+"@team", "wrong password number")
	}
	if resp, _ := spray.signIn("carol@team", alicePassword); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("11th attempt from the address: %d, want 429", resp.StatusCode)
	}
	if resp, _ := newBrowser(t, f.http.URL, "127.0.0.7", nil).signIn("carol@team", alicePassword); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("carol from another address: %d", resp.StatusCode)
	}

	// The password grant counts against the same limits.
	form := url.Values{"grant_type": {"password"}, "username": {"alice@team"}, "password": {alicePassword}}
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.8")}}).DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	pc := &http.Client{Transport: tr}
	r, err := pc.PostForm(f.http.URL+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Errorf("password grant for a limited account: %d", r.StatusCode)
	}

	// The window slides: 15 minutes later alice may try again.
	clk.Advance(wharfhttp.SignInWindow)
	if resp, _ := other.signIn("alice@team", alicePassword); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after the window: %d", resp.StatusCode)
	}
}

func TestSignInAudited(t *testing.T) {
	f, _ := userFixture(t)
	f.user("alice@team", alicePassword)
	b := newBrowser(t, f.http.URL, "", nil)
	const wrong = "definitely-not-her-password"
	b.signIn("alice@team", wrong)
	b.mustSignIn("alice@team", alicePassword)
	r, err := http.PostForm(f.http.URL+"/oauth2/v2.0/token", url.Values{"grant_type": {"password"}, "username": {"alice@team"}, "password": {wrong + "2"}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()

	events, err := f.db.ListAuditEvents(context.Background(), wharf.AuditFilter{})
	must(t, err)
	var got []string
	for _, e := range events {
		got = append(got, e.Action+" "+e.PrincipalName+" "+e.Outcome)
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{"signin alice@team denied", "signin alice@team succeeded", "signin/password alice@team denied"} {
		if !strings.Contains(all, want) {
			t.Errorf("audit log lacks %q:\n%s", want, all)
		}
	}
	js, _ := json.Marshal(events)
	for _, secret := range []string{wrong, alicePassword} {
		if strings.Contains(string(js), secret) || strings.Contains(f.logs.String(), secret) {
			t.Errorf("a password reached the audit log or the server log")
		}
	}
}

func TestPasswordResetAndDeleteEndSessions(t *testing.T) {
	f, clk := userFixture(t)
	owner := f.principal("boss", [2]string{wharf.RoleOwner, "/"})
	f.user("alice@team", alicePassword)
	b := newBrowser(t, f.http.URL, "", nil)
	b.mustSignIn("alice@team", alicePassword)
	tok := passwordToken(t, f, "alice@team", alicePassword)

	c := f.client(owner)
	var u wharf.User
	err := c.Do(context.Background(), "PATCH", "/api/v1/users/alice@team", map[string]any{"passwordProfile": map[string]any{"password": "short"}}, &u)
	if wharf.ErrorCode(err) != wharf.EINVALID || !strings.Contains(wharf.ErrorMessage(err), "at least 12 characters") {
		t.Fatalf("short password: %v", err)
	}
	if resp, _ := b.do("GET", "/api/v1/me", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("a refused reset ended the session: %d", resp.StatusCode)
	}
	// Tokens are issued in whole seconds; the reset comes in a later one.
	clk.Advance(time.Second)
	must(t, c.Do(context.Background(), "PATCH", "/api/v1/users/alice@team", map[string]any{"passwordProfile": map[string]any{"password": "a brand new passphrase"}}, &u))
	if resp, _ := b.do("GET", "/api/v1/me", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("session after a password reset: %d, want 401", resp.StatusCode)
	}
	if got := f.client(tok).Do(context.Background(), "GET", "/api/v1/me", nil, nil); wharf.ErrorCode(got) != wharf.EUNAUTHENTICATED {
		t.Errorf("token from the old password after the reset: %v", got)
	}

	b.mustSignIn("alice@team", "a brand new passphrase")
	must(t, c.Do(context.Background(), "DELETE", "/api/v1/users/alice@team", nil, nil))
	if resp, _ := b.do("GET", "/api/v1/me", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("session after the user was deleted: %d, want 401", resp.StatusCode)
	}
}

func passwordToken(t *testing.T, f *fixture, upn, password string) string {
	t.Helper()
	r, err := http.PostForm(f.http.URL+"/oauth2/v2.0/token", url.Values{"grant_type": {"password"}, "username": {upn}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var tr struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		Error        string `json:"error_description"`
	}
	_ = json.NewDecoder(r.Body).Decode(&tr)
	if r.StatusCode != 200 {
		t.Fatalf("password grant for %s: %d %s", upn, r.StatusCode, tr.Error)
	}
	return tr.AccessToken
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestSignInAddressLimitCanBeLifted checks the per-address limit can be
// lifted (a server behind a proxy sees one address) while the per-account
// limit stays.
func TestSignInAddressLimitCanBeLifted(t *testing.T) {
	f, _ := userFixture(t)
	f.srv.SignInFailuresPerAddress = 0
	f.user("carol@team", alicePassword)
	b := newBrowser(t, f.http.URL, "", nil)
	for i := 0; i < 2*wharfhttp.SignInMaxFailures; i++ {
		b.signIn("user"+string(rune('a'+i))+"@team", "wrong password number")
	}
	if resp, _ := b.signIn("carol@team", alicePassword); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("sign-in after failures for other accounts, no address limit: %d", resp.StatusCode)
	}
	for i := 0; i < wharfhttp.SignInMaxFailures; i++ {
		b.signIn("carol@team", "wrong password number")
	}
	if resp, _ := b.signIn("carol@team", alicePassword); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("11th attempt for the account: %d, want 429", resp.StatusCode)
	}
}
