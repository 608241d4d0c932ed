package http

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/auth"
)

// Access says how a route is guarded.
type Access int

const (
	// AccessPublic routes need no credentials (health, metrics, token).
	AccessPublic Access = iota
	// AccessAuthenticated routes need a valid token but no role.
	AccessAuthenticated
	// AccessScoped routes need the route's action at the route's scope.
	AccessScoped
	// AccessFiltered routes list resources; the handler returns only those
	// on which the caller holds the action.
	AccessFiltered
	// AccessEndpoint routes are online endpoints' data plane: callers
	// present the endpoint's key or token, which the router checks
	// itself, not an API token.
	AccessEndpoint
	// AccessCompute routes are a Ray-backed cluster's driver's: callers
	// present the compute token of the compute in the path.
	AccessCompute
	// AccessClusterNode routes serve the nodes of Ray-backed clusters:
	// callers present a compute token (a driver) or a job token (a step's
	// task, which holds only that); a principal's token is refused.
	AccessClusterNode
)

// Route is one registered endpoint and the action it needs.
type Route struct {
	Method  string
	Pattern string
	Access  Access
	// Action is the action authorized at the request's scope; empty only
	// for public and authenticated-only routes.
	Action string
	// RawBody routes stream their body (artifact uploads): no size limit.
	RawBody bool
	// Page routes are the studio's: they answer in HTML, and send a
	// browser without a session to the sign-in page.
	Page bool

	// writeError answers the route's errors, those of the pipeline (401,
	// 403) included: the server's writeError, or its group's.
	writeError ErrorWriter
}

type ctxKey int

const (
	requestIDKey ctxKey = iota
	auditKey
)

// statusWriter records the status for metrics and the audit log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush lets streaming handlers flush through the wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *Server) public(pattern string, h http.HandlerFunc) {
	s.register(pattern, AccessPublic, "", h)
}

func (s *Server) endpointRoute(pattern string, h http.HandlerFunc) {
	s.register(pattern, AccessEndpoint, "", h).RawBody = true
}

func (s *Server) authenticated(pattern string, h http.HandlerFunc) {
	s.register(pattern, AccessAuthenticated, "", h)
}

func (s *Server) route(pattern, action string, h http.HandlerFunc) {
	s.register(pattern, AccessScoped, action, h)
}

func (s *Server) filtered(pattern, action string, h http.HandlerFunc) {
	s.register(pattern, AccessFiltered, action, h)
}

// register wraps h in the request pipeline. A guarded route without an action
// is a programming error caught at start-up, not a hole found in production.
func (s *Server) register(pattern string, access Access, action string, h http.HandlerFunc) *Route {
	return s.registerWith(s.writeError, pattern, access, action, h)
}

func (s *Server) registerWith(ew ErrorWriter, pattern string, access Access, action string, h http.HandlerFunc) *Route {
	method, path, ok := cutPattern(pattern)
	if !ok {
		panic("route pattern without method: " + pattern)
	}
	if (access == AccessScoped || access == AccessFiltered) && action == "" {
		panic("route without action: " + pattern)
	}
	rt := &Route{Method: method, Pattern: path, Access: access, Action: action, writeError: ew}
	s.routes = append(s.routes, rt)
	s.mux.Handle(pattern, s.pipeline(rt, h))
	return rt
}

func cutPattern(p string) (method, path string, ok bool) {
	for i := 0; i < len(p); i++ {
		if p[i] == ' ' {
			return p[:i], p[i+1:], i > 0
		}
	}
	return "", p, false
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// pipeline is the one place where every request is measured, authenticated,
// authorized and audited.
func (s *Server) pipeline(rt *Route, h http.HandlerFunc) http.Handler {
	label := rt.Method + " " + rt.Pattern
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		reqID := r.Header.Get("x-ms-client-request-id")
		if reqID == "" || len(reqID) > 64 {
			reqID = newRequestID()
		}
		w.Header().Set("x-request-id", reqID)
		sw := &statusWriter{ResponseWriter: w}
		ctx := context.WithValue(r.Context(), requestIDKey, reqID)
		r = r.WithContext(ctx)
		if rt.RawBody {
			s.streamBody(r)
		} else {
			r.Body = http.MaxBytesReader(sw, r.Body, maxBodyBytes)
		}
		s.metrics.inFlight.Inc()
		defer func() {
			s.metrics.inFlight.Dec()
			code := sw.status
			if code == 0 {
				code = http.StatusOK
			}
			s.metrics.requests.WithLabelValues(label, strconv.Itoa(code)).Inc()
			s.metrics.latency.WithLabelValues(label).Observe(time.Since(start).Seconds())
		}()

		writeErr := rt.writeError
		if err := checkWorkspaceName(rt, r); err != nil {
			writeErr(sw, r, err)
			return
		}
		if rt.Access == AccessPublic || rt.Access == AccessEndpoint {
			h(sw, r)
			return
		}
		var caller *wharf.Caller
		var grants []*wharf.RoleAssignment
		var err error
		switch rt.Access {
		case AccessCompute:
			caller, err = s.authenticateCompute(r)
		case AccessClusterNode:
			caller, err = s.authenticateClusterNode(r)
		default:
			caller, grants, err = s.authenticate(r)
		}
		if err != nil {
			status := ErrorStatus(wharf.ErrorCode(err))
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="wharf"`)
			}
			writeErr(sw, r, err)
			s.audit(r, rt, nil, status, wharf.AuditDenied)
			return
		}
		r = r.WithContext(wharf.NewContextWithCaller(r.Context(), caller))
		if rt.Access == AccessScoped {
			ok, err := s.authorizeWith(r.Context(), caller, grants, rt.Action, scopeOf(r))
			if err != nil {
				writeErr(sw, r, err)
				return
			}
			if !ok {
				writeErr(sw, r, forbidden(caller, rt.Action, scopeOf(r)))
				s.audit(r, rt, caller, http.StatusForbidden, wharf.AuditDenied)
				return
			}
		}
		// A handler may have its audit record written with its write
		// (wharf.ArmAudit); one that answered as armed is recorded.
		var pending *wharf.PendingAudit
		if e := auditEvent(r, rt, caller); e != nil {
			var ctx context.Context
			ctx, pending = wharf.NewContextWithPendingAudit(r.Context(), e)
			r = r.WithContext(ctx)
		}
		h(sw, r)
		if pending != nil {
			if e := pending.Written(); e != nil && e.Status == sw.status {
				return
			}
		}
		outcome := wharf.AuditSucceeded
		if sw.status >= 400 {
			outcome = wharf.AuditFailed
		}
		s.audit(r, rt, caller, sw.status, outcome)
	})
}

func forbidden(c *wharf.Caller, action, scope string) error {
	return wharf.Errorf(wharf.EFORBIDDEN,
		"the client %q does not have authorization to perform action %q over scope %q", c.PrincipalID, action, scope)
}

// authenticate verifies the bearer token and that its principal still exists:
// a deleted principal's unexpired tokens stop working at once. Without a
// bearer token, a browser's session cookie (with its CSRF token) stands
// for the signed-in user; a bearer token wins over a cookie, and needs no
// CSRF token, since a browser never sends one on its own.
//
// Whatever the credential, the caller and its role assignments are read in
// one statement (FindCallerGrants for an application's or a job's token,
// FindUserGrants for a user's, FindSessionGrants for a session), and
// grants holds the assignments for authorizeWith.
func (s *Server) authenticate(r *http.Request) (c *wharf.Caller, grants []*wharf.RoleAssignment, err error) {
	tok, ok := bearerToken(r)
	if !ok {
		c, grants, err := s.sessionCaller(r)
		if err != nil || c != nil {
			return c, grants, err
		}
		return nil, nil, wharf.Errorf(wharf.EUNAUTHENTICATED, "authentication required: send an access token in the Authorization header (wharf account get-access-token)")
	}
	// A token for the Azure ML SDK's ML resource is one for the API.
	claims, err := s.Tokens.VerifyAny(tok, APIAudience, JobAudience, s.MLAudience())
	if err != nil {
		return nil, nil, wharf.Errorf(wharf.EUNAUTHENTICATED, "the access token is invalid or expired")
	}
	if claims.IdentityType == auth.IdentityTypeUser {
		if claims.Audience != APIAudience {
			return nil, nil, wharf.Errorf(wharf.EUNAUTHENTICATED, "the access token is invalid or expired")
		}
		g, err := s.userFromToken(r.Context(), claims)
		if err != nil {
			return nil, nil, err
		}
		return userCaller(g.User), g.Assignments, nil
	}
	// A job token acts for whoever submitted the job, principal or user.
	g, err := s.Store.FindCallerGrants(r.Context(), claims.AppID)
	if wharf.IsNotFound(err) {
		return nil, nil, wharf.Errorf(wharf.EUNAUTHENTICATED, "the principal of this access token no longer exists")
	} else if err != nil {
		return nil, nil, err
	}
	c = g.Caller
	if claims.Audience == JobAudience {
		if err := s.checkJobToken(r.Context(), claims); err != nil {
			return nil, nil, err
		}
		c.Job, c.JobWorkspace = claims.Job, claims.Workspace
	}
	return c, g.Assignments, nil
}

// checkJobToken accepts a job token only while its job runs: the token is
// revoked when the job reaches a terminal state, whatever its expiry says.
func (s *Server) checkJobToken(ctx context.Context, claims *auth.Claims) error {
	if claims.Job == "" || claims.Workspace == "" {
		return wharf.Errorf(wharf.EUNAUTHENTICATED, "the access token is invalid or expired")
	}
	j, err := s.Store.FindJob(ctx, claims.Workspace, claims.Job)
	if wharf.IsNotFound(err) {
		return wharf.Errorf(wharf.EUNAUTHENTICATED, "the job this token was issued to no longer exists")
	} else if err != nil {
		return err
	}
	if wharf.JobTerminal(j.Status) {
		return wharf.Errorf(wharf.EUNAUTHENTICATED, "the job this token was issued to has ended (%s); its token is revoked", j.Status)
	}
	return nil
}

// authorize evaluates the caller's role assignments for action at scope.
func (s *Server) authorize(ctx context.Context, c *wharf.Caller, action, scope string) (bool, error) {
	return s.authorizeWith(ctx, c, nil, action, scope)
}

// authorizeWith is authorize with the caller's assignments as authenticate
// read them in this request, or nil to read them now.
func (s *Server) authorizeWith(ctx context.Context, c *wharf.Caller, grants []*wharf.RoleAssignment, action, scope string) (bool, error) {
	if grants == nil {
		var err error
		if grants, err = s.Store.ListRoleAssignments(ctx, wharf.RoleAssignmentFilter{PrincipalID: c.PrincipalID}); err != nil {
			return false, err
		}
	}
	return wharf.AuthorizeCaller(c, grants, action, scope), nil
}

// audit records mutating calls; reads are not audited (they are in the
// request metrics), nor are searches sent as POST, whose action is a read,
// except the reads of secret values (alwaysAudited). A failure to write the
// audit line is logged loudly.
func (s *Server) audit(r *http.Request, rt *Route, c *wharf.Caller, status int, outcome string) {
	e := auditEvent(r, rt, c)
	if e == nil {
		return
	}
	e.Status, e.Outcome = status, outcome
	// The request may be cancelled by now; the audit line must still land.
	s.recordAudit(r, e)
}

// auditEvent returns the audit record of a call by c, without its status
// and outcome, or nil for a call that is not audited (see audit).
func auditEvent(r *http.Request, rt *Route, c *wharf.Caller) *wharf.AuditEvent {
	if (!isMutating(r.Method) || strings.HasSuffix(rt.Action, "/read")) && !alwaysAudited(rt.Action) {
		return nil
	}
	e := &wharf.AuditEvent{
		Action:    rt.Action,
		Method:    r.Method,
		Path:      r.URL.Path,
		Scope:     scopeOf(r),
		RequestID: requestID(r.Context()),
	}
	if e.Action == "" {
		e.Action = rt.Method + " " + rt.Pattern
	}
	if c != nil {
		e.PrincipalID, e.PrincipalName = c.PrincipalID, c.AuditName()
	}
	return e
}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}
