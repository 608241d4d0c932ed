package http_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
)

// studioUsers signs in a user per role on ws-a and returns their browsers.
func studioUsers(t *testing.T, f *fixture) map[string]*browser {
	t.Helper()
	f.workspace("ws-a")
	f.workspace("ws-b")
	out := map[string]*browser{}
	for _, u := range []struct{ name, role, scope string }{
		{"owner", wharf.RoleOwner, "/"},
		{"reader", wharf.RoleReader, "/workspaces/ws-a"},
		{"datasci", wharf.RoleDataScientist, "/workspaces/ws-a"},
		{"outsider", wharf.RoleReader, "/workspaces/ws-b"},
	} {
		f.user(u.name+"@team", alicePassword, [2]string{u.role, u.scope})
		b := newBrowser(t, f.http.URL, "", nil)
		b.mustSignIn(u.name+"@team", alicePassword)
		out[u.name] = b
	}
	return out
}

// TestStudioLayout checks the frame every page shares: the navigation to
// every section, the workspace picker listing only readable workspaces,
// the security headers, and that each linked script and stylesheet is
// served.
func TestStudioLayout(t *testing.T) {
	f, _ := userFixture(t)
	users := studioUsers(t, f)
	resp, page := users["reader"].do("GET", "/workspaces/ws-a", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("home: %d\n%s", resp.StatusCode, page)
	}
	for _, sec := range []string{"Jobs", "Experiments", "Models", "Endpoints", "Batch endpoints", "Data", "Environments", "Components", "Compute", "Schedules"} {
		if !strings.Contains(page, ">"+sec+"</a>") {
			t.Errorf("navigation lacks %s", sec)
		}
	}
	if _, ds := users["datasci"].do("GET", "/workspaces/ws-a", nil, nil); strings.Contains(ds, ">Audit</a>") || !strings.Contains(ds, ">Jobs</a>") {
		t.Error("a Data Scientist, who may not read the audit log, is shown it")
	}
	if !strings.Contains(page, `<option value="ws-a" selected>`) || strings.Contains(page, `value="ws-b"`) {
		t.Errorf("picker should offer ws-a, selected, and not ws-b:\n%s", page)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("security headers: CSP %q, X-Frame-Options %q", csp, resp.Header.Get("X-Frame-Options"))
	}
	if regexp.MustCompile(`<script>|<script [^>]*>[^<]|style="`).MatchString(page) {
		t.Error("page has an inline script or style, which the CSP refuses")
	}
	assets := regexp.MustCompile(`(?:src|href)="(/static/[^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(assets) < 2 {
		t.Fatalf("page links %d static files, want the stylesheet and the script", len(assets))
	}
	for _, m := range assets {
		u := strings.ReplaceAll(m[1], "&amp;", "&")
		resp, body := (&browser{t: t, c: http.DefaultClient, base: f.http.URL}).do("GET", u, nil, nil)
		if resp.StatusCode != 200 || len(body) == 0 || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
			t.Errorf("GET %s: %d, %d bytes, Cache-Control %q", u, resp.StatusCode, len(body), resp.Header.Get("Cache-Control"))
		}
	}
	if resp, _ := users["owner"].do("GET", "/workspaces/ws-a", nil, nil); resp.StatusCode != 200 {
		t.Errorf("owner: %d", resp.StatusCode)
	}
	_, page = users["owner"].do("GET", "/workspaces/ws-a", nil, nil)
	if !strings.Contains(page, ">Audit</a>") {
		t.Error("an Owner is not shown the audit log")
	}
	// The landing page lists the workspaces, the picker goes to one.
	_, page = users["owner"].do("GET", "/", nil, nil)
	if !strings.Contains(page, `href="/workspaces/ws-a"`) || !strings.Contains(page, `href="/workspaces/ws-b"`) {
		t.Errorf("landing page does not list both workspaces:\n%s", page)
	}
	if resp, _ := users["owner"].do("GET", "/workspaces?workspace=ws-b", nil, nil); resp.Header.Get("Location") != "/workspaces/ws-b" {
		t.Errorf("picker: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := users["owner"].do("GET", "/workspaces?workspace=..%2Fx", nil, nil); resp.Header.Get("Location") != "/" {
		t.Errorf("picker with a bad name: to %q, want /", resp.Header.Get("Location"))
	}
}

// TestStudioAccess checks who may open a workspace's page: one without a
// role there is refused with an HTML page, one signed out is sent to sign
// in and brought back.
func TestStudioAccess(t *testing.T) {
	f, _ := userFixture(t)
	users := studioUsers(t, f)
	resp, page := users["outsider"].do("GET", "/workspaces/ws-a", nil, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(page, "Forbidden") {
		t.Errorf("outsider: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), page)
	}
	if resp, page := users["reader"].do("GET", "/workspaces/no-such", nil, nil); resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown workspace: %d\n%s", resp.StatusCode, page)
	}
	anon := newBrowser(t, f.http.URL, "", nil)
	resp, _ = anon.do("GET", "/workspaces/ws-a?view=all", nil, nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/signin?next=") {
		t.Fatalf("signed out: %d to %q", resp.StatusCode, loc)
	}
	next, _ := url.ParseQuery(strings.TrimPrefix(loc, "/signin?"))
	_, form := anon.do("GET", loc, nil, nil)
	resp, _ = anon.postForm("/signin", url.Values{"csrf_token": {formToken(t, form)}, "username": {"reader@team"},
		"password": {alicePassword}, "next": {next.Get("next")}})
	if resp.Header.Get("Location") != "/workspaces/ws-a?view=all" {
		t.Errorf("after sign-in: to %q, want the page asked for", resp.Header.Get("Location"))
	}
	// Only studio paths are kept: another host is not.
	for _, bad := range []string{"//evil.example/", "/workspaces\\..\\x", "https://evil.example/"} {
		_, form := anon.do("GET", "/signin", nil, nil)
		resp, _ := anon.postForm("/signin", url.Values{"csrf_token": {formToken(t, form)}, "username": {"reader@team"},
			"password": {alicePassword}, "next": {bad}})
		if resp.Header.Get("Location") != "/" {
			t.Errorf("next=%q: to %q, want /", bad, resp.Header.Get("Location"))
		}
	}
}

// TestStudioHome checks a workspace's home page: its recent jobs with
// their status, its endpoints with health and traffic, and its latest
// model versions.
func TestStudioHome(t *testing.T) {
	f, _ := userFixture(t)
	users := studioUsers(t, f)
	ctx := context.Background()
	must(t, f.db.CreateJobs(ctx, []*wharf.Job{{Workspace: "ws-a", Name: "brave_lion", DisplayName: "train taxi", Type: wharf.JobTypeCommand,
		Status: wharf.JobFailed, ExperimentName: "taxi"}}))
	_, err := f.db.PutOnlineEndpoint(ctx, &wharf.OnlineEndpoint{Workspace: "ws-a", Name: "taxi-online", AuthMode: wharf.AuthModeKey,
		ProvisioningState: "Succeeded", Traffic: map[string]int{}, MirrorTraffic: map[string]int{}, Tags: map[string]string{}})
	must(t, err)
	for _, d := range []string{"blue", "green"} {
		_, err := f.db.PutOnlineDeployment(ctx, &wharf.OnlineDeployment{Workspace: "ws-a", Endpoint: "taxi-online", Name: d,
			Model: "taxi:1", Spec: json.RawMessage(`{}`), ProvisioningState: map[string]string{"blue": "Succeeded", "green": "Failed"}[d]})
		must(t, err)
	}
	_, err = f.db.PutOnlineEndpoint(ctx, &wharf.OnlineEndpoint{Workspace: "ws-a", Name: "taxi-online", AuthMode: wharf.AuthModeKey,
		ProvisioningState: "Succeeded", Traffic: map[string]int{"blue": 90, "green": 10}, MirrorTraffic: map[string]int{}, Tags: map[string]string{}})
	must(t, err)
	must(t, f.db.CreateRegisteredModel(ctx, &wharf.RegisteredModel{Workspace: "ws-a", Name: "taxi-model"}))
	for range 2 {
		must(t, f.db.CreateModelVersion(ctx, &wharf.ModelVersion{Workspace: "ws-a", Name: "taxi-model", Source: "models:/m-1", UserID: "alice"}))
	}
	resp, page := users["reader"].do("GET", "/workspaces/ws-a", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("home: %d\n%s", resp.StatusCode, page)
	}
	for _, want := range []string{
		`<a href="/workspaces/ws-a/jobs/brave_lion">train taxi</a>`, `<span class="status st-failed">Failed</span>`,
		`<a href="/workspaces/ws-a/endpoints/taxi-online">taxi-online</a>`, "blue 90%", "green 10%",
		`<a href="/workspaces/ws-a/models/taxi-model">taxi-model</a></td><td>2</td>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("home lacks %s", want)
		}
	}
	// A deployment taking traffic that failed makes the endpoint unhealthy.
	if !regexp.MustCompile(`taxi-online</a></td>\s*<td><span class="status st-failed">Failed</span>`).MatchString(page) {
		t.Error("the endpoint whose green deployment failed is not shown as Failed")
	}
}
