package http

import (
	"net/http"

	"github.com/wharfml/wharf"
)

// MLflow error codes and their HTTP statuses (mlflow/exceptions.py). The
// client retries 5xx with backoff for minutes, so deterministic failures
// must be 4xx.
var mlflowCodes = map[string]struct {
	code   string
	status int
}{
	wharf.EINVALID:         {"INVALID_PARAMETER_VALUE", http.StatusBadRequest},
	wharf.ENOTFOUND:        {"RESOURCE_DOES_NOT_EXIST", http.StatusNotFound},
	wharf.ECONFLICT:        {"RESOURCE_ALREADY_EXISTS", http.StatusBadRequest},
	wharf.EUNAUTHENTICATED: {"UNAUTHENTICATED", http.StatusUnauthorized},
	wharf.EFORBIDDEN:       {"PERMISSION_DENIED", http.StatusForbidden},
	wharf.ETOOLARGE:        {"INVALID_PARAMETER_VALUE", http.StatusRequestEntityTooLarge},
	wharf.EUNAVAILABLE:     {"TEMPORARILY_UNAVAILABLE", http.StatusServiceUnavailable},
	wharf.EINTERNAL:        {"INTERNAL_ERROR", http.StatusInternalServerError},
}

// MLflowError is the error body the mlflow client parses.
type MLflowError struct {
	ErrorCode string `json:"error_code"`
	Message   string `json:"message"`
}

// writeMLflowError writes err in MLflow's shape, mapping Wharf's codes to
// MLflow's.
func (s *Server) writeMLflowError(w http.ResponseWriter, r *http.Request, err error) {
	code := wharf.ErrorCode(err)
	if code == wharf.EINTERNAL {
		s.Logger.Error("internal error", "method", r.Method, "path", r.URL.Path, "request_id", requestID(r.Context()), "err", err)
	}
	m, ok := mlflowCodes[code]
	if !ok {
		m = mlflowCodes[wharf.EINTERNAL]
	}
	writeJSON(w, m.status, MLflowError{ErrorCode: m.code, Message: wharf.ErrorMessage(err)})
}
