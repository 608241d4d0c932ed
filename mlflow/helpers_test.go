package mlflow_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/http/servertest"
	"github.com/wharfml/wharf/mlflow"
)

// mlflowFixture is a Wharf server on a real SQLite store and blob store
// with MLflow's API mounted (see servertest), a workspace ws-a, and an
// Owner token, for the MLflow API tests.
type mlflowFixture struct {
	*servertest.Server
	t     *testing.T
	owner *mlflowClient
}

// newMLflowFixture returns the fixture on the real store.
func newMLflowFixture(t *testing.T) *mlflowFixture {
	t.Helper()
	f := &mlflowFixture{Server: servertest.New(t), t: t}
	f.Workspace("ws-a")
	f.owner = f.client("ws-a", f.Principal("owner", [2]string{wharf.RoleOwner, "/"}))
	return f
}

// client returns an MLflow client for workspace ws, calling as token.
func (f *mlflowFixture) client(ws, token string) *mlflowClient {
	return &mlflowClient{
		t:     f.t,
		base:  mlflow.TrackingURI(f.HTTP.URL, ws),
		token: token,
		// Redirects are answers to check, never to follow.
		hc: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
}

// mlflowClient speaks MLflow's wire protocol as the Python client does.
type mlflowClient struct {
	t     *testing.T
	base  string // the tracking URI
	token string
	hc    *http.Client
}

// mlResponse is a decoded response. Numbers stay json.Number, so tests
// can tell 1 from "1".
type mlResponse struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// do sends body (a string is sent as is, anything else as JSON; nil sends
// no body) to the tracking URI + path.
func (c *mlflowClient) do(method, path string, body any) *mlResponse {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	out := &mlResponse{status: resp.StatusCode, header: resp.Header, raw: raw}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&out.body); err != nil {
			c.t.Fatalf("%s %s: response is not a JSON object: %v: %s", method, path, err, raw)
		}
	}
	return out
}

// ok calls and requires 200 with a JSON object.
func (c *mlflowClient) ok(method, path string, body any) map[string]any {
	c.t.Helper()
	r := c.do(method, path, body)
	if r.status != http.StatusOK || r.body == nil {
		c.t.Fatalf("%s %s: got %d %s, want 200 with a JSON object", method, path, r.status, r.raw)
	}
	return r.body
}

// fails calls and requires an MLflow error with the given status and code.
func (c *mlflowClient) fails(method, path string, body any, status int, code string) *mlResponse {
	c.t.Helper()
	r := c.do(method, path, body)
	if r.status != status || r.body["error_code"] != code {
		c.t.Fatalf("%s %s: got %d %s, want %d %s", method, path, r.status, r.raw, status, code)
	}
	if msg, _ := r.body["message"].(string); msg == "" {
		c.t.Fatalf("%s %s: error without a message: %s", method, path, r.raw)
	}
	return r
}

// api prefixes an MLflow REST path.
func api(p string) string { return "/api/2.0/mlflow/" + p }

// Accessors for decoded JSON, failing the test on a shape mismatch.

func obj(t *testing.T, v any, path ...string) map[string]any {
	t.Helper()
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("at %q: %v is not an object", p, v)
		}
		v = m[p]
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%v: %#v is not an object", path, v)
	}
	return m
}

func list(t *testing.T, m map[string]any, key string) []any {
	t.Helper()
	v, ok := m[key]
	if !ok {
		return nil
	}
	l, ok := v.([]any)
	if !ok {
		t.Fatalf("%q: %#v is not a list", key, v)
	}
	return l
}

func str(t *testing.T, m map[string]any, key string) string {
	t.Helper()
	s, ok := m[key].(string)
	if !ok {
		t.Fatalf("%q: %#v is not a string (in %v)", key, m[key], m)
	}
	return s
}

func num(t *testing.T, m map[string]any, key string) json.Number {
	t.Helper()
	n, ok := m[key].(json.Number)
	if !ok {
		t.Fatalf("%q: %#v is not a JSON number (in %v)", key, m[key], m)
	}
	return n
}

// kvs turns an MLflow [{key, value}] list into a map.
func kvs(t *testing.T, m map[string]any, key string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, e := range list(t, m, key) {
		kv := e.(map[string]any)
		out[str(t, kv, "key")] = str(t, kv, "value")
	}
	return out
}
