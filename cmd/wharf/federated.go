package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/wharfml/wharf"
)

// federatedAssertion returns a fresh assertion (an OIDC token proving the
// CI job's identity) from the first source the environment offers, and
// the source's name. Each call asks anew: CI tokens live minutes, so one
// is never kept. ok is false when no source is configured.
//
// Sources, in order: a token file (WHARF_FEDERATED_TOKEN_FILE,
// AZURE_FEDERATED_TOKEN_FILE, as Kubernetes projects one); GitHub Actions'
// token request endpoint; Azure Pipelines' OIDC request endpoint; a GitLab
// `id_tokens` variable named WHARF_ID_TOKEN.
func federatedAssertion(ctx context.Context) (assertion, source string, ok bool, err error) {
	source, ok, fetch := federatedSource()
	if !ok {
		return "", "", false, nil
	}
	assertion, err = fetch(ctx)
	return assertion, source, true, err
}

// federatedSource finds the environment's source of assertions without
// asking it for one; fetch asks.
func federatedSource() (source string, ok bool, fetch func(context.Context) (string, error)) {
	fail := func(err error) func(context.Context) (string, error) {
		return func(context.Context) (string, error) { return "", err }
	}
	for _, v := range []string{"WHARF_FEDERATED_TOKEN_FILE", "AZURE_FEDERATED_TOKEN_FILE"} {
		if p := os.Getenv(v); p != "" {
			return v, true, func(context.Context) (string, error) {
				// Read at every use: the file is replaced as tokens rotate.
				b, err := os.ReadFile(p)
				if err != nil {
					return "", wharf.Errorf(wharf.EINVALID, "%s: cannot read the federated token file: %v", v, err)
				}
				a := strings.TrimSpace(string(b))
				return a, checkAssertion(v, a)
			}
		}
	}
	if u, tok := os.Getenv("ACTIONS_ID_TOKEN_REQUEST_URL"), os.Getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN"); u != "" || tok != "" {
		const src = "GitHub Actions (ACTIONS_ID_TOKEN_REQUEST_URL)"
		if u == "" || tok == "" {
			return src, true, fail(wharf.Errorf(wharf.EINVALID, "ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN must both be set; give the job `permissions: id-token: write`"))
		}
		return src, true, func(ctx context.Context) (string, error) { return githubAssertion(ctx, u, tok) }
	}
	if u, tok := os.Getenv("SYSTEM_OIDCREQUESTURI"), os.Getenv("SYSTEM_ACCESSTOKEN"); u != "" {
		const src = "Azure Pipelines (SYSTEM_OIDCREQUESTURI)"
		if tok == "" {
			return src, true, fail(wharf.Errorf(wharf.EINVALID, "SYSTEM_OIDCREQUESTURI is set but SYSTEM_ACCESSTOKEN is not; map it in the step: env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)"))
		}
		conn := os.Getenv("WHARF_SERVICE_CONNECTION_ID")
		if conn == "" {
			conn = os.Getenv("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID")
		}
		return src, true, func(ctx context.Context) (string, error) { return azurePipelinesAssertion(ctx, u, tok, conn) }
	}
	if a := os.Getenv("WHARF_ID_TOKEN"); a != "" {
		return "WHARF_ID_TOKEN", true, func(context.Context) (string, error) { return a, checkAssertion("WHARF_ID_TOKEN", a) }
	}
	return "", false, nil
}

// checkAssertion refuses what cannot be a JWT before it is sent anywhere;
// the message never quotes it.
func checkAssertion(source, a string) error {
	if strings.Count(a, ".") != 2 {
		return wharf.Errorf(wharf.EINVALID, "%s does not hold a JWT", source)
	}
	return nil
}

// githubAssertion asks the runner's token service for a token with
// Entra ID's exchange audience, as azure/login does.
func githubAssertion(ctx context.Context, requestURL, requestToken string) (string, error) {
	u, err := url.Parse(requestURL)
	if err != nil {
		return "", wharf.Errorf(wharf.EINVALID, "ACTIONS_ID_TOKEN_REQUEST_URL is not a URL")
	}
	q := u.Query()
	q.Set("audience", wharf.DefaultFederatedAudience)
	u.RawQuery = q.Encode()
	var out struct {
		Value string `json:"value"`
	}
	if err := oidcRequest(ctx, http.MethodGet, u.String(), "bearer "+requestToken, "GitHub Actions' ID token service", &out); err != nil {
		return "", err
	}
	return out.Value, checkAssertion("GitHub Actions' ID token service", out.Value)
}

// azurePipelinesAssertion asks Azure DevOps for the OIDC token of the
// service connection (or, without one, of the pipeline).
func azurePipelinesAssertion(ctx context.Context, requestURI, accessToken, serviceConnection string) (string, error) {
	u, err := url.Parse(requestURI)
	if err != nil {
		return "", wharf.Errorf(wharf.EINVALID, "SYSTEM_OIDCREQUESTURI is not a URL")
	}
	q := u.Query()
	q.Set("api-version", "7.1")
	if serviceConnection != "" {
		q.Set("serviceConnectionId", serviceConnection)
	}
	u.RawQuery = q.Encode()
	var out struct {
		OIDCToken string `json:"oidcToken"`
	}
	if err := oidcRequest(ctx, http.MethodPost, u.String(), "Bearer "+accessToken, "Azure Pipelines' OIDC service", &out); err != nil {
		return "", err
	}
	return out.OIDCToken, checkAssertion("Azure Pipelines' OIDC service", out.OIDCToken)
}

// oidcRequest calls a CI system's token service, within 30 seconds.
func oidcRequest(ctx context.Context, method, u, authorization, what string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", authorization)
	req.Header.Set("Accept", "application/json")
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return wharf.Errorf(wharf.EUNAVAILABLE, "cannot reach %s: %v", what, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return wharf.Errorf(wharf.EUNAVAILABLE, "reading from %s: %v", what, err)
	}
	if resp.StatusCode != http.StatusOK {
		return wharf.Errorf(wharf.EUNAUTHENTICATED, "%s answered %s", what, resp.Status)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s answered something other than JSON", what)
	}
	return nil
}
