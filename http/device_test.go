package http_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
)

func startDevice(t *testing.T, f *fixture) wharfhttp.DeviceCodeResponse {
	t.Helper()
	r, err := http.PostForm(f.http.URL+"/"+testTenant+"/oauth2/v2.0/devicecode", url.Values{"client_id": {"wharf-cli"}, "scope": {"api://wharf/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var dc wharfhttp.DeviceCodeResponse
	must(t, json.NewDecoder(r.Body).Decode(&dc))
	if r.StatusCode != 200 || dc.DeviceCode == "" || len(dc.UserCode) != 9 || dc.VerificationURI != f.http.URL+"/device" || dc.Interval != 5 || dc.ExpiresIn != 900 {
		t.Fatalf("device code: %d %+v", r.StatusCode, dc)
	}
	return dc
}

// pollDevice makes one token request for the device code and returns the
// OAuth error code, or "" and the access token.
func pollDevice(t *testing.T, f *fixture, deviceCode string) (errCode, token string) {
	t.Helper()
	r, err := http.PostForm(f.http.URL+"/oauth2/v2.0/token", url.Values{"grant_type": {wharfhttp.DeviceCodeGrantType}, "device_code": {deviceCode}, "client_id": {"wharf-cli"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var body struct {
		Error        string `json:"error"`
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	must(t, json.NewDecoder(r.Body).Decode(&body))
	if body.Error == "" && (body.AccessToken == "" || body.RefreshToken == "") {
		t.Fatalf("device token answer without tokens: %d", r.StatusCode)
	}
	return body.Error, body.AccessToken
}

// approve enters the code on /device as the browser's signed-in user.
func (b *browser) approve(code, decision string) (int, string) {
	b.t.Helper()
	resp, page := b.do("GET", "/device", nil, nil)
	if resp.StatusCode != 200 {
		b.t.Fatalf("GET /device: %d", resp.StatusCode)
	}
	resp, page = b.postForm("/device", url.Values{"csrf_token": {formToken(b.t, page)}, "user_code": {code}, "decision": {decision}})
	return resp.StatusCode, page
}

func TestDeviceCodeFlow(t *testing.T) {
	f, clk := userFixture(t)
	f.workspace("ws-a")
	f.user("dana@team", alicePassword, [2]string{wharf.RoleDataScientist, "/workspaces/ws-a"})
	b := newBrowser(t, f.http.URL, "", nil)

	// /device sends a visitor without a session to sign in first, and back.
	resp, _ := b.do("GET", "/device", nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin?next=%2Fdevice" {
		t.Fatalf("GET /device signed out: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	dc := startDevice(t, f)
	// The complete URI survives the sign-in and fills the code in.
	resp, _ = b.do("GET", strings.TrimPrefix(dc.VerificationURIComplete, f.http.URL), nil, nil)
	next, _ := url.Parse(resp.Header.Get("Location"))
	resp, page := b.do("GET", next.RequestURI(), nil, nil)
	resp, _ = b.postForm("/signin", url.Values{"csrf_token": {formToken(t, page)}, "username": {"dana@team"}, "password": {alicePassword},
		"next": {next.Query().Get("next")}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/device?user_code="+dc.UserCode {
		t.Fatalf("sign-in from the complete URI: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, page := b.do("GET", resp.Header.Get("Location"), nil, nil); !strings.Contains(page, `value="`+dc.UserCode+`"`) {
		t.Errorf("the device page does not fill the code in:\n%s", page)
	}

	if code, _ := pollDevice(t, f, dc.DeviceCode); code != "authorization_pending" {
		t.Fatalf("before approval: %q", code)
	}
	// Polling faster than the interval slows the client down.
	if code, _ := pollDevice(t, f, dc.DeviceCode); code != "slow_down" {
		t.Fatalf("second poll at once: %q, want slow_down", code)
	}
	// Typed in lower case and without its dash, as people do.
	status, page := b.approve(strings.ToLower(strings.ReplaceAll(dc.UserCode, "-", "")), "approve")
	if status != 200 || !strings.Contains(page, "signed in as dana@team") {
		t.Fatalf("approval: %d\n%s", status, page)
	}
	// Each slow_down adds 5 s to the interval (RFC 8628 §3.5): 5 s is
	// too soon now, and stretches it to 15 s.
	clk.Advance(5 * time.Second)
	if code, _ := pollDevice(t, f, dc.DeviceCode); code != "slow_down" {
		t.Fatalf("poll inside the lengthened interval: %q, want slow_down", code)
	}
	clk.Advance(15 * time.Second)
	code, tok := pollDevice(t, f, dc.DeviceCode)
	if code != "" {
		t.Fatalf("after approval: %q", code)
	}
	var me map[string]any
	must(t, f.client(tok).Do(t.Context(), "GET", "/api/v1/me", nil, &me))
	if u, _ := me["user"].(map[string]any); u["name"] != "dana@team" || u["type"] != "user" {
		t.Errorf("token's identity: %v", me["user"])
	}
	// The token carries the user's role: datastores yes, compute no.
	c := f.client(tok)
	must(t, c.Do(t.Context(), "PUT", "/api/v1/workspaces/ws-a/datastores/raw", map[string]any{"type": "local"}, nil))
	err := c.Do(t.Context(), "PUT", "/api/v1/workspaces/ws-a/computes/c1", map[string]any{"type": "amlcompute", "max_instances": 2}, nil)
	if wharf.ErrorCode(err) != wharf.EFORBIDDEN {
		t.Errorf("Data Scientist's token PUT compute: %v", err)
	}

	// Single use: the code gives no second token, and cannot be approved again.
	clk.Advance(time.Minute)
	if code, _ := pollDevice(t, f, dc.DeviceCode); code != "invalid_grant" {
		t.Errorf("second redemption: %q, want invalid_grant", code)
	}
	if status, _ := b.approve(dc.UserCode, "approve"); status != http.StatusBadRequest {
		t.Errorf("approving a used code: %d, want 400", status)
	}

	// Expiry: a code nobody approves in 15 minutes is dead.
	old := startDevice(t, f)
	clk.Advance(wharfhttp.DeviceCodeLifetime)
	if status, _ := b.approve(old.UserCode, "approve"); status != http.StatusBadRequest {
		t.Errorf("approving an expired code: %d, want 400", status)
	}
	if code, _ := pollDevice(t, f, old.DeviceCode); code != "expired_token" {
		t.Errorf("polling an expired code: %q, want expired_token", code)
	}

	// Denied.
	denied := startDevice(t, f)
	if status, _ := b.approve(denied.UserCode, "deny"); status != 200 {
		t.Errorf("deny: %d", status)
	}
	if code, _ := pollDevice(t, f, denied.DeviceCode); code != "access_denied" {
		t.Errorf("polling a denied code: %q, want access_denied", code)
	}

	// Approving needs the session's CSRF token.
	other := startDevice(t, f)
	resp, _ = b.postForm("/device", url.Values{"user_code": {other.UserCode}, "decision": {"approve"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("approval without a CSRF token: %d, want 403", resp.StatusCode)
	}
	clk.Advance(time.Minute)
	if code, _ := pollDevice(t, f, other.DeviceCode); code != "authorization_pending" {
		t.Errorf("code after a forged approval: %q", code)
	}
}

func TestRefreshTokenGrant(t *testing.T) {
	f, clk := userFixture(t)
	f.user("alice@team", alicePassword)
	r, err := http.PostForm(f.http.URL+"/oauth2/v2.0/token", url.Values{"grant_type": {"password"}, "username": {"alice@team"}, "password": {alicePassword}})
	must(t, err)
	var first struct {
		RefreshToken string `json:"refresh_token"`
	}
	must(t, json.NewDecoder(r.Body).Decode(&first))
	r.Body.Close()
	refresh := func(rt string) (int, string) {
		r, err := http.PostForm(f.http.URL+"/oauth2/v2.0/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		must(t, err)
		defer r.Body.Close()
		var body struct {
			AccessToken string `json:"access_token"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		return r.StatusCode, body.AccessToken
	}
	clk.Advance(2 * time.Hour) // past the access token's hour
	status, tok := refresh(first.RefreshToken)
	if status != 200 {
		t.Fatalf("refresh: %d", status)
	}
	must(t, f.client(tok).Do(t.Context(), "GET", "/api/v1/me", nil, nil))
	// An access token is no refresh token.
	if status, _ := refresh(tok); status != http.StatusBadRequest {
		t.Errorf("access token as refresh token: %d", status)
	}
	clk.Advance(time.Second)
	must(t, f.db.SetUserPassword(t.Context(), "user-alice", otherHash, false))
	if status, _ := refresh(first.RefreshToken); status != http.StatusBadRequest {
		t.Errorf("refresh after a password reset: %d, want 400", status)
	}
}

// otherHash is a well-formed hash of some other password.
const otherHash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
