package http

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/wharfml/wharf"
)

// maxBodyBytes bounds JSON request bodies; uploads use their own routes.
const maxBodyBytes = 4 << 20

// errorStatus maps each error code to its one HTTP status.
var errorStatus = map[string]int{
	wharf.EINVALID:         http.StatusBadRequest,
	wharf.ENOTFOUND:        http.StatusNotFound,
	wharf.ECONFLICT:        http.StatusConflict,
	wharf.EUNAUTHENTICATED: http.StatusUnauthorized,
	wharf.EFORBIDDEN:       http.StatusForbidden,
	wharf.ETOOLARGE:        http.StatusRequestEntityTooLarge,
	wharf.EUNAVAILABLE:     http.StatusServiceUnavailable,
	wharf.EINTERNAL:        http.StatusInternalServerError,
}

// ErrorStatus returns the HTTP status for an error code.
func ErrorStatus(code string) int {
	if s, ok := errorStatus[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// ErrorResponse is the JSON body of every error, shaped like Azure's so that
// tools which print `(code) message` show Wharf's errors the same way.
type ErrorResponse struct {
	Error wharf.Error `json:"error"`
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := wharf.ErrorCode(err)
	if code == wharf.EINTERNAL {
		s.Logger.Error("internal error", "method", r.Method, "path", r.URL.Path, "request_id", requestID(r.Context()), "err", err)
	}
	out := wharf.Error{Code: code, Message: wharf.ErrorMessage(err)}
	var e *wharf.Error
	if errors.As(err, &e) {
		out.Field, out.Details = e.Field, e.Details
	}
	writeJSON(w, ErrorStatus(code), ErrorResponse{Error: out})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

// decodeJSON reads a JSON body strictly: unknown fields and type mismatches
// are EINVALID errors naming the field.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return wharf.Errorf(wharf.EINVALID, "request body holds more than one JSON value")
	}
	return nil
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	var explained *wharf.Error
	switch {
	case errors.As(err, &explained):
		// Already a client-facing error, e.g. a body that came too slowly.
		return err
	case errors.Is(err, io.EOF):
		return wharf.Errorf(wharf.EINVALID, "request body is empty; a JSON object is required")
	case errors.As(err, &tooBig):
		return wharf.Errorf(wharf.ETOOLARGE, "request body exceeds %d bytes", tooBig.Limit)
	case errors.As(err, &syn):
		return wharf.Errorf(wharf.EINVALID, "request body is not valid JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		field := typ.Field
		return wharf.Errorf(wharf.EINVALID, "field %q must be %s, got JSON %s", field, typ.Type.String(), typ.Value).WithField(field)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return wharf.Errorf(wharf.EINVALID, "unknown field %q in request body", name).WithField(name)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return wharf.Errorf(wharf.EINVALID, "request body is truncated JSON")
	}
	return wharf.Errorf(wharf.EINVALID, "request body is invalid: %s", err.Error())
}

// pathName validates a name taken from the URL path.
func pathName(r *http.Request, key string) (string, error) {
	v := r.PathValue(key)
	if err := wharf.ValidateName(key, v); err != nil {
		return "", err
	}
	return v, nil
}
