package mlflow

import (
	"encoding/json"
	"net/http"

	"github.com/wharfml/wharf"
)

// MLflow error codes and their HTTP statuses (mlflow/exceptions.py). The
// client retries 5xx with backoff for minutes, so deterministic failures
// must be 4xx.
var codes = map[string]struct {
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

// Error is the error body the mlflow client parses.
type Error struct {
	ErrorCode string `json:"error_code"`
	Message   string `json:"message"`
}

// WharfCode maps an MLflow error answered with status back to Wharf's
// error code, for clients of the API; EINTERNAL when none matches.
func WharfCode(errorCode string, status int) string {
	code := wharf.EINTERNAL
	for c, m := range codes {
		if m.code == errorCode && m.status == status {
			code = c
		}
	}
	return code
}

// WriteError writes err in MLflow's shape, mapping Wharf's codes to
// MLflow's. An internal error is logged with the request id the server
// answered with (x-request-id), so that what a client reports can be found.
func (h *Handler) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	code := wharf.ErrorCode(err)
	if code == wharf.EINTERNAL {
		h.log().Error("internal error", "method", r.Method, "path", r.URL.Path, "request_id", w.Header().Get("x-request-id"), "err", err)
	}
	m, ok := codes[code]
	if !ok {
		m = codes[wharf.EINTERNAL]
	}
	writeJSON(w, m.status, Error{ErrorCode: m.code, Message: wharf.ErrorMessage(err)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
