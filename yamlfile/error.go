package yamlfile

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is a problem found in a user's YAML file. It carries the position and
// the dotted field path separately so that callers can map it onto their own
// error model (API responses, editor diagnostics) instead of parsing text.
type Error struct {
	File   string // file name as given to Load or Parse
	Line   int    // 1-based; 0 when unknown (e.g. a value supplied with --set)
	Column int    // 1-based; 0 when unknown
	Field  string // dotted path such as "jobs.train.inputs.alpha"; may be empty
	Msg    string
}

// Error renders "file:line:col: field a.b.c: msg", leaving out the parts that
// are unknown so messages never show placeholders like ":0:0".
func (e *Error) Error() string {
	var b strings.Builder
	loc := e.File
	if e.Line > 0 {
		if loc != "" {
			loc += ":"
		}
		loc += strconv.Itoa(e.Line)
		if e.Column > 0 {
			loc += ":" + strconv.Itoa(e.Column)
		}
	}
	if loc != "" {
		b.WriteString(loc)
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString("field ")
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList holds every problem found in one pass, so a user can fix all of
// them at once instead of re-running the command after each fix.
type ErrorList struct {
	Errors []*Error
}

// Error prints one problem per line.
func (l *ErrorList) Error() string {
	lines := make([]string, len(l.Errors))
	for i, e := range l.Errors {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes the individual errors so errors.As can find an *Error.
func (l *ErrorList) Unwrap() []error {
	errs := make([]error, len(l.Errors))
	for i, e := range l.Errors {
		errs[i] = e
	}
	return errs
}

// errOrNil returns nil for an empty list so callers can write
// "return list.errOrNil()" without the typed-nil interface trap.
func (l *ErrorList) errOrNil() error {
	if l == nil || len(l.Errors) == 0 {
		return nil
	}
	return l
}

// NodeError builds an Error positioned at node, for callers that validate
// semantics after Decode (e.g. min_instances greater than max_instances).
// doc and node may be nil; the position is then left empty.
func NodeError(doc *Document, node *yaml.Node, field, format string, args ...any) *Error {
	e := &Error{Field: field, Msg: fmt.Sprintf(format, args...)}
	if doc != nil {
		e.File = doc.File
	}
	if node != nil {
		e.Line, e.Column = node.Line, node.Column
		if doc != nil {
			if expr, ok := doc.overrides[node]; ok {
				e.Line, e.Column = 0, 0
				e.Msg += " (from --set " + expr + ")"
			}
		}
	}
	return e
}

// AsList flattens err into the *Error values it contains, so callers can
// present every problem uniformly whether they got one error or a list.
// Errors without position information are returned as an Error with only
// Msg set.
func AsList(err error) []*Error {
	if err == nil {
		return nil
	}
	var list *ErrorList
	if errors.As(err, &list) {
		return list.Errors
	}
	var e *Error
	if errors.As(err, &e) {
		return []*Error{e}
	}
	return []*Error{{Msg: err.Error()}}
}
