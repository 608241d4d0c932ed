// Package http serves Wharf's JSON REST API, the OAuth2 token endpoint and the
// health and metrics endpoints, and mounts the routes of other protocols
// (MLflow's, see package mlflow) as Groups. Every route declares the action it performs;
// the router authenticates the caller, authorizes the action at the route's
// scope, and writes mutating calls to the audit log before any handler code
// can forget to.
package http

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/auth"
	"github.com/wharfml/wharf/federation"
	"github.com/wharfml/wharf/scheduler"
)

// APIAudience is the audience of access tokens for Wharf's control plane.
const APIAudience = "api://wharf"

// JobAudience is the audience of the tokens job steps are given: a token
// for it acts for the job's submitter only within the job's workspace,
// with a job's actions, while the job runs (wharf.AuthorizeCaller).
const JobAudience = "api://wharf/job"

// Server is Wharf's HTTP server.
type Server struct {
	Store wharf.Store
	// Blobs holds artifact content by digest; nil disables artifact routes.
	Blobs wharf.BlobStore
	// CheckDatastore, when set, is asked before an object-storage
	// datastore is saved whether its container or bucket exists and its
	// credentials may use it, so that a mistake is reported, naming the
	// datastore, when it is made rather than when a job first needs it.
	CheckDatastore func(ctx context.Context, d *wharf.Datastore, c *wharf.DatastoreCredentials) error
	// Scheduler runs jobs; without one, job routes answer EUNAVAILABLE.
	Scheduler *scheduler.Scheduler
	// Endpoints serves online endpoints' scoring requests.
	Endpoints EndpointRouter
	// Clusters is the server's side of Ray-backed clusters' drivers;
	// without it their routes answer EUNAVAILABLE.
	Clusters wharf.ClusterDriverService
	Tokens   *auth.Issuer
	// Federation verifies external OIDC tokens presented in place of a
	// secret (workload identity federation).
	Federation *federation.Verifier
	// TenantID identifies this server's directory; it appears in tokens and
	// in the credentials printed for service principals.
	TenantID string
	// URL is the externally reachable base URL, printed in credentials.
	URL    string
	Logger *slog.Logger
	// PeerURL is where the other servers sharing the store reach this
	// one, as recorded on the attempts its scheduler runs: a request for
	// the log of an attempt another server ran is forwarded to it.
	PeerURL string
	// SchedulerPeer, with several servers sharing the store, returns the
	// peer URL of the one that runs the scheduler, or "" when this one
	// does: a Ray driver's requests are forwarded there. Nil answers
	// every request here.
	SchedulerPeer func(ctx context.Context) (string, error)

	// DeploymentPython is the interpreter of batch deployments without
	// an environment of their own (wharf server --python), in place of
	// the one their MLflow model was logged with; "" lets the model's
	// decide. Online deployments get it from serving.Factory.Python.
	DeploymentPython string

	// ReadHeaderTimeout bounds the reading of a request's headers; set it
	// before Listen.
	ReadHeaderTimeout time.Duration
	// BodyReadTimeout bounds the reading of a request's body, counted from
	// the end of its headers: a size-capped body must arrive whole within
	// it, and a streamed one (uploads, scoring requests) must deliver
	// StreamProgressBytes within each such period. Zero disables both.
	BodyReadTimeout time.Duration
	// StreamProgressBytes is the least a streamed body must deliver per
	// BodyReadTimeout to keep its connection.
	StreamProgressBytes int64
	// MaxConnsPerAddress caps the open connections from one remote IP
	// address; set it before Listen. Zero means no cap.
	MaxConnsPerAddress int
	// TLS, when set before Listen, makes the server speak HTTPS only; a
	// plain HTTP request to it is answered 400 and closed.
	TLS *tls.Config

	// Now is the server's clock for sessions, device codes and sign-in
	// limits; nil means time.Now. Tests set it.
	Now func() time.Time
	// SessionIdle and SessionMaxAge override DefaultSessionIdle and
	// DefaultSessionMaxAge when positive.
	SessionIdle, SessionMaxAge time.Duration

	// SignInFailuresPerAddress is how many failed sign-ins one client
	// address may make within SignInWindow (default SignInMaxFailures);
	// zero or less lifts the per-address limit, for servers behind a
	// proxy that is every client's address. Set it before serving.
	SignInFailuresPerAddress int

	sso                            atomic.Pointer[sso]
	accountLimiter, addressLimiter *failureLimiter
	devices                        *deviceCodes
	// reads are the submissions whose inputs are being read.
	reads submissionReads

	mux      *http.ServeMux
	routes   []*Route
	guards   []pathGuard // one per Group
	vhosts   []func(host string) (prefix string, ok bool)
	registry *prometheus.Registry
	metrics  *metrics
	server   *http.Server
	ln       net.Listener

	// endpointSeries keeps samples of online endpoints' series for the
	// studio's charts.
	endpointSeries endpointSeriesStore

	// batchWarm holds the warming of each batch deployment
	// (workspace/endpoint/name), for its provisioning state.
	batchWarm sync.Map
}

// NewServer returns a server with every route registered.
func NewServer(store wharf.Store, tokens *auth.Issuer, tenantID string, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.Default()
	}
	s := &Server{
		Store:    store,
		Tokens:   tokens,
		TenantID: tenantID,
		Logger:   logger,
		mux:      http.NewServeMux(),
		registry: prometheus.NewRegistry(),

		ReadHeaderTimeout:   DefaultReadHeaderTimeout,
		BodyReadTimeout:     DefaultBodyReadTimeout,
		StreamProgressBytes: DefaultStreamProgressBytes,
		MaxConnsPerAddress:  DefaultMaxConnsPerAddress,
	}
	fed, err := federation.NewVerifier("")
	if err != nil {
		panic(err) // without a CA file there is nothing to fail
	}
	if tokens != nil {
		fed.OwnIssuers = []string{tokens.Issuer}
	}
	s.Federation = fed
	s.metrics = newMetrics(s.registry)
	s.SignInFailuresPerAddress = SignInMaxFailures
	s.accountLimiter = &failureLimiter{Window: SignInWindow, Now: s.now}
	s.addressLimiter = &failureLimiter{Window: SignInWindow, Now: s.now}
	s.devices = &deviceCodes{now: s.now}
	s.Endpoints = noRouter{}
	s.registerRoutes()
	return s
}

// Registerer is where other parts of the server register their metrics,
// so /metrics shows them too.
func (s *Server) Registerer() prometheus.Registerer { return s.registry }

// Handler returns the root handler, for tests that serve it themselves.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// serveHTTP puts the request body under its read deadline and lets each
// group refuse dot segments below its prefix before routing (see Group).
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	// Here rather than per route, so that a body sent to no route (the
	// server reads and discards it) has a deadline too.
	s.limitBodyTime(w, r)
	s.routeVirtualHost(r)
	for _, g := range s.guards {
		if g.refuse(w, r) {
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// hasDotSegment reports "." or ".." segments and empty segments ("a//b").
func hasDotSegment(p string) bool {
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, seg := range segs {
		if seg == "." || seg == ".." || (seg == "" && i != len(segs)-1) {
			return true
		}
	}
	return false
}

// Routes returns every registered route, for the authorization matrix test
// and for documentation.
func (s *Server) Routes() []*Route { return s.routes }

// Listen binds addr; Serve then serves on it. Split so callers learn the
// bound port (addr may end in :0) before serving.
func (s *Server) Listen(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	s.ln = ln
	if s.MaxConnsPerAddress > 0 {
		s.ln = limitConnsPerAddress(ln, s.MaxConnsPerAddress, s.metrics.refusedConns.Inc)
	}
	scheme := "http://"
	if s.TLS != nil {
		s.ln = tls.NewListener(s.ln, s.TLS)
		scheme = "https://"
	}
	// The server exists from here on, so a Shutdown that comes before
	// Serve starts still stops it: Serve then returns at once. Bodies get
	// their deadlines per request (see limitBodyTime): uploads may take
	// longer than any fixed ReadTimeout.
	s.server = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.ReadHeaderTimeout,
		IdleTimeout:       120 * time.Second,
		// The listener does TLS with s.TLS, which offers HTTP/1.1
		// alone; an empty map keeps Serve from adding HTTP/2.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		// Failed handshakes and the like, in the server's log.
		ErrorLog: slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
	}
	if s.URL == "" {
		s.URL = scheme + ln.Addr().String()
	}
	return ln.Addr().String(), nil
}

// Serve serves the listener opened by Listen until Shutdown.
func (s *Server) Serve() error {
	if s.server == nil {
		return errors.New("http: Serve called before Listen")
	}
	err := s.server.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting requests and waits for those in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	s.endpointSeries.close()
	if s.server == nil {
		return nil
	}
	return s.server.Shutdown(ctx)
}

func (s *Server) registerRoutes() {
	s.public("GET /healthz", s.handleHealthz)
	s.public("GET /readyz", s.handleReadyz)
	s.public("GET /metrics", s.handleMetrics)
	s.public("POST /oauth2/v2.0/token", s.handleToken)
	s.public("POST /{tenant}/oauth2/v2.0/token", s.handleToken)
	s.public("GET /.well-known/openid-configuration", s.handleOpenIDConfig)
	// Below each tenant name the token endpoint accepts, by name: a
	// {tenant} wildcard would overlap the studio's /static/.
	for _, tenant := range []string{s.TenantID, "common", "organizations"} {
		s.public("GET /"+tenant+"/v2.0/.well-known/openid-configuration", s.handleOpenIDConfig)
	}
	s.public("GET /discovery/v2.0/keys", s.handleJWKS)

	s.authenticated("GET /api/v1/me", jsonAPI(s, s.me))
	s.authenticated("GET /api/v1/roleDefinitions", s.handleListRoleDefinitions)

	s.filtered("GET /api/v1/workspaces", wharf.ActionWorkspaceRead, jsonAPI(s, s.listWorkspaces))
	s.route("GET /api/v1/workspaces/{workspace}", wharf.ActionWorkspaceRead, jsonAPI(s, s.getWorkspace))
	s.route("PUT /api/v1/workspaces/{workspace}", wharf.ActionWorkspaceWrite, jsonAPI(s, s.putWorkspace))
	s.route("DELETE /api/v1/workspaces/{workspace}", wharf.ActionWorkspaceDelete, jsonAPI(s, s.deleteWorkspace))

	s.clusterRoutes()
	s.route("GET /api/v1/workspaces/{workspace}/computes", wharf.ActionComputeRead, jsonAPI(s, s.listComputes))
	s.route("GET /api/v1/workspaces/{workspace}/computes/{name}", wharf.ActionComputeRead, jsonAPI(s, s.getCompute))
	s.route("PUT /api/v1/workspaces/{workspace}/computes/{name}", wharf.ActionComputeWrite, jsonAPI(s, s.putCompute))
	s.route("DELETE /api/v1/workspaces/{workspace}/computes/{name}", wharf.ActionComputeDelete, jsonAPI(s, s.deleteCompute))

	s.route("GET /api/v1/workspaces/{workspace}/datastores", wharf.ActionDatastoreRead, jsonAPI(s, s.listDatastores))
	s.route("GET /api/v1/workspaces/{workspace}/datastores/{name}", wharf.ActionDatastoreRead, jsonAPI(s, s.getDatastore))
	s.route("PUT /api/v1/workspaces/{workspace}/datastores/{name}", wharf.ActionDatastoreWrite, jsonAPI(s, s.putDatastore))
	s.route("DELETE /api/v1/workspaces/{workspace}/datastores/{name}", wharf.ActionDatastoreDelete, jsonAPI(s, s.deleteDatastore))

	s.route("GET /api/v1/workspaces/{workspace}/secrets", wharf.ActionSecretRead, jsonAPI(s, s.listSecrets))
	s.route("GET /api/v1/workspaces/{workspace}/secrets/{name}/versions", wharf.ActionSecretRead, jsonAPI(s, s.listSecretVersions))
	s.route("GET /api/v1/workspaces/{workspace}/secrets/{name}", wharf.ActionSecretValue, noStore(jsonAPI(s, s.getSecret)))
	s.route("PUT /api/v1/workspaces/{workspace}/secrets/{name}", wharf.ActionSecretWrite, jsonAPI(s, s.putSecret))
	s.route("DELETE /api/v1/workspaces/{workspace}/secrets/{name}", wharf.ActionSecretDelete, jsonAPI(s, s.deleteSecret))

	s.route("GET /api/v1/servicePrincipals", wharf.ActionPrincipalRead, jsonAPI(s, s.listPrincipals))
	s.route("POST /api/v1/servicePrincipals", wharf.ActionPrincipalWrite, jsonAPI(s, s.createPrincipal))
	s.route("GET /api/v1/servicePrincipals/{id}", wharf.ActionPrincipalRead, jsonAPI(s, s.getPrincipal))
	s.route("DELETE /api/v1/servicePrincipals/{id}", wharf.ActionPrincipalDelete, jsonAPI(s, s.deletePrincipal))
	s.route("GET /api/v1/servicePrincipals/{id}/credentials", wharf.ActionPrincipalRead, jsonAPI(s, s.listCredentials))
	s.route("POST /api/v1/servicePrincipals/{id}/credentials", wharf.ActionPrincipalWrite, jsonAPI(s, s.resetCredential))
	s.route("DELETE /api/v1/servicePrincipals/{id}/credentials/{keyId}", wharf.ActionPrincipalWrite, jsonAPI(s, s.deleteCredential))
	const fics = "/api/v1/servicePrincipals/{id}/federatedIdentityCredentials"
	s.route("GET "+fics, wharf.ActionFederatedCredentialRead, jsonAPI(s, s.listFederatedCredentials))
	s.route("POST "+fics, wharf.ActionFederatedCredentialWrite, jsonAPI(s, s.createFederatedCredential))
	s.route("GET "+fics+"/{fic}", wharf.ActionFederatedCredentialRead, jsonAPI(s, s.getFederatedCredential))
	s.route("PATCH "+fics+"/{fic}", wharf.ActionFederatedCredentialWrite, jsonAPI(s, s.updateFederatedCredential))
	s.route("DELETE "+fics+"/{fic}", wharf.ActionFederatedCredentialDelete, jsonAPI(s, s.deleteFederatedCredential))

	// Role assignments live under the scope they grant at, so the scope to
	// authorize is always the one in the path.
	for _, prefix := range []string{"/api/v1", "/api/v1/workspaces/{workspace}"} {
		s.route("GET "+prefix+"/roleAssignments", wharf.ActionRoleAssignmentRead, jsonAPI(s, s.listRoleAssignments))
		s.route("POST "+prefix+"/roleAssignments", wharf.ActionRoleAssignmentWrite, jsonAPI(s, s.createRoleAssignment))
		s.route("DELETE "+prefix+"/roleAssignments/{id}", wharf.ActionRoleAssignmentDelete, jsonAPI(s, s.deleteRoleAssignment))
	}

	s.route("GET /api/v1/auditEvents", wharf.ActionAuditRead, jsonAPI(s, s.listAuditEvents))

	s.route("GET /api/v1/workspaces/{workspace}/models", wharf.ActionModelRead, jsonAPI(s, s.listModels))
	s.route("GET /api/v1/workspaces/{workspace}/models/{name}/versions/{version}", wharf.ActionModelRead, jsonAPI(s, s.getModel))
	s.route("GET /api/v1/workspaces/{workspace}/models/{name}/versions/{version}/files", wharf.ActionModelRead, jsonAPI(s, s.listModelFiles))
	s.route("POST /api/v1/workspaces/{workspace}/models/{name}/versions", wharf.ActionModelWrite, jsonAPI(s, s.createModel))

	s.registerUserRoutes()
	s.registerWebRoutes()
	s.registerStudioRoutes()
	s.registerStudioOpsRoutes()
	s.registerAssetRoutes()
	s.registerJobRoutes()
	s.registerScheduleRoutes()
	s.registerEndpointRoutes()
	s.registerBatchRoutes()
}

// checkWorkspaceName validates the workspace named in the path of a route
// that has one, before it becomes an authorization scope or reaches the
// store: "a%2F..%2Fb" is one path segment, and must not be authorized as
// a scope below workspace a.
func checkWorkspaceName(rt *Route, r *http.Request) error {
	if !strings.Contains(rt.Pattern, "{workspace}") {
		return nil
	}
	return wharf.ValidateName("workspace", r.PathValue("workspace"))
}

// scopeOf returns the authorization scope of a request: the workspace in its
// path, or the server scope.
func scopeOf(r *http.Request) string {
	if ws := r.PathValue("workspace"); ws != "" {
		return wharf.WorkspaceScope(ws)
	}
	return wharf.ServerScope
}

func isMutating(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:]), true
	}
	return "", false
}
