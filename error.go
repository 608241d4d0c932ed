package wharf

import (
	"errors"
	"fmt"
)

// Error codes. Each is mapped to exactly one HTTP status by the http package
// and printed by the CLI as `(Code) message`, the way the Azure CLI prints
// service errors, so scripts that grep for codes keep working.
const (
	EINVALID         = "BadRequest"
	ENOTFOUND        = "ResourceNotFound"
	ECONFLICT        = "Conflict"
	EUNAUTHENTICATED = "Unauthorized"
	EFORBIDDEN       = "AuthorizationFailed"
	ETOOLARGE        = "RequestTooLarge"
	EUNAVAILABLE     = "ServiceUnavailable"
	EINTERNAL        = "InternalServerError"
)

// Error is Wharf's one error model: a machine-readable code plus a message
// written for the person who caused it. Field names the request or YAML field
// at fault, when there is one.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"target,omitempty"`
	// Details are the individual problems when there are several (every
	// mistake in a job document at once), each with its own Field.
	Details []Error `json:"details,omitempty"`
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("(%s) %s", e.Code, e.Message)
}

// WithField returns e with Field set, for chaining at the point of creation.
func (e *Error) WithField(field string) *Error {
	e.Field = field
	return e
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code string, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err if it is (or wraps) an *Error, and
// EINTERNAL otherwise: an unexpected error is never shown to users as
// anything but an internal one.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	}
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-facing message of err. For errors that are not
// an *Error it returns a generic text, so internal details (SQL, paths,
// secrets) never leak to clients.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	}
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// IsNotFound reports whether err has code ENOTFOUND.
func IsNotFound(err error) bool { return ErrorCode(err) == ENOTFOUND }
