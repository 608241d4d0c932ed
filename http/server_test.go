package http_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/auth"
	wharfhttp "github.com/wharfml/wharf/http"
)

func postForm(t *testing.T, u string, form url.Values) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// bootstrapOwner runs the first-start bootstrap and returns its credential.
func bootstrapOwner(t *testing.T, f *fixture) wharfhttp.SDKAuth {
	t.Helper()
	path := t.TempDir() + "/owner.json"
	created, err := f.srv.Bootstrap(context.Background(), path)
	if err != nil || !created {
		t.Fatalf("bootstrap: created=%v err=%v", created, err)
	}
	b, err := readFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c wharfhttp.SDKAuth
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTokenEndpoint(t *testing.T) {
	f := newFixture(t)
	owner := bootstrapOwner(t, f)
	// A second bootstrap does nothing: the secret is written once.
	if again, err := f.srv.Bootstrap(context.Background(), t.TempDir()+"/x.json"); err != nil || again {
		t.Fatalf("second bootstrap: created=%v err=%v", again, err)
	}
	tokenURL := f.http.URL + "/" + testTenant + "/oauth2/v2.0/token"

	resp, body := postForm(t, tokenURL, url.Values{"grant_type": {"client_credentials"}, "client_id": {owner.ClientID}, "client_secret": {owner.ClientSecret}, "scope": {"api://wharf/.default"}})
	if resp.StatusCode != 200 || body["token_type"] != "Bearer" {
		t.Fatalf("good secret: %d %v", resp.StatusCode, body)
	}
	tok := body["access_token"].(string)
	claims, err := f.issuer.Verify(tok, wharfhttp.APIAudience)
	if err != nil || claims.AppID != owner.ClientID || claims.TenantID != testTenant {
		t.Fatalf("issued token: %+v %v", claims, err)
	}
	// The token works on the API.
	var me map[string]any
	if err := f.client(tok).Do(context.Background(), "GET", "/api/v1/me", nil, &me); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"wrong secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {owner.ClientID}, "client_secret": {owner.ClientSecret + "x"}}, 401, "invalid_client"},
		{"unknown client", url.Values{"grant_type": {"client_credentials"}, "client_id": {"nope"}, "client_secret": {owner.ClientSecret}}, 401, "invalid_client"},
		{"wrong grant", url.Values{"grant_type": {"authorization_code"}, "client_id": {owner.ClientID}, "client_secret": {owner.ClientSecret}}, 400, "unsupported_grant_type"},
		{"no secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {owner.ClientID}}, 400, "invalid_request"},
		{"bad scope", url.Values{"grant_type": {"client_credentials"}, "client_id": {owner.ClientID}, "client_secret": {owner.ClientSecret}, "scope": {"openid"}}, 400, "invalid_scope"},
	}
	for _, c := range cases {
		resp, body := postForm(t, tokenURL, c.form)
		if resp.StatusCode != c.status || body["error"] != c.code {
			t.Errorf("%s: got %d %v, want %d %s", c.name, resp.StatusCode, body["error"], c.status, c.code)
		}
	}
	// Another tenant's path is refused.
	resp, _ = postForm(t, f.http.URL+"/other-tenant/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {owner.ClientID}, "client_secret": {owner.ClientSecret}})
	if resp.StatusCode != 400 {
		t.Errorf("foreign tenant: got %d", resp.StatusCode)
	}
	// No secret ever reaches the log, even for failed attempts.
	if strings.Contains(f.logs.String(), owner.ClientSecret) || strings.Contains(f.logs.String(), owner.ClientSecret[3:20]) {
		t.Fatal("a client secret appeared in the server log")
	}
	if strings.Contains(f.logs.String(), tok) {
		t.Fatal("an access token appeared in the server log")
	}
}

func TestCredentialResetAndAppend(t *testing.T) {
	f := newFixture(t)
	owner := bootstrapOwner(t, f)
	ctx := context.Background()
	tok := f.principal("admin", [2]string{wharf.RoleOwner, "/"})
	c := f.client(tok)
	f.workspace("ws-a")
	var sp wharfhttp.CredentialResponse
	if err := c.Do(ctx, "POST", "/api/v1/servicePrincipals", map[string]any{"displayName": "ci-bot", "role": "Data Scientist", "scopes": []string{"/workspaces/ws-a"}}, &sp); err != nil {
		t.Fatal(err)
	}
	if sp.Password == "" || sp.Tenant != testTenant || sp.AppID == "" {
		t.Fatalf("create-for-rbac response: %+v", sp)
	}
	login := func(secret string) int {
		resp, _ := postForm(t, f.http.URL+"/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {sp.AppID}, "client_secret": {secret}})
		return resp.StatusCode
	}
	if login(sp.Password) != 200 {
		t.Fatal("new principal cannot log in")
	}
	// --append keeps the old secret working.
	var second wharfhttp.CredentialResponse
	if err := c.Do(ctx, "POST", "/api/v1/servicePrincipals/"+sp.AppID+"/credentials", map[string]any{"append": true}, &second); err != nil {
		t.Fatal(err)
	}
	if login(sp.Password) != 200 || login(second.Password) != 200 {
		t.Fatal("after append both secrets must work")
	}
	// A reset without --append revokes every earlier secret at once.
	var third wharfhttp.CredentialResponse
	if err := c.Do(ctx, "POST", "/api/v1/servicePrincipals/"+sp.AppID+"/credentials", map[string]any{}, &third); err != nil {
		t.Fatal(err)
	}
	if login(sp.Password) != 401 || login(second.Password) != 401 || login(third.Password) != 200 {
		t.Fatal("reset must replace the earlier secrets")
	}
	// The role assignment was created at the requested scope.
	var as []wharf.RoleAssignment
	if err := c.Do(ctx, "GET", "/api/v1/workspaces/ws-a/roleAssignments?assignee=ci-bot", nil, &as); err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].RoleName != wharf.RoleDataScientist {
		t.Fatalf("assignments: %+v", as)
	}
	// Secrets are stored only as argon2id hashes.
	creds, err := f.db.ListCredentials(ctx, sp.AppID)
	if err != nil || len(creds) != 1 {
		t.Fatalf("credentials: %v %v", creds, err)
	}
	if !strings.HasPrefix(creds[0].SecretHash, "$argon2id$") || strings.Contains(creds[0].SecretHash, third.Password) {
		t.Fatalf("stored hash is not an argon2id hash: %q", creds[0].SecretHash)
	}
	_ = owner
}

func TestExpiredTamperedAndOrphanTokens(t *testing.T) {
	f := newFixture(t)
	f.workspace("ws-a")
	good := f.principal("reader", [2]string{wharf.RoleReader, "/"})
	get := func(tok string) int {
		return call(t, f, "GET", "/api/v1/workspaces/ws-a", "", tok)
	}
	if get(good) != 200 {
		t.Fatal("valid token refused")
	}
	// Tampered: flip one character of the payload.
	parts := strings.Split(good, ".")
	p := []byte(parts[1])
	if p[5] == 'A' {
		p[5] = 'B'
	} else {
		p[5] = 'A'
	}
	if get(parts[0]+"."+string(p)+"."+parts[2]) != 401 {
		t.Error("tampered token accepted")
	}
	// Expired: issued two hours ago with a one-hour lifetime.
	old := &auth.Issuer{Issuer: f.issuer.Issuer, Audience: f.issuer.Audience, TTL: time.Hour, Keys: f.issuer.Keys, Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }}
	expired, _, err := old.Issue("app-reader", testTenant, "app-reader", wharfhttp.APIAudience)
	if err != nil {
		t.Fatal(err)
	}
	if get(expired) != 401 {
		t.Error("expired token accepted")
	}
	// Signed by a key the server does not hold.
	k, _ := auth.NewKey(time.Now())
	foreign := &auth.Issuer{Issuer: f.issuer.Issuer, Audience: f.issuer.Audience, TTL: time.Hour, Keys: auth.NewKeyRing(k)}
	forged, _, _ := foreign.Issue("app-reader", testTenant, "app-reader", wharfhttp.APIAudience)
	if get(forged) != 401 {
		t.Error("token from a foreign key accepted")
	}
	// A deleted principal's unexpired token stops working at once.
	if err := f.db.DeleteServicePrincipal(context.Background(), "app-reader"); err != nil {
		t.Fatal(err)
	}
	if get(good) != 401 {
		t.Error("token of a deleted principal accepted")
	}
}

func TestWorkspaceListIsFiltered(t *testing.T) {
	f := newFixture(t)
	f.workspace("ws-a")
	f.workspace("ws-b")
	tok := f.principal("ds", [2]string{wharf.RoleDataScientist, "/workspaces/ws-b"})
	var list []map[string]any
	if err := f.client(tok).Do(context.Background(), "GET", "/api/v1/workspaces", nil, &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0]["name"] != "ws-b" {
		t.Fatalf("a ws-b principal sees %v", list)
	}
}

func TestRoleAssignmentScopeRules(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.workspace("ws-a")
	root := f.principal("root", [2]string{wharf.RoleOwner, "/"})
	wsOwner := f.principal("wsowner", [2]string{wharf.RoleOwner, "/workspaces/ws-a"})
	f.principal("target")

	// A workspace Owner cannot delete a server-scope assignment through
	// its workspace's path, even knowing the id.
	var all []wharf.RoleAssignment
	if err := f.client(root).Do(ctx, "GET", "/api/v1/roleAssignments", nil, &all); err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].PrincipalID != "app-root" {
		t.Fatalf("server-scope assignments: %+v", all)
	}
	err := f.client(wsOwner).Do(ctx, "DELETE", "/api/v1/workspaces/ws-a/roleAssignments/"+all[0].ID, nil, nil)
	if wharf.ErrorCode(err) != wharf.ENOTFOUND {
		t.Fatalf("cross-scope delete: %v", err)
	}
	// The workspace Owner can grant inside its workspace ...
	if err := f.client(wsOwner).Do(ctx, "POST", "/api/v1/workspaces/ws-a/roleAssignments", map[string]string{"assignee": "target", "role": "reader"}, nil); err != nil {
		t.Fatal(err)
	}
	// ... idempotently ...
	var again wharf.RoleAssignment
	if err := f.client(wsOwner).Do(ctx, "POST", "/api/v1/workspaces/ws-a/roleAssignments", map[string]string{"assignee": "target", "role": "Reader"}, &again); err != nil {
		t.Fatal(err)
	}
	// ... but not on a workspace that does not exist.
	err = f.client(root).Do(ctx, "POST", "/api/v1/workspaces/ghost/roleAssignments", map[string]string{"assignee": "target", "role": "Reader"}, nil)
	if wharf.ErrorCode(err) != wharf.ENOTFOUND {
		t.Fatalf("grant on a missing workspace: %v", err)
	}
	// An unknown role is a 400 naming the built-in roles.
	err = f.client(root).Do(ctx, "POST", "/api/v1/roleAssignments", map[string]string{"assignee": "target", "role": "Superuser"}, nil)
	if wharf.ErrorCode(err) != wharf.EINVALID || !strings.Contains(err.Error(), "Data Scientist") {
		t.Fatalf("unknown role: %v", err)
	}
	// The last server Owner cannot be removed.
	err = f.client(root).Do(ctx, "DELETE", "/api/v1/roleAssignments/"+all[0].ID, nil, nil)
	if wharf.ErrorCode(err) != wharf.ECONFLICT {
		t.Fatalf("removing the last owner: %v", err)
	}
	err = f.client(root).Do(ctx, "DELETE", "/api/v1/servicePrincipals/root", nil, nil)
	if wharf.ErrorCode(err) != wharf.ECONFLICT {
		t.Fatalf("deleting the last owner principal: %v", err)
	}
}

func TestAuditLog(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.workspace("ws-a")
	admin := f.principal("admin", [2]string{wharf.RoleOwner, "/"})
	reader := f.principal("reader", [2]string{wharf.RoleReader, "/"})
	if err := f.client(admin).Do(ctx, "PUT", "/api/v1/workspaces/ws-a/computes/c1", map[string]any{"max_instances": 2}, nil); err != nil {
		t.Fatal(err)
	}
	_ = f.client(reader).Do(ctx, "DELETE", "/api/v1/workspaces/ws-a/computes/c1", nil, nil)
	_ = f.client(admin).Do(ctx, "PUT", "/api/v1/workspaces/ws-a/computes/c2", map[string]any{"min_instances": 5, "max_instances": 1}, nil)
	if err := f.client(admin).Do(ctx, "GET", "/api/v1/workspaces/ws-a/computes", nil, nil); err != nil {
		t.Fatal(err)
	}
	var events []wharf.AuditEvent
	if err := f.client(reader).Do(ctx, "GET", "/api/v1/auditEvents", nil, &events); err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 {
		t.Fatalf("want 3 audited calls (reads are not audited), got %d: %+v", len(events), events)
	}
	// Newest first.
	want := []struct{ who, action, outcome string }{
		{"app-admin", wharf.ActionComputeWrite, wharf.AuditFailed},
		{"app-reader", wharf.ActionComputeDelete, wharf.AuditDenied},
		{"app-admin", wharf.ActionComputeWrite, wharf.AuditSucceeded},
	}
	for i, w := range want {
		e := events[i]
		if e.PrincipalID != w.who || e.Action != w.action || e.Outcome != w.outcome || e.Scope != "/workspaces/ws-a" || e.Time.IsZero() {
			t.Errorf("event %d = %+v, want %+v", i, e, w)
		}
	}
	if events[1].Status != 403 || events[0].Status != 400 {
		t.Errorf("statuses: %d %d", events[1].Status, events[0].Status)
	}
}

func TestBadRequestsNameTheField(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.workspace("ws-a")
	c := f.client(f.principal("admin", [2]string{wharf.RoleOwner, "/"}))
	cases := []struct {
		body  string
		field string
	}{
		{`{"max_instnces": 2}`, "max_instnces"},
		{`{"max_instances": "two"}`, "max_instances"},
		{`{"min_instances": 3, "max_instances": 1}`, "min_instances"},
		{`{"tier": "platinum"}`, "tier"},
	}
	for _, cs := range cases {
		req, _ := http.NewRequestWithContext(ctx, "PUT", f.http.URL+"/api/v1/workspaces/ws-a/computes/c1", strings.NewReader(cs.body))
		tok, _ := c.Token(ctx)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var er wharfhttp.ErrorResponse
		if err := json.Unmarshal(b, &er); err != nil {
			t.Fatalf("%s: body %s", cs.body, b)
		}
		if resp.StatusCode != 400 || er.Error.Code != wharf.EINVALID || er.Error.Field != cs.field {
			t.Errorf("%s: got %d %+v, want 400 naming %s", cs.body, resp.StatusCode, er.Error, cs.field)
		}
	}
	// Nothing was stored by the failed calls.
	if _, err := f.db.FindCompute(ctx, "ws-a", "c1"); !wharf.IsNotFound(err) {
		t.Fatalf("a rejected request stored something: %v", err)
	}
}

func TestSecretsAreSealedAndVersioned(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.workspace("ws-a")
	c := f.client(f.principal("admin", [2]string{wharf.RoleOwner, "/"}))
	ds := f.client(f.principal("ds", [2]string{wharf.RoleDataScientist, "/workspaces/ws-a"}))
	if err := ds.Do(ctx, "PUT", "/api/v1/workspaces/ws-a/secrets/db-password", map[string]string{"value": "first-value"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "PUT", "/api/v1/workspaces/ws-a/secrets/db-password", map[string]string{"value": "second-value"}, nil); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := c.Do(ctx, "GET", "/api/v1/workspaces/ws-a/secrets/db-password", nil, &got); err != nil {
		t.Fatal(err)
	}
	if got["value"] != "second-value" {
		t.Fatalf("newest value: %v", got)
	}
	var versions []map[string]any
	if err := ds.Do(ctx, "GET", "/api/v1/workspaces/ws-a/secrets/db-password/versions", nil, &versions); err != nil {
		t.Fatal(err)
	}
	if len(versions) != 2 || versions[0]["value"] != nil {
		t.Fatalf("versions must list both, without values: %v", versions)
	}
	// A Data Scientist may write secrets but not read their values.
	if err := ds.Do(ctx, "GET", "/api/v1/workspaces/ws-a/secrets/db-password", nil, nil); wharf.ErrorCode(err) != wharf.EFORBIDDEN {
		t.Fatalf("data scientist read a secret value: %v", err)
	}
	if strings.Contains(f.logs.String(), "second-value") {
		t.Fatal("secret value in the log")
	}
}

func TestHealthAndMetrics(t *testing.T) {
	f := newFixture(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		if st := call(t, f, "GET", p, "", ""); st != 200 {
			t.Errorf("%s: %d", p, st)
		}
	}
	f.workspace("ws-a")
	_ = call(t, f, "GET", "/api/v1/workspaces/ws-a", "", f.principal("r", [2]string{wharf.RoleReader, "/"}))
	resp, err := http.Get(f.http.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `wharf_http_requests_total{code="200",route="GET /api/v1/workspaces/{workspace}"} 1`
	if !strings.Contains(string(b), want) {
		t.Fatalf("metrics lack %q", want)
	}
	// Readiness follows the store: a closed database is not ready.
	f.db.Close()
	if st := call(t, f, "GET", "/readyz", "", ""); st != 503 {
		t.Errorf("readyz with a closed store: %d", st)
	}
}
