package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/wharfml/wharf/atomicfile"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
)

// credentials identify a service principal and the server it belongs to.
type credentials struct {
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
	TenantID     string `json:"tenantId"`
	ServerURL    string `json:"serverUrl,omitempty"`
	// Federated marks a principal that logs in without a secret: each new
	// access token is exchanged for a fresh assertion from the CI
	// environment (federatedAssertion).
	Federated bool `json:"federated,omitempty"`
	// User marks a person's login (wharf login without
	// --service-principal): ClientID is then the user principal name, and
	// RefreshToken buys each new access token.
	User         bool   `json:"user,omitempty"`
	RefreshToken string `json:"refreshToken,omitempty"`
}

// cachedToken is kept on disk (0600) so consecutive CLI calls in a CI script
// do not each run the slow secret verification on the server.
type cachedToken struct {
	AccessToken string    `json:"accessToken"`
	ExpiresOn   time.Time `json:"expiresOn"`
	ClientID    string    `json:"clientId"`
	ServerURL   string    `json:"serverUrl"`
}

// resolveCredentials finds credentials in the order CI systems provide them:
// WHARF_CREDENTIALS (the --sdk-auth JSON), then WHARF_CLIENT_ID /
// WHARF_CLIENT_SECRET / WHARF_TENANT_ID (without the secret: federated,
// the assertion coming from the CI system), then the file `wharf login`
// wrote.
func resolveCredentials(cfg *cliConfig) (*credentials, string, error) {
	if js := os.Getenv("WHARF_CREDENTIALS"); js != "" {
		var c credentials
		if err := json.Unmarshal([]byte(js), &c); err != nil {
			return nil, "", wharf.Errorf(wharf.EINVALID, "WHARF_CREDENTIALS is not valid JSON (expected the output of `wharf ad sp create-for-rbac --sdk-auth`)")
		}
		if c.ClientID == "" || c.ClientSecret == "" {
			return nil, "", wharf.Errorf(wharf.EINVALID, "WHARF_CREDENTIALS lacks clientId or clientSecret")
		}
		return &c, "WHARF_CREDENTIALS", nil
	}
	if id := os.Getenv("WHARF_CLIENT_ID"); id != "" {
		c := &credentials{ClientID: id, ClientSecret: os.Getenv("WHARF_CLIENT_SECRET"), TenantID: os.Getenv("WHARF_TENANT_ID")}
		if c.ClientSecret == "" {
			if _, ok, _ := federatedSource(); !ok {
				return nil, "", wharf.Errorf(wharf.EINVALID, "WHARF_CLIENT_ID is set but neither WHARF_CLIENT_SECRET nor a federated token: "+
					"set WHARF_FEDERATED_TOKEN_FILE, or run in GitHub Actions with `permissions: id-token: write`, in Azure Pipelines with SYSTEM_ACCESSTOKEN, or in GitLab with an id_tokens variable WHARF_ID_TOKEN")
			}
			c.Federated = true
		}
		return c, "environment", nil
	}
	b, err := os.ReadFile(filepath.Join(cfg.dir, "credentials.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", wharf.Errorf(wharf.EUNAUTHENTICATED, "not logged in: run `wharf login` (a person), `wharf login --service-principal -u APP_ID -p SECRET --tenant TENANT`, or set WHARF_CREDENTIALS")
	} else if err != nil {
		return nil, "", err
	}
	var c credentials
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, "", wharf.Errorf(wharf.EINVALID, "%s is corrupt; run `wharf login` again", filepath.Join(cfg.dir, "credentials.json"))
	}
	return &c, "login", nil
}

// serverURL is WHARF_URL, else the URL saved with the credentials or by
// login, else the local default.
func (a *app) serverURL(creds *credentials) string {
	if u := os.Getenv("WHARF_URL"); u != "" {
		return strings.TrimRight(u, "/")
	}
	if creds != nil && creds.ServerURL != "" {
		return strings.TrimRight(creds.ServerURL, "/")
	}
	if a.cfg != nil && a.cfg.URL != "" {
		return strings.TrimRight(a.cfg.URL, "/")
	}
	return defaultURL
}

// tokenSource returns a cached or fresh access token.
type tokenSource struct {
	cfg   *cliConfig
	creds *credentials
	url   string

	mu  sync.Mutex
	tok *cachedToken
}

func (t *tokenSource) path() string { return filepath.Join(t.cfg.dir, "token.json") }

// token reuses a cached token with more than five minutes left, so a token
// never expires in the middle of a command.
func (t *tokenSource) token(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fresh := func(c *cachedToken) bool {
		return c != nil && c.ClientID == t.creds.ClientID && c.ServerURL == t.url && time.Until(c.ExpiresOn) > 5*time.Minute
	}
	if fresh(t.tok) {
		return t.tok.AccessToken, nil
	}
	if b, err := os.ReadFile(t.path()); err == nil {
		var c cachedToken
		if json.Unmarshal(b, &c) == nil && fresh(&c) {
			t.tok = &c
			return c.AccessToken, nil
		}
	}
	tok, exp, err := t.request(ctx)
	if err != nil {
		return "", err
	}
	_ = t.save(&cachedToken{AccessToken: tok, ExpiresOn: exp, ClientID: t.creds.ClientID, ServerURL: t.url})
	return tok, nil
}

// save keeps c as the current token, on disk (0600) for the next command.
func (t *tokenSource) save(c *cachedToken) error {
	t.tok = c
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(t.path(), b, 0o600)
}

// request runs the client-credentials grant with the secret or, for a
// federated principal, with a fresh assertion.
func (t *tokenSource) request(ctx context.Context) (string, time.Time, error) {
	c := t.creds
	if c.User {
		return t.refreshUser(ctx)
	}
	if !c.Federated {
		return wharfhttp.RequestToken(ctx, t.url, c.TenantID, c.ClientID, c.ClientSecret)
	}
	assertion, source, ok, err := federatedAssertion(ctx)
	switch {
	case err != nil:
		return "", time.Time{}, err
	case !ok:
		return "", time.Time{}, wharf.Errorf(wharf.EUNAUTHENTICATED, "the access token of the federated login has expired and this environment offers no fresh federated token; "+
			"run `wharf login --service-principal -u APP_ID --tenant TENANT --federated-token JWT` again, or set WHARF_FEDERATED_TOKEN_FILE")
	}
	tok, exp, err := wharfhttp.RequestTokenWithAssertion(ctx, t.url, c.TenantID, c.ClientID, assertion)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("federated token from %s refused: %w", source, err)
	}
	return tok, exp, nil
}

// client returns an authenticated API client.
func (a *app) client() (*wharfhttp.Client, *tokenSource, error) {
	creds, _, err := resolveCredentials(a.cfg)
	if err != nil {
		return nil, nil, err
	}
	ts := &tokenSource{cfg: a.cfg, creds: creds, url: a.serverURL(creds)}
	return wharfhttp.NewClient(ts.url, ts.token), ts, nil
}
