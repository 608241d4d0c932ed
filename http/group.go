package http

import (
	"net/http"
	"strings"

	"github.com/wharfml/wharf"
)

// ErrorWriter writes err as a protocol's error response.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, err error)

// Group mounts the routes of another protocol (MLflow's) below a prefix.
// They go through the same pipeline as Wharf's own routes: authentication,
// job tokens, authorization at the request's scope, audit, metrics, body
// limits and deadlines. Only their errors differ: the group's ErrorWriter
// answers them, the pipeline's 401 and 403 included, so that the
// protocol's own client can parse every answer it gets.
type Group struct {
	s      *Server
	prefix string
	ew     ErrorWriter
}

// Group returns a group of routes below prefix whose errors ew writes.
// prefix may hold wildcards ("/mlflow/v1.0/workspaces/{workspace}"); a
// {workspace} in it is validated and authorized as in any route. Requests
// whose path starts with prefix's literal part and has a "." or ".."
// segment are refused with ew, before routing: the router would answer
// them with a redirect to the cleaned path, which the protocol's client
// would not understand, and a traversal attempt must never be turned into
// a request for another file.
func (s *Server) Group(prefix string, ew ErrorWriter) *Group {
	literal, _, _ := strings.Cut(prefix, "{")
	s.guards = append(s.guards, pathGuard{prefix: literal, ew: ew})
	return &Group{s: s, prefix: strings.TrimSuffix(prefix, "/"), ew: ew}
}

// Route registers h for pattern ("METHOD /path", the path below the
// group's prefix), for callers granted action at the request's scope.
func (g *Group) Route(pattern, action string, h http.HandlerFunc) {
	g.register(pattern, AccessScoped, action, h)
}

// Upload is Route for a route whose body is streamed content, exempt from
// the size limit on JSON bodies (its deadline still holds).
func (g *Group) Upload(pattern, action string, h http.HandlerFunc) {
	g.register(pattern, AccessScoped, action, h).RawBody = true
}

// Public registers h for any caller, with no credentials: documents a
// protocol's clients fetch before they hold a token.
func (g *Group) Public(pattern string, h http.HandlerFunc) {
	g.register(pattern, AccessPublic, "", h)
}

// PublicUpload is Public for a route whose body is streamed content,
// exempt from the size limit on JSON bodies: a protocol that checks its
// own credentials in the request (the Blob API's signatures).
func (g *Group) PublicUpload(pattern string, h http.HandlerFunc) {
	g.register(pattern, AccessPublic, "", h).RawBody = true
}

// Authenticated registers h for any caller with a valid token.
func (g *Group) Authenticated(pattern string, h http.HandlerFunc) {
	g.register(pattern, AccessAuthenticated, "", h)
}

func (g *Group) register(pattern string, access Access, action string, h http.HandlerFunc) *Route {
	method, path, ok := cutPattern(pattern)
	if !ok || !strings.HasPrefix(path, "/") {
		panic("group route pattern is not \"METHOD /path\": " + pattern)
	}
	return g.s.registerWith(g.ew, method+" "+g.prefix+path, access, action, h)
}

// pathGuard refuses dot segments below a group's prefix (see Group).
type pathGuard struct {
	prefix string
	ew     ErrorWriter
}

// refuse answers a request with a dot or empty segment below the guard's
// prefix, and reports whether it did.
func (pg pathGuard) refuse(w http.ResponseWriter, r *http.Request) bool {
	if !strings.HasPrefix(r.URL.Path, pg.prefix) || !hasDotSegment(r.URL.Path) {
		return false
	}
	pg.ew(w, r, wharf.Errorf(wharf.EINVALID, "Invalid path"))
	return true
}
