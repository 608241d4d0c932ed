package jsoncall_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wharfml/wharf/internal/jsoncall"
)

// answerErr is what the test API's Failed makes of an error answer.
type answerErr struct {
	status int
	body   string
}

func (e *answerErr) Error() string { return fmt.Sprintf("%d %s", e.status, e.body) }

func testCall() jsoncall.Call {
	return jsoncall.Call{
		Authorize: func(req *http.Request) error {
			req.Header.Set("Authorization", "Bearer tok")
			return nil
		},
		Failed: func(resp *http.Response) error {
			b, _ := io.ReadAll(resp.Body)
			return &answerErr{resp.StatusCode, string(b)}
		},
	}
}

// TestDo sends calls over loopback HTTP to a server that echoes what it
// got: the JSON body and headers go out, a 2xx answer is decoded, a 204
// or an unwanted answer is discarded, and an error status goes through
// Failed with its body.
func TestDo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/echo":
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{"method": r.Method, "body": string(body),
				"type": r.Header.Get("Content-Type"), "accept": r.Header.Get("Accept"), "auth": r.Header.Get("Authorization")})
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/bad":
			http.Error(w, "no such thing", http.StatusNotFound)
		case "/garbled":
			_, _ = w.Write([]byte("{not json"))
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	c := testCall()

	var got map[string]string
	if err := c.Do(ctx, "POST", srv.URL+"/echo", map[string]int{"a": 1}, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"method": "POST", "body": `{"a":1}`, "type": "application/json", "accept": "application/json", "auth": "Bearer tok"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("POST with a body: the server saw %v, want %v", got, want)
	}
	got = nil
	if err := c.Do(ctx, "GET", srv.URL+"/echo", nil, &got); err != nil {
		t.Fatal(err)
	}
	if got["body"] != "" || got["type"] != "" || got["method"] != "GET" {
		t.Errorf("GET without a body: the server saw %v", got)
	}
	if err := c.Do(ctx, "DELETE", srv.URL+"/echo", nil, nil); err != nil {
		t.Errorf("an answer nobody wants: %v", err)
	}
	got = map[string]string{"kept": "yes"}
	if err := c.Do(ctx, "DELETE", srv.URL+"/empty", nil, &got); err != nil || got["kept"] != "yes" {
		t.Errorf("204: err %v, out %v", err, got)
	}
	var ae *answerErr
	if err := c.Do(ctx, "GET", srv.URL+"/bad", nil, &got); !errors.As(err, &ae) || ae.status != 404 || !strings.Contains(ae.body, "no such thing") {
		t.Errorf("404: %v", err)
	}
	if err := c.Do(ctx, "GET", srv.URL+"/garbled", nil, &got); err == nil || !strings.Contains(err.Error(), "decode the answer of GET "+srv.URL+"/garbled") {
		t.Errorf("garbled answer: %v", err)
	}
	c.MaxAnswer = 10
	if err := c.Do(ctx, "GET", srv.URL+"/echo", nil, &got); err == nil {
		t.Errorf("an answer over MaxAnswer was decoded: %v", got)
	}
}

// TestDoUnreachable checks that a request that gets no answer is worded
// by Unreachable, and that an Authorize error stops the request.
func TestDoUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c := testCall()
	c.Unreachable = func(err error) error { return fmt.Errorf("cannot reach the test API: %w", err) }
	if err := c.Do(context.Background(), "GET", url, nil, nil); err == nil || !strings.HasPrefix(err.Error(), "cannot reach the test API: ") {
		t.Errorf("closed server: %v", err)
	}
	refused := errors.New("no credential")
	c.Authorize = func(*http.Request) error { return refused }
	if err := c.Do(context.Background(), "GET", url, nil, nil); !errors.Is(err, refused) {
		t.Errorf("failed Authorize: %v", err)
	}
}
