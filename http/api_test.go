package http

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
)

type apiIn struct {
	Name string `json:"name"`
	N    int    `json:"n"`
}

type apiOut struct {
	Workspace string `json:"workspace"`
	Name      string `json:"name"`
	N         int    `json:"n"`
}

// failingBody fails the test if a handler reads it.
type failingBody struct{ t *testing.T }

func (b failingBody) Read([]byte) (int, error) {
	b.t.Error("the body of a noBody handler was read")
	return 0, io.EOF
}
func (failingBody) Close() error { return nil }

// serveAPI routes one request through a real mux, so that PathValue works
// as it does behind the server's routes.
func serveAPI(pattern string, h http.HandlerFunc, req *http.Request) *httptest.ResponseRecorder {
	mux := http.NewServeMux()
	mux.Handle(pattern, h)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec
}

func apiError(t *testing.T, rec *httptest.ResponseRecorder) wharf.Error {
	t.Helper()
	var e ErrorResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body %q: %v", rec.Body, err)
	}
	return e.Error
}

func TestJSONAPI(t *testing.T) {
	s := &Server{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	const pattern = "PUT /w/{workspace}/things/{name}"
	calls := 0
	put := jsonAPI(s, func(r *http.Request, in *apiIn) (int, apiOut, error) {
		calls++
		ws, name, err := putTarget(r, in.Name)
		if err != nil {
			return 0, apiOut{}, err
		}
		if in.N < 0 {
			return 0, apiOut{}, wharf.Errorf(wharf.ENOTFOUND, "no thing %d", in.N)
		}
		if in.N == 500 {
			return 0, apiOut{}, errors.New("disk on fire")
		}
		return http.StatusCreated, apiOut{Workspace: ws, Name: name, N: in.N}, nil
	})
	do := func(path, body string) *httptest.ResponseRecorder {
		return serveAPI(pattern, put, httptest.NewRequest("PUT", path, strings.NewReader(body)))
	}

	t.Run("decodes, calls and encodes", func(t *testing.T) {
		rec := do("/w/ws1/things/a", `{"name":"a","n":7}`)
		if rec.Code != http.StatusCreated || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
		}
		var out apiOut
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out != (apiOut{"ws1", "a", 7}) {
			t.Fatalf("body %q: %v", rec.Body, err)
		}
	})
	t.Run("an empty body name means the path's", func(t *testing.T) {
		if rec := do("/w/ws1/things/a", `{"n":1}`); rec.Code != http.StatusCreated {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
	t.Run("a differing body name is EINVALID on the name field", func(t *testing.T) {
		rec := do("/w/ws1/things/a", `{"name":"b"}`)
		e := apiError(t, rec)
		if rec.Code != http.StatusBadRequest || e.Code != wharf.EINVALID || e.Field != "name" ||
			e.Message != `name "b" in the body differs from "a" in the path` {
			t.Fatalf("%d %+v", rec.Code, e)
		}
	})
	t.Run("an invalid path name is EINVALID", func(t *testing.T) {
		rec := do("/w/ws1/things/-bad-", `{}`)
		if e := apiError(t, rec); rec.Code != http.StatusBadRequest || e.Code != wharf.EINVALID {
			t.Fatalf("%d %+v", rec.Code, e)
		}
	})
	t.Run("a handler's error is mapped once", func(t *testing.T) {
		rec := do("/w/ws1/things/a", `{"n":-1}`)
		if e := apiError(t, rec); rec.Code != http.StatusNotFound || e.Code != wharf.ENOTFOUND || e.Message != "no thing -1" {
			t.Fatalf("%d %+v", rec.Code, e)
		}
		rec = do("/w/ws1/things/a", `{"n":500}`)
		if e := apiError(t, rec); rec.Code != http.StatusInternalServerError || e.Code != wharf.EINTERNAL {
			t.Fatalf("%d %+v", rec.Code, e)
		}
	})
	t.Run("a bad body never reaches the handler", func(t *testing.T) {
		before := calls
		for _, body := range []string{`{"nom":"a"}`, `{"n":"x"}`, ``, `{} {}`} {
			rec := do("/w/ws1/things/a", body)
			if e := apiError(t, rec); rec.Code != http.StatusBadRequest || e.Code != wharf.EINVALID {
				t.Fatalf("body %q: %d %+v", body, rec.Code, e)
			}
		}
		if calls != before {
			t.Fatalf("handler called %d times for bad bodies", calls-before)
		}
	})
}

func TestJSONAPINoBody(t *testing.T) {
	s := &Server{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	del := jsonAPI(s, func(r *http.Request, _ *noBody) (int, noBody, error) {
		if r.PathValue("name") == "missing" {
			return 0, noBody{}, wharf.Errorf(wharf.ENOTFOUND, "missing")
		}
		return http.StatusNoContent, noBody{}, nil
	})
	req := httptest.NewRequest("DELETE", "/things/a", nil)
	req.Body = failingBody{t}
	rec := serveAPI("DELETE /things/{name}", del, req)
	if rec.Code != http.StatusNoContent || rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != "" {
		t.Fatalf("204: status %d, body %q, content type %q", rec.Code, rec.Body, rec.Header().Get("Content-Type"))
	}
	req = httptest.NewRequest("DELETE", "/things/missing", nil)
	req.Body = failingBody{t}
	rec = serveAPI("DELETE /things/{name}", del, req)
	if e := apiError(t, rec); rec.Code != http.StatusNotFound || e.Code != wharf.ENOTFOUND {
		t.Fatalf("%d %+v", rec.Code, e)
	}
}
