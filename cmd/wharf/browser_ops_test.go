package main

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/wharfml/wharf/internal/browsertest"
)

// TestBrowserEndpointTestTab sends a Test tab request in a real browser to
// a deployment served by a real Python worker and sees the prediction;
// reveals the endpoint's keys in the page; and checks a Reader is offered
// neither. The operations pages fit a phone's width with every control
// labelled.
func TestBrowserEndpointTestTab(t *testing.T) {
	b := browsertest.Start(t)
	e := newCLIEnv(t)
	f, _ := scoreScriptEndpoint(t, e, 2, 10000)
	for _, u := range []struct{ name, upn, role string }{{"Alice", "alice@team", "Data Scientist"}, {"Rita", "rita@team", "Reader"}} {
		e.ok("ad", "user", "create", "--display-name", u.name, "--user-principal-name", u.upn, "--password", browserPassword)
		e.ok("role", "assignment", "create", "--assignee", u.upn, "--role", u.role, "--scope", "/workspaces/mlw")
	}
	base := e.srv.HTTP.URL
	page := base + "/workspaces/mlw/endpoints/custom"

	p := b.Tab(t)
	signIn(p, base, "alice@team")
	p.Navigate(page + "?tab=test")
	browsertest.Eval[bool](p, `(document.getElementById("request").value = "", true)`)
	p.Do(chromedp.SendKeys(chromedp.ID("request"), `{"data": [2, 4]}`),
		chromedp.Click(chromedp.CSS(`form[action$="/test"] button[type=submit]`)))
	p.WaitFor("the scoring response", `document.getElementById("response")`)
	if got := p.Text("#status"); got != "200 OK" {
		t.Errorf("status shown: %q", got)
	}
	if got := strings.ReplaceAll(p.Text("#response"), ".0", ""); !strings.Contains(got, "[5, 10]") {
		t.Errorf("prediction shown: %q, want [5, 10]", got)
	}
	if lat := p.Text("#latency"); lat == "" {
		t.Error("no latency shown")
	}
	p.Viewport(390, 844)
	p.AssertFits("endpoint test tab at phone width")
	for _, path := range []string{"/endpoints", "/endpoints/custom?tab=logs", "/endpoints/custom?tab=monitoring", "/models", "/models/scaled",
		"/environments", "/environments/host-env", "/batch-endpoints", "/data", "/components", "/computes", "/schedules"} {
		p.Navigate(base + "/workspaces/mlw" + path)
		p.AssertFits(path + " at phone width")
	}

	// The keys stay hidden until revealed, in the page itself.
	p.Viewport(1280, 800)
	p.Navigate(page)
	if strings.Contains(p.Text("main"), f.key) {
		t.Fatal("the endpoint page shows a key before it is revealed")
	}
	p.Do(chromedp.Click(chromedp.CSS(`form[data-reveal-keys] button`)))
	p.WaitFor("the revealed keys", `document.querySelector("#keys dd")`)
	if got := p.Text("#keys"); !strings.Contains(got, "primaryKey") || !strings.Contains(got, f.key) {
		t.Errorf("revealed keys: %q", got)
	}
	if loc := p.Location(); loc != page {
		t.Errorf("revealing the keys left the page for %s", loc)
	}

	r := b.Tab(t)
	signIn(r, base, "rita@team")
	r.Navigate(page + "?tab=test")
	if txt := r.Text("main"); !strings.Contains(txt, "may not score") || browsertest.Eval[bool](r, `!!document.getElementById("request")`) {
		t.Errorf("a Reader is offered the Test tab: %q", txt)
	}
	r.Navigate(page)
	if browsertest.Eval[bool](r, `!!document.querySelector("form[data-reveal-keys], form[action$='/traffic']")`) {
		t.Error("a Reader is offered the key reveal or the traffic form")
	}
}
