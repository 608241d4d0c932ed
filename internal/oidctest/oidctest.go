// Package oidctest runs a real OpenID Connect provider for tests of single
// sign-on: panva's oidc-provider on Node.js (testdata/provider.mjs), which
// scripts/test installs into .tools/ and names in WHARF_TEST_OIDC_PROVIDER.
// Nothing in it is a fake: the provider discovers, authenticates, asks for
// consent, issues codes, enforces PKCE and signs ID tokens as it would in
// production.
package oidctest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// EnvProvider names the oidc-provider package folder.
const EnvProvider = "WHARF_TEST_OIDC_PROVIDER"

// Client credentials every provider started here knows.
const (
	ClientID     = "wharf"
	ClientSecret = "wharf-test-client-secret"
)

// Provider is a running provider.
type Provider struct {
	// Issuer is its issuer URL, http://127.0.0.1:PORT.
	Issuer string
}

// Accounts are the provider's accounts by login, each with the claims it
// asserts (email, email_verified, preferred_username, name).
type Accounts map[string]map[string]any

// Start runs a provider whose one client (ClientID, ClientSecret) may
// redirect to redirectURIs, until the test ends. Without Node.js or the
// package it skips the test, and fails it under CI, whose machines have
// both.
func Start(t testing.TB, redirectURIs []string, accounts Accounts) *Provider {
	t.Helper()
	dir := os.Getenv(EnvProvider)
	node, err := exec.LookPath("node")
	if dir == "" || err != nil {
		msg := fmt.Sprintf("no OpenID Connect provider: set %s to the oidc-provider package (scripts/test installs it) and install Node.js", EnvProvider)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	_, self, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(self), "testdata", "provider.mjs")
	cfg, err := json.Marshal(map[string]any{
		"clients": []map[string]any{{
			"client_id": ClientID, "client_secret": ClientSecret, "redirect_uris": redirectURIs,
			"grant_types": []string{"authorization_code"}, "response_types": []string{"code"},
		}},
		"accounts": accounts,
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, script)
	cmd.Env = append(os.Environ(), "OIDC_PROVIDER_DIR="+dir, "OIDC_TEST_CONFIG="+string(cfg))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			first <- sc.Text()
		}
		close(first)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case issuer, ok := <-first:
		if !ok || !strings.HasPrefix(issuer, "http://127.0.0.1:") {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("the OpenID Connect provider did not start: %q\n%s", issuer, stderr.String())
		}
		return &Provider{Issuer: issuer}
	case <-time.After(60 * time.Second):
		t.Fatalf("the OpenID Connect provider printed no issuer within a minute\n%s", stderr.String())
	}
	return nil
}

var (
	formRE   = regexp.MustCompile(`(?s)<form[^>]*action="([^"]+)"[^>]*method="post"[^>]*>(.*?)</form>`)
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)
)

// Authorize follows a sign-in from the relying party's start URL through
// the provider as a person would: it signs in as login on the provider's
// form, consents, and returns the URL the provider sends the browser back
// to, without visiting it. c's cookie jar plays the browser's; c's own
// redirect policy is not used.
func (p *Provider) Authorize(c *http.Client, start, login string) (string, error) {
	step := *c
	step.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, err := http.NewRequest("GET", start, nil)
	if err != nil {
		return "", err
	}
	for range 20 {
		resp, err := step.Do(req)
		if err != nil {
			return "", err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return "", err
		}
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			next, err := req.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				return "", err
			}
			if !strings.HasPrefix(next.String(), p.Issuer+"/") && req.URL.Host == hostOf(p.Issuer) {
				return next.String(), nil
			}
			if req, err = http.NewRequest("GET", next.String(), nil); err != nil {
				return "", err
			}
		case resp.StatusCode == 200 && req.URL.Host == hostOf(p.Issuer):
			m := formRE.FindStringSubmatch(string(body))
			if m == nil {
				return "", fmt.Errorf("the provider's page at %s has no form:\n%s", req.URL, body)
			}
			form := url.Values{}
			for _, h := range hiddenRE.FindAllStringSubmatch(m[2], -1) {
				form.Set(h[1], h[2])
			}
			if strings.Contains(m[2], `name="login"`) {
				form.Set("login", login)
				form.Set("password", "any")
			}
			action, err := req.URL.Parse(m[1])
			if err != nil {
				return "", err
			}
			if req, err = http.NewRequest("POST", action.String(), strings.NewReader(form.Encode())); err != nil {
				return "", err
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		default:
			return "", fmt.Errorf("%s %s answered %d:\n%s", req.Method, req.URL, resp.StatusCode, body)
		}
	}
	return "", errors.New("the sign-in did not come back from the provider within 20 steps")
}

func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Host
}
