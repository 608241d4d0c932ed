// Package jsoncall makes the one JSON request that Wharf's API clients
// share in shape: Wharf's own REST client, a step's MLflow tracking calls
// and the Ray Jobs API client. It builds the request, sends it and reads
// the answer; what differs between those APIs (the credential, how an
// error answer reads, how an unreachable server is worded) is the
// caller's, in a Call.
package jsoncall

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// Call is how one API is called.
type Call struct {
	// Client sends the requests; nil means http.DefaultClient.
	Client *http.Client
	// Authorize, when set, adds a request's credential before it is
	// sent; its error is returned as it is.
	Authorize func(*http.Request) error
	// Unreachable, when set, words the error of a request that got no
	// answer; nil returns it as it is.
	Unreachable func(error) error
	// Failed turns an answer without a 2xx status into the error Do
	// returns; it may read the body, which Do closes.
	Failed func(*http.Response) error
	// MaxAnswer, when positive, bounds the bytes of an answer read.
	MaxAnswer int64
}

// Do sends in as the JSON body (none when in is nil) with method to url,
// and decodes a 2xx answer's JSON into out; the answer is discarded when
// out is nil or the status is 204 No Content.
func (c Call) Do(ctx context.Context, method, url string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	return c.Send(req, out)
}

// Send sends req, with its credential added, and reads its answer as Do
// does: a body other than JSON (a file upload) is sent this way.
func (c Call) Send(req *http.Request, out any) error {
	if c.Authorize != nil {
		if err := c.Authorize(req); err != nil {
			return err
		}
	}
	client := c.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		if c.Unreachable != nil {
			return c.Unreachable(err)
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return c.Failed(resp)
	}
	var answer io.Reader = resp.Body
	if c.MaxAnswer > 0 {
		answer = io.LimitReader(resp.Body, c.MaxAnswer)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, answer)
		return nil
	}
	if err := json.NewDecoder(answer).Decode(out); err != nil {
		return fmt.Errorf("decode the answer of %s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	return nil
}
