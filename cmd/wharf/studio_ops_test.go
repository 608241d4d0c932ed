package main

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestStudioTestTabScoresARealDeployment sends the endpoint page's Test
// tab request as a signed-in Data Scientist: the server forwards it, with
// the endpoint's key, to a deployment served by a real Python worker, and
// the page shows the prediction, the status and the latency, never the
// key; the monitoring tab counts it. A Reader is not offered the tab's form and is refused its POST.
func TestStudioTestTabScoresARealDeployment(t *testing.T) {
	e := newCLIEnv(t)
	f, _ := scoreScriptEndpoint(t, e, 2, 10000)
	e.ok("ad", "user", "create", "--display-name", "Dana", "--user-principal-name", "dana@team", "--password", danaPassword)
	e.ok("role", "assignment", "create", "--assignee", "dana@team", "--role", "Data Scientist", "--scope", "/workspaces/mlw")
	e.ok("ad", "user", "create", "--display-name", "Rita", "--user-principal-name", "rita@team", "--password", danaPassword)
	e.ok("role", "assignment", "create", "--assignee", "rita@team", "--role", "Reader", "--scope", "/workspaces/mlw")
	base := e.srv.HTTP.URL
	page := base + "/workspaces/mlw/endpoints/custom"

	dana := webSignIn(t, base, "dana@team", danaPassword, "")
	tab := getPage(t, dana, page+"?tab=test")
	if !strings.Contains(tab, `<textarea id="request" name="request"`) || !strings.Contains(tab, `<label for="request">`) {
		t.Fatalf("Test tab has no labelled request editor:\n%s", tab)
	}
	resp, err := dana.PostForm(page+"/test", url.Values{"csrf_token": {formToken(t, tab)}, "request": {`{"data": [2, 4]}`}, "deployment": {""}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	if resp.StatusCode != 200 {
		t.Fatalf("Send: %d\n%s", resp.StatusCode, body)
	}
	// score.py multiplies by the model's weight, 2.5.
	if !strings.Contains(body, `<strong id="status">200 OK</strong>`) || !regexp.MustCompile(`<pre id="response">\[5(\.0)?, 10(\.0)?\]`).MatchString(body) {
		t.Errorf("Test tab response lacks the status or the prediction:\n%s", body)
	}
	if !regexp.MustCompile(`<span id="latency">[0-9.]+(µs|ms|s)</span>`).MatchString(body) {
		t.Errorf("Test tab response lacks the latency:\n%s", body)
	}
	if strings.Contains(body, f.key) {
		t.Error("the endpoint page shows the endpoint's key")
	}
	// Text that is not JSON is refused before anything is sent, and kept
	// in the editor to be fixed.
	resp, err = dana.PostForm(page+"/test", url.Values{"csrf_token": {formToken(t, tab)}, "request": {`not json`}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "The request is not valid JSON.") || !strings.Contains(string(b), "not json</textarea>") {
		t.Errorf("invalid JSON: the page should say so and keep the text:\n%s", b)
	}

	// The monitoring tab counts the request from the endpoint's own series.
	if mon := getPage(t, dana, page+"?tab=monitoring"); !strings.Contains(mon, "Since the deployments started: 1 requests, 0 errors") {
		t.Errorf("monitoring tab does not count the request:\n%s", mon)
	}

	rita := webSignIn(t, base, "rita@team", danaPassword, "")
	tab = getPage(t, rita, page+"?tab=test")
	if strings.Contains(tab, `name="request"`) || !strings.Contains(tab, "may not score") {
		t.Errorf("a Reader is offered the Test tab's form:\n%s", tab)
	}
	csrf := regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`).FindStringSubmatch(tab)
	if csrf == nil {
		t.Fatalf("no CSRF token in the page")
	}
	resp, err = rita.PostForm(page+"/test", url.Values{"csrf_token": {csrf[1]}, "request": {`{"data": [1]}`}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a Reader's Test tab request: %d, want 403", resp.StatusCode)
	}
}
