package http

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/wharfml/wharf"
)

// Defaults of the Server fields that bound how long a client may take to
// send a request: a client trickling its headers or body holds a connection
// (and a goroutine) for at most ReadHeaderTimeout + BodyReadTimeout.
const (
	DefaultReadHeaderTimeout   = 10 * time.Second
	DefaultBodyReadTimeout     = 20 * time.Second
	DefaultStreamProgressBytes = 64 << 10
)

// deadlineBody is a request body read under a connection read deadline.
// A size-capped body must arrive whole before the deadline; a streamed body
// (minBytes > 0) moves the deadline one window further each time minBytes
// more have arrived, so a large upload at any useful speed goes through
// while a trickle is cut after one window.
type deadlineBody struct {
	io.ReadCloser
	rc       *http.ResponseController
	window   time.Duration
	minBytes int64
	// sinceExtend counts the bytes read since the deadline last moved.
	sinceExtend int64
	done        bool
}

// limitBodyTime puts r's body under a read deadline, counted from now, by
// which it must have arrived whole; streamBody relaxes that for the routes
// that stream. Requests without a body are left alone: the server already
// reads ahead on their connection to notice a client going away, and a
// deadline on that read would cancel a long-running handler (a log stream)
// when it passed.
func (s *Server) limitBodyTime(w http.ResponseWriter, r *http.Request) {
	if s.BodyReadTimeout <= 0 || r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return
	}
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(s.BodyReadTimeout)) != nil {
		return // a writer without deadlines, as in handler tests
	}
	r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, window: s.BodyReadTimeout}
}

// streamBody lets the deadline of r's body move on while the body keeps
// arriving at StreamProgressBytes per BodyReadTimeout, for uploads too
// large to promise any total time for.
func (s *Server) streamBody(r *http.Request) {
	if b, ok := r.Body.(*deadlineBody); ok {
		b.minBytes = max(s.StreamProgressBytes, 1)
	}
}

// Read reads from the body, moving or clearing the deadline as the body
// arrives.
func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.done {
		return n, err
	}
	if b.minBytes > 0 && err == nil {
		b.sinceExtend += int64(n)
		if b.sinceExtend >= b.minBytes {
			b.sinceExtend = 0
			_ = b.rc.SetReadDeadline(time.Now().Add(b.window))
		}
	}
	switch {
	case err == io.EOF:
		// Once the body is in, the server reads ahead on the connection
		// to notice the client leaving; the deadline must not end that
		// read (and with it the request's context) while the handler
		// works on.
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The deadline stays in the past, so the server cannot read the
		// rest of the body as a next request and closes the connection.
		b.done = true
		if b.minBytes > 0 {
			return n, wharf.Errorf(wharf.EINVALID, "request body arrived slower than %d bytes in %s", b.minBytes, b.window)
		}
		return n, wharf.Errorf(wharf.EINVALID, "request body did not arrive within %s", b.window)
	}
	return n, err
}
