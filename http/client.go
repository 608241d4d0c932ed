package http

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/federation"
	"github.com/wharfml/wharf/internal/jsoncall"
	"github.com/wharfml/wharf/mlflow"
)

// Client calls Wharf's REST API. Errors from the server come back as
// *wharf.Error with the server's code and message.
type Client struct {
	// URL is the server's base URL, without a trailing slash.
	URL string
	// Token returns the bearer token for a request; nil sends none.
	Token func(ctx context.Context) (string, error)
	HTTP  *http.Client
}

// NewClient returns a client for the server at baseURL.
func NewClient(baseURL string, token func(ctx context.Context) (string, error)) *Client {
	return &Client{
		URL:   strings.TrimRight(baseURL, "/"),
		Token: token,
		HTTP:  &http.Client{Timeout: 5 * time.Minute},
	}
}

// Do sends a JSON request and decodes a JSON response into out (if non-nil).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	return c.api().Do(ctx, method, c.URL+path, in, out)
}

// api is how the server's API is called: with the client's token, its
// errors read as the server's (decodeErrorResponse).
func (c *Client) api() jsoncall.Call {
	return jsoncall.Call{
		Client:    c.HTTP,
		Authorize: func(req *http.Request) error { return c.authorize(req.Context(), req) },
		Unreachable: func(err error) error {
			return wharf.Errorf(wharf.EUNAVAILABLE, "cannot reach the Wharf server at %s: %s", c.URL, shortNetError(err))
		},
		Failed: decodeErrorResponse,
	}
}

func shortNetError(err error) string {
	var ue *url.Error
	if e, ok := err.(*url.Error); ok {
		ue = e
		return ue.Err.Error() + certificateHint(err)
	}
	return err.Error() + certificateHint(err)
}

func decodeErrorResponse(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var er ErrorResponse
	if json.Unmarshal(b, &er) == nil && er.Error.Code != "" {
		e := er.Error
		return &e
	}
	var me mlflow.Error
	if json.Unmarshal(b, &me) == nil && me.ErrorCode != "" {
		return wharf.Errorf(mlflow.WharfCode(me.ErrorCode, resp.StatusCode), "%s: %s", me.ErrorCode, me.Message)
	}
	var oe oauthError
	if json.Unmarshal(b, &oe) == nil && oe.Error != "" {
		return wharf.Errorf(wharf.EUNAUTHENTICATED, "%s: %s", oe.Error, oe.ErrorDescription)
	}
	code := wharf.EINTERNAL
	for c, st := range errorStatus {
		if st == resp.StatusCode {
			code = c
		}
	}
	return wharf.Errorf(code, "server answered %s", resp.Status)
}

// RequestToken runs the client-credentials grant against a Wharf server.
func RequestToken(ctx context.Context, baseURL, tenant, clientID, secret string) (token string, expiresOn time.Time, err error) {
	return requestToken(ctx, baseURL, tenant, url.Values{"client_id": {clientID}, "client_secret": {secret}})
}

// RequestTokenWithAssertion runs the client-credentials grant with a
// federated assertion (a CI system's OIDC token) in place of a secret.
func RequestTokenWithAssertion(ctx context.Context, baseURL, tenant, clientID, assertion string) (token string, expiresOn time.Time, err error) {
	return requestToken(ctx, baseURL, tenant, url.Values{"client_id": {clientID},
		"client_assertion_type": {federation.AssertionType}, "client_assertion": {assertion}})
}

func requestToken(ctx context.Context, baseURL, tenant string, form url.Values) (token string, expiresOn time.Time, err error) {
	form.Set("grant_type", "client_credentials")
	var tr tokenResponse
	if err := postOAuthForm(ctx, baseURL, tenant, "token", form, &tr); err != nil {
		return "", time.Time{}, err
	}
	return tr.AccessToken, time.Now().Add(time.Duration(tr.ExpiresIn) * time.Second), nil
}

// postOAuthForm posts form to the tenant's OAuth2 endpoint (token or
// devicecode) and decodes the success body into out.
func postOAuthForm(ctx context.Context, baseURL, tenant, endpoint string, form url.Values, out any) error {
	form.Set("scope", APIAudience+"/.default")
	path := "/oauth2/v2.0/" + endpoint
	if tenant != "" {
		path = "/" + url.PathEscape(tenant) + path
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(baseURL, "/")+path, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return wharf.Errorf(wharf.EUNAVAILABLE, "cannot reach the Wharf server at %s: %s", baseURL, shortNetError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeErrorResponse(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s response: %w", endpoint, err)
	}
	return nil
}

// Upload streams r to path with PUT, for artifact uploads that must not be
// held in memory.
func (c *Client) Upload(ctx context.Context, path string, r io.Reader, size int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.URL+path, r)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	return c.api().Send(req, nil)
}

// Get GETs path and returns the body, for the caller to stream and close,
// with the response headers.
func (c *Client) Get(ctx context.Context, path string) (io.ReadCloser, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+path, nil)
	if err != nil {
		return nil, nil, err
	}
	if err := c.authorize(ctx, req); err != nil {
		return nil, nil, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, nil, wharf.Errorf(wharf.EUNAVAILABLE, "cannot reach the Wharf server at %s: %s", c.URL, shortNetError(err))
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, nil, decodeErrorResponse(resp)
	}
	return resp.Body, resp.Header, nil
}

// Download GETs path and returns the body for the caller to stream.
func (c *Client) Download(ctx context.Context, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+path, nil)
	if err != nil {
		return nil, err
	}
	if err := c.authorize(ctx, req); err != nil {
		return nil, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, wharf.Errorf(wharf.EUNAVAILABLE, "cannot reach the Wharf server at %s: %s", c.URL, shortNetError(err))
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, decodeErrorResponse(resp)
	}
	return resp.Body, nil
}

func (c *Client) authorize(ctx context.Context, req *http.Request) error {
	if c.Token == nil {
		return nil
	}
	tok, err := c.Token(ctx)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return nil
}
