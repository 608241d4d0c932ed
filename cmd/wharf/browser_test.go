package main

import (
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/internal/browsertest"
	"github.com/wharfml/wharf/internal/oidctest"
)

// The studio in a real browser: headless Chromium (internal/browsertest)
// against a real `wharf server` on loopback.

const browserPassword = "a long browser passphrase"

// browserEnv is a server with a workspace and users for browser tests:
// alice (Data Scientist in ws) and rita (Reader in ws).
func browserEnv(t *testing.T, set func(o *serverOptions)) *cliEnv {
	t.Helper()
	e := newCLIEnvWith(t, set)
	e.ok("ml", "workspace", "create", "-n", "ws")
	for _, u := range []struct{ name, upn, role string }{{"Alice", "alice@team", "Data Scientist"}, {"Rita", "rita@team", "Reader"}} {
		e.ok("ad", "user", "create", "--display-name", u.name, "--user-principal-name", u.upn, "--password", browserPassword)
		e.ok("role", "assignment", "create", "--assignee", u.upn, "--role", u.role, "--scope", "/workspaces/ws")
	}
	return e
}

// signIn fills in the sign-in form and waits for the landing page.
func signIn(p *browsertest.Tab, base, upn string) {
	p.Navigate(base + "/signin")
	p.Do(chromedp.SendKeys(chromedp.ID("username"), upn), chromedp.SendKeys(chromedp.ID("password"), browserPassword),
		chromedp.Click(chromedp.CSS(`form[action="/signin"] button[type=submit]`)))
	p.WaitText("Signed in as")
}

func TestBrowserPasswordSignIn(t *testing.T) {
	b := browsertest.Start(t)
	e := browserEnv(t, func(*serverOptions) {})
	base := e.srv.HTTP.URL
	p := b.Tab(t)

	// A page that needs a session sends the browser to sign in, and back.
	p.Navigate(base + "/workspaces/ws")
	if loc := p.Location(); !strings.HasPrefix(loc, base+"/signin?next=") {
		t.Fatalf("a signed-out browser at /workspaces/ws is at %s", loc)
	}
	p.Do(chromedp.SendKeys(chromedp.ID("username"), "alice@team"), chromedp.SendKeys(chromedp.ID("password"), "not her password!"),
		chromedp.Click(chromedp.CSS(`form[action="/signin"] button[type=submit]`)))
	p.WaitFor("the sign-in error", `document.querySelector("[role=alert]")`)
	if msg := p.Text("[role=alert]"); !strings.Contains(msg, "Incorrect user name or password") {
		t.Errorf("wrong password: the page says %q", msg)
	}
	if got := browsertest.Eval[string](p, `document.getElementById("username").value`); got != "alice@team" {
		t.Errorf("the user name was not kept after a failed sign-in: %q", got)
	}

	p.Do(chromedp.SendKeys(chromedp.ID("password"), browserPassword), chromedp.Click(chromedp.CSS(`form[action="/signin"] button[type=submit]`)))
	p.WaitText("alice@team")
	if loc := p.Location(); loc != base+"/workspaces/ws" {
		t.Errorf("after sign-in the browser is at %s, want the page it asked for", loc)
	}
	// The session cookie is HttpOnly: the page's scripts cannot read it.
	if c := browsertest.Eval[string](p, "document.cookie"); strings.Contains(c, wharfhttp.SessionCookieName) {
		t.Errorf("scripts can read the session cookie: %q", c)
	}

	// Signing out ends the session: the studio asks for a sign-in again.
	p.Do(chromedp.Click(chromedp.CSS(`form[action="/signout"] button`)))
	p.WaitFor("the sign-in form", `document.getElementById("password")`)
	p.Navigate(base + "/workspaces/ws")
	if loc := p.Location(); !strings.HasPrefix(loc, base+"/signin") {
		t.Errorf("after sign-out /workspaces/ws shows %s", loc)
	}
}

// freePort returns a loopback port nothing listens on now, for a server
// whose address must be known before it starts (its provider's redirect
// URI names it).
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func TestBrowserSingleSignOn(t *testing.T) {
	b := browsertest.Start(t)
	addr := "127.0.0.1:" + freePort(t)
	base := "http://" + addr
	idp := oidctest.Start(t, []string{base + wharfhttp.SSOCallbackPath}, oidctest.Accounts{
		"alice":   {"email": "alice@team", "email_verified": true, "name": "Alice"},
		"mallory": {"preferred_username": "mallory@elsewhere"},
	})
	t.Setenv(ssoSecretEnv, oidctest.ClientSecret)
	browserEnv(t, func(o *serverOptions) {
		o.addr, o.ssoIssuer, o.ssoClientID, o.ssoName = addr, idp.Issuer, oidctest.ClientID, "Test IdP"
	})

	// through signs in at the provider as login, as a person would.
	through := func(p *browsertest.Tab, login string) {
		p.Navigate(base + "/workspaces/ws")
		p.Do(chromedp.Click(chromedp.ID("sso")))
		p.WaitFor("the provider's login form", `document.querySelector("input[name=login]")`)
		if loc := p.Location(); !strings.HasPrefix(loc, idp.Issuer+"/") {
			t.Fatalf("the single sign-on link led to %s", loc)
		}
		p.Do(chromedp.SendKeys(chromedp.CSS("input[name=login]"), login), chromedp.SendKeys(chromedp.CSS("input[name=password]"), "any"),
			chromedp.Click(chromedp.CSS("button[type=submit]")))
		p.WaitFor("the provider's consent form", `document.querySelector("input[name=prompt][value=consent]")`)
		p.Do(chromedp.Click(chromedp.CSS("button[type=submit]")))
		p.WaitFor("the way back to Wharf", `location.href.startsWith(`+strconv.Quote(base)+`)`)
	}

	p := b.Tab(t)
	through(p, "alice")
	p.WaitText("alice@team")
	if loc := p.Location(); loc != base+"/workspaces/ws" {
		t.Errorf("after single sign-on the browser is at %s, want the page it asked for", loc)
	}

	p2 := b.Tab(t)
	through(p2, "mallory")
	p2.WaitText("administrator must create the user")
	p2.Navigate(base + "/workspaces/ws")
	if loc := p2.Location(); !strings.HasPrefix(loc, base+"/signin") {
		t.Errorf("an unknown identity reached %s", loc)
	}
}

// TestBrowserSignInByKeyboardAndOnSmallScreens: the sign-in page (with its
// single sign-on link) and the landing page fit a 1280x800 window and a
// 390x844 phone without sideways scrolling, name every control, and the
// sign-in works with the keyboard alone.
func TestBrowserSignInByKeyboardAndOnSmallScreens(t *testing.T) {
	b := browsertest.Start(t)
	t.Setenv(ssoSecretEnv, "unused")
	// The provider is only linked to here, never called.
	e := browserEnv(t, func(o *serverOptions) {
		o.ssoIssuer, o.ssoClientID, o.ssoName = "https://idp.invalid", "wharf", "Contoso Identity"
	})
	base := e.srv.HTTP.URL
	for _, vp := range []struct {
		name string
		w, h int64
	}{{"desktop", 1280, 800}, {"phone", 390, 844}} {
		t.Run(vp.name, func(t *testing.T) {
			p := b.Tab(t)
			p.Viewport(vp.w, vp.h)
			p.Navigate(base + "/signin")
			p.AssertFits("signin")

			// Tab order: user name, password, Sign in, single sign-on.
			var order []string
			for range 4 {
				p.Press("\t")
				order = append(order, p.Focused())
			}
			if got := strings.Join(order, ","); got != "username,password,button:Sign in,sso" {
				t.Errorf("Tab order on the sign-in page: %s", got)
			}
			if style := browsertest.Eval[string](p, `getComputedStyle(document.activeElement).outlineStyle`); style == "none" {
				t.Error("the focused control shows no focus outline")
			}

			p.Navigate(base + "/signin")
			p.Press("\t")
			p.Press("rita@team")
			p.Press("\t")
			p.Press(browserPassword)
			p.Press("\r")
			p.WaitText("Signed in as")
			p.AssertFits("home")
			p.Navigate(base + "/workspaces/ws")
			p.AssertFits("workspace")
		})
	}
}

// TestBrowserPipelineGraphAndReaderCannotCancel: a Data Scientist watches a
// pipeline's graph follow the run, step by step, to Completed without
// reloading; a Reader on the same job sees no Cancel button, and a Cancel
// posted from the Reader's session (with its valid CSRF token) is refused
// and cancels nothing.
func TestBrowserPipelineGraphAndReaderCannotCancel(t *testing.T) {
	b := browsertest.Start(t)
	// The steps wait for gates the test opens, in a folder their
	// sandboxes see.
	dir := t.TempDir()
	e := browserEnv(t, func(o *serverOptions) { o.stepReadOnly = append(o.stepReadOnly, dir) })
	base := e.srv.HTTP.URL
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "ws")
	gate1, gate2 := filepath.Join(dir, "gate1"), filepath.Join(dir, "gate2")
	job := writeFile(t, dir, "pipeline.yml", `type: pipeline
settings:
  default_compute: azureml:cpu-cluster
jobs:
  prep:
    command: while [ ! -e `+gate1+` ]; do sleep 0.1; done; echo rows > ${{outputs.out}}/rows.txt
    environment:
      image: python:3.11
    outputs:
      out:
  train:
    command: while [ ! -e `+gate2+` ]; do sleep 0.1; done; cp ${{inputs.data}}/rows.txt ${{outputs.model}}/
    environment:
      image: python:3.11
    inputs:
      data: ${{parent.jobs.prep.outputs.out}}
    outputs:
      model:
`)
	name := strings.TrimSpace(e.ok("ml", "job", "create", "--file", job, "-w", "ws", "--query", "name", "-o", "tsv"))
	page := base + "/workspaces/ws/jobs/" + name
	nodeStatus := func(p *browsertest.Tab, step string) string {
		return browsertest.Eval[string](p, `(() => { const n = document.querySelector('#dag [data-step="`+step+`"]');
			return n ? n.getAttribute("class") : "missing"; })()`)
	}

	alice := b.Tab(t)
	signIn(alice, base, "alice@team")
	alice.Navigate(page)
	if n := browsertest.Eval[int](alice, `document.querySelectorAll("#dag a.node").length`); n != 2 {
		t.Fatalf("the graph has %d nodes, want 2 (prep, train)", n)
	}
	if n := browsertest.Eval[int](alice, `document.querySelectorAll("#dag path.edge").length`); n != 1 {
		t.Errorf("the graph has %d edges, want 1 (prep -> train)", n)
	}
	if c := nodeStatus(alice, "train"); strings.Contains(c, "st-completed") {
		t.Fatalf("train is completed before it could run: %s", c)
	}
	cancelButton := `[...document.querySelectorAll("form[action$='/cancel'] button")].length`
	if n := browsertest.Eval[int](alice, cancelButton); n != 1 {
		t.Errorf("a Data Scientist sees %d Cancel buttons on a running job, want 1", n)
	}

	rita := b.Tab(t)
	signIn(rita, base, "rita@team")
	rita.Navigate(page)
	rita.WaitFor("the graph", `document.querySelector("#dag")`)
	if n := browsertest.Eval[int](rita, cancelButton); n != 0 {
		t.Errorf("a Reader sees %d Cancel buttons", n)
	}
	forged := browsertest.Await[int](rita, `(async () => {
		const body = new URLSearchParams({csrf_token: document.querySelector('meta[name="csrf-token"]').content});
		const r = await fetch(location.pathname + "/cancel", {method: "POST", body, redirect: "manual"});
		return r.status; })()`)
	if forged != http.StatusForbidden {
		t.Errorf("a Reader's forged Cancel: %d, want 403", forged)
	}

	// The page follows the run without a reload: a marker set now
	// survives while prep's node turns Completed.
	browsertest.Eval[bool](alice, `window.wharfTestMarker = true`)
	if err := os.WriteFile(gate1, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	alice.WaitFor("prep Completed in the graph", `document.querySelector('#dag [data-step="prep"]').classList.contains("st-completed")`)
	if !browsertest.Eval[bool](alice, `window.wharfTestMarker === true`) {
		t.Error("the page reloaded to show prep's progress instead of updating the graph")
	}
	if c := nodeStatus(alice, "train"); strings.Contains(c, "st-completed") {
		t.Errorf("train completed before its gate opened: %s", c)
	}
	if err := os.WriteFile(gate2, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// At the end the page reloads (outputs and buttons change), which
	// clears the marker.
	alice.WaitFor("the job Completed, reloaded", `window.wharfTestMarker === undefined && document.readyState === "complete" &&
		document.getElementById("job-status").textContent.trim() === "Completed" &&
		[...document.querySelectorAll("#dag a.node")].every(n => n.classList.contains("st-completed"))`)
	alice.Screenshot("completed")
	if n := browsertest.Eval[int](alice, cancelButton); n != 0 {
		t.Errorf("a completed job still offers %d Cancel buttons", n)
	}
	// The Reader's refused Cancel changed nothing: the job completed.
	if out := e.ok("ml", "job", "show", "-n", name, "-w", "ws", "--query", "status", "-o", "tsv"); strings.TrimSpace(out) != "Completed" {
		t.Errorf("job status %q, want Completed", out)
	}
}

// TestBrowserMetricChart: a run's metric history, logged through MLflow's
// REST API from the signed-in browser itself (session cookie and CSRF
// header), opens as a chart on the run page; the pointer over the plot
// shows a value, and the log-scale switch redraws it.
func TestBrowserMetricChart(t *testing.T) {
	b := browsertest.Start(t)
	e := browserEnv(t, func(*serverOptions) {})
	base := e.srv.HTTP.URL
	p := b.Tab(t)
	signIn(p, base, "alice@team")
	runID := browsertest.Await[string](p, `(async () => {
		const api = "/mlflow/v1.0/workspaces/ws/api/2.0/mlflow/";
		const csrf = document.querySelector('meta[name="csrf-token"]').content;
		const call = async (path, body) => {
			const r = await fetch(api + path, {method: "POST", body: JSON.stringify(body),
				headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf}});
			if (!r.ok) throw new Error(path + ": " + r.status + " " + await r.text());
			return r.json();
		};
		const exp = await call("experiments/create", {name: "charts"});
		const run = await call("runs/create", {experiment_id: exp.experiment_id, run_name: "curve", start_time: Date.now()});
		const id = run.run.info.run_id;
		const metrics = [];
		for (let i = 0; i < 200; i++) metrics.push({key: "loss", value: 10 / (i + 1), timestamp: 1700000000000 + i * 1000, step: i});
		await call("runs/log-batch", {run_id: id, metrics});
		return id; })()`)

	p.Navigate(base + "/workspaces/ws/runs/" + runID)
	p.WaitFor("the loss chart drawn", `document.querySelector('figure.chart .chart-plot canvas') &&
		[...document.querySelectorAll("figure.chart h3")].some(h => h.textContent.trim() === "loss")`)
	// The history the chart drew from: every point of a short one.
	points := browsertest.Await[int](p, `fetch(document.querySelector("figure.chart").dataset.src, {headers: {Accept: "application/json"}})
		.then(r => r.json()).then(d => d.runs[0].values.length)`)
	if points != 200 {
		t.Errorf("the chart's history has %d points, want 200", points)
	}
	box := browsertest.Eval[[]float64](p, `(() => { const r = document.querySelector("figure.chart .u-over").getBoundingClientRect();
		return [r.left + r.width / 2, r.top + r.height / 2]; })()`)
	p.Do(chromedp.MouseEvent("mouseMoved", box[0], box[1]))
	p.WaitFor("a value under the pointer", `[...document.querySelectorAll("figure.chart .u-legend .u-series .u-value")].some(v => /\d/.test(v.textContent))`)
	// The legend shows the point under the pointer: step i, loss 10/(i+1).
	shown := browsertest.Eval[[]float64](p, `[...document.querySelectorAll("figure.chart .u-legend .u-series .u-value")].map(v => parseFloat(v.textContent))`)
	if len(shown) != 2 || math.Abs(shown[1]-10/(shown[0]+1)) > 1e-3*shown[1] {
		t.Errorf("values under the pointer %v, want [step, 10/(step+1)]", shown)
	}
	p.Screenshot("hover")
	p.Do(chromedp.Click(chromedp.CSS("figure.chart input[data-log]")))
	p.WaitFor("the log-scale redraw", `document.querySelector("figure.chart input[data-log]").checked && document.querySelector('figure.chart .chart-plot canvas')`)
	if note := p.Text("figure.chart .chart-note"); strings.Contains(note, "could not be loaded") {
		t.Errorf("chart note: %q", note)
	}
}
