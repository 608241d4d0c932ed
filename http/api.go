package http

import (
	"net/http"

	"github.com/wharfml/wharf"
)

// noBody is the In of handlers that read no request body (GET, DELETE and
// the POSTs whose input is all in the path): jsonAPI leaves such a body
// unread, as the hand-written handlers always did.
type noBody struct{}

// jsonAPI adapts a typed REST handler to net/http. It decodes the body into
// In (strictly, see decodeJSON) unless In is noBody, calls fn, and writes
// either fn's error through writeError, a bare status for 204, or Out as
// JSON with fn's status. A handler thus holds only its own logic; the
// decode → error → encode shape is written once, so an error can never be
// answered in a second shape or a handler forget to return after one.
func jsonAPI[In, Out any](s *Server, fn func(r *http.Request, in *In) (int, Out, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		in := new(In)
		if _, none := any(in).(*noBody); !none {
			if err := decodeJSON(r, in); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		status, out, err := fn(r, in)
		switch {
		case err != nil:
			s.writeError(w, r, err)
		case status == http.StatusNoContent:
			w.WriteHeader(status)
		default:
			writeJSON(w, status, out)
		}
	}
}

// putTarget returns the validated {workspace} and {name} of a
// PUT /…/{workspace}/…/{name} request. The body may repeat the name (the
// CLI sends the YAML file's name); one that differs from the path's is
// EINVALID, because the path is what was authorized and what is written.
func putTarget(r *http.Request, bodyName string) (ws, name string, err error) {
	if ws, err = pathName(r, "workspace"); err != nil {
		return "", "", err
	}
	if name, err = pathName(r, "name"); err != nil {
		return "", "", err
	}
	if err := sameName(bodyName, name); err != nil {
		return "", "", err
	}
	return ws, name, nil
}

// callerID is the principal making the request, recorded as the creator of
// what it creates: the identity the token proved, not one the client claims.
func callerID(r *http.Request) string {
	if c := wharf.CallerFromContext(r.Context()); c != nil {
		return c.PrincipalID
	}
	return ""
}

// sameName refuses a body name that differs from the path's; an empty one
// means "the path's".
func sameName(bodyName, pathName string) error {
	if bodyName != "" && bodyName != pathName {
		return wharf.Errorf(wharf.EINVALID, "name %q in the body differs from %q in the path", bodyName, pathName).WithField("name")
	}
	return nil
}
