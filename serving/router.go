// Package serving is the data plane of online endpoints: it authenticates
// scoring requests with the endpoint's keys or tokens, picks a deployment
// by the header or the traffic split, mirrors a share of traffic, enforces
// each deployment's concurrency and time limits, and hands the request to
// the deployment's runtime (a native Go model, or Python workers).
package serving

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/auth"
)

// DeploymentHeader pins a request to a deployment, bypassing the traffic
// split; deployments with 0% traffic are reachable this way.
const DeploymentHeader = "azureml-model-deployment"

// maxBody bounds a scoring request, as Azure ML's 1.5 MB limit does.
const maxBody = 1536 * 1024

// Router serves every online endpoint of a server.
type Router struct {
	Store wharf.Store
	// Runtimes starts the runtime of a deployment.
	Runtimes RuntimeFactory
	// Tokens verifies aml_token credentials.
	Tokens *auth.Issuer
	// Audience returns the token audience of an endpoint.
	Audience func(workspace, endpoint string) string
	// Blobs and CollectDir store what deployments with a data_collector
	// collect; without Blobs nothing is collected.
	Blobs      wharf.BlobStore
	CollectDir string
	// Instance names this server's files of collected data, unique
	// among the servers sharing a store ("data" when empty).
	Instance string
	Logger   *slog.Logger
	// Peers, when set, is told of every Invalidate and
	// InvalidateWorkspace (endpoint "" for a whole workspace), to pass on
	// to the other servers sharing the store, whose routers hear of it
	// through Changed.
	Peers func(workspace, endpoint string)

	mu        sync.Mutex
	endpoints map[string]*endpointState
	metrics   *metrics
}

// NewRouter returns a router whose metrics are registered on reg.
func NewRouter(store wharf.Store, runtimes RuntimeFactory, tokens *auth.Issuer, reg prometheus.Registerer, logger *slog.Logger) *Router {
	if logger == nil {
		logger = slog.Default()
	}
	return &Router{Store: store, Runtimes: runtimes, Tokens: tokens, Logger: logger,
		endpoints: map[string]*endpointState{}, metrics: newMetrics(reg)}
}

// endpointState is what the router holds about one endpoint: its
// definition and keys as last read, and a handle per deployment.
// A state is never changed once built (requests read it without a lock);
// an Invalidate marks it stale and the next request builds its successor.
type endpointState struct {
	ep          *wharf.OnlineEndpoint
	keys        [][]byte
	deployments map[string]*deploymentState
	stale       bool // guarded by Router.mu
}

func key(workspace, endpoint string) string { return workspace + "/" + endpoint }

// Invalidate makes the next request re-read the endpoint. Deployments that
// did not change keep their running runtime, so a traffic shift never
// restarts a model or fails a request.
func (rt *Router) Invalidate(workspace, endpoint string) {
	rt.markStale(func(k string) bool { return k == key(workspace, endpoint) })
	if rt.Peers != nil {
		rt.Peers(workspace, endpoint)
	}
}

// InvalidateWorkspace makes the next request to any endpoint of the
// workspace re-read it: a deleted workspace takes its endpoints and their
// keys along, and keys cached before must not outlive them.
func (rt *Router) InvalidateWorkspace(workspace string) {
	rt.markStale(func(k string) bool { return strings.HasPrefix(k, workspace+"/") })
	if rt.Peers != nil {
		rt.Peers(workspace, "")
	}
}

// Changed is told that another server changed an endpoint (endpoint ""
// for every endpoint of the workspace): the next request here re-reads
// it, and the endpoint's deployments are read, and any new or changed
// runtime started, at once rather than on that request.
func (rt *Router) Changed(workspace, endpoint string) {
	if endpoint == "" {
		rt.markStale(func(k string) bool { return strings.HasPrefix(k, workspace+"/") })
		return
	}
	rt.markStale(func(k string) bool { return k == key(workspace, endpoint) })
	go func() {
		if _, err := rt.state(context.Background(), workspace, endpoint); err != nil && !wharf.IsNotFound(err) {
			rt.Logger.Warn("reading a changed endpoint", "endpoint", endpoint, "err", err)
		}
	}()
}

// StartAll reads every online endpoint and starts its deployments'
// runtimes, ahead of their first requests: for a server that joins others
// sharing the store, so that it can score as soon as a load balancer
// sends it traffic.
func (rt *Router) StartAll(ctx context.Context) error {
	workspaces, err := rt.Store.ListWorkspaces(ctx)
	if err != nil {
		return err
	}
	for _, w := range workspaces {
		eps, err := rt.Store.ListOnlineEndpoints(ctx, w.Name)
		if err != nil {
			return err
		}
		for _, ep := range eps {
			if _, err := rt.state(ctx, w.Name, ep.Name); err != nil && !wharf.IsNotFound(err) {
				rt.Logger.Warn("starting an endpoint's deployments", "workspace", w.Name, "endpoint", ep.Name, "err", err)
			}
		}
	}
	return nil
}

// InvalidateAll makes the next request to every endpoint re-read it: for
// changes other servers made that this one may not have heard of.
func (rt *Router) InvalidateAll() {
	rt.markStale(func(string) bool { return true })
}

// markStale marks stale the endpoints whose keys match.
func (rt *Router) markStale(match func(key string) bool) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for k, st := range rt.endpoints {
		if match(k) {
			st.stale = true
		}
	}
}

// FlushCollected files what the data collectors of an endpoint's running
// deployments hold, so that a monitor about to read the collected data
// sees every request answered so far.
func (rt *Router) FlushCollected(workspace, endpoint string) {
	rt.mu.Lock()
	st := rt.endpoints[key(workspace, endpoint)]
	rt.mu.Unlock()
	if st == nil {
		return
	}
	for _, d := range st.deployments {
		if d.collector != nil {
			d.collector.flush()
		}
	}
}

// Close stops every runtime.
func (rt *Router) Close() {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, st := range rt.endpoints {
		for _, d := range st.deployments {
			d.retire()
		}
	}
	rt.endpoints = map[string]*endpointState{}
}

// state returns an endpoint's current state, reading it again after an
// Invalidate. Deployments whose definition changed get a new runtime; the
// old one keeps serving until the new one is ready, then drains.
func (rt *Router) state(ctx context.Context, workspace, endpoint string) (*endpointState, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	k := key(workspace, endpoint)
	st := rt.endpoints[k]
	if st != nil && !st.stale {
		return st, nil
	}
	ep, err := rt.Store.FindOnlineEndpoint(ctx, workspace, endpoint)
	if err != nil {
		if st != nil {
			for _, d := range st.deployments {
				d.retire()
			}
			delete(rt.endpoints, k)
		}
		return nil, err
	}
	deps, err := rt.Store.ListOnlineDeployments(ctx, workspace, endpoint)
	if err != nil {
		return nil, err
	}
	var keys [][]byte
	if ep.AuthMode == wharf.AuthModeKey {
		for _, kind := range []string{"primary", "secondary"} {
			sec, err := rt.Store.GetSecret(ctx, wharf.WorkspaceScope(workspace), wharf.OnlineEndpointKeySecret(endpoint, kind), "")
			if err != nil {
				return nil, err
			}
			keys = append(keys, sec.Value)
		}
	}
	next := &endpointState{ep: ep, keys: keys, deployments: map[string]*deploymentState{}}
	for _, d := range deps {
		var prev *deploymentState
		if st != nil {
			prev = st.deployments[d.Name]
		}
		if prev != nil && prev.def.UpdatedAt.Equal(d.UpdatedAt) {
			next.deployments[d.Name] = prev
			continue
		}
		ds, err := newDeploymentState(d, rt.metrics, workspace)
		if err != nil {
			return nil, err
		}
		if rt.Blobs != nil {
			if ds.collector, err = newCollector(d.Spec, rt.Store, rt.Blobs, rt.CollectDir, rt.Instance, workspace, d, rt.Logger); err != nil {
				return nil, fmt.Errorf("deployment %s: data_collector: %w", d.Name, err)
			}
		}
		ds.start(rt, prev)
		next.deployments[d.Name] = ds
	}
	if st != nil {
		for name, d := range st.deployments {
			if next.deployments[name] == nil {
				d.retire()
			}
		}
	}
	rt.endpoints[k] = next
	return next, nil
}

// Score answers one scoring request.
func (rt *Router) Score(w http.ResponseWriter, r *http.Request, workspace, endpoint string) {
	start := time.Now()
	st, err := rt.state(r.Context(), workspace, endpoint)
	if err != nil {
		if wharf.IsNotFound(err) {
			writeError(w, http.StatusNotFound, "endpoint %s not found", endpoint)
			return
		}
		rt.Logger.Error("loading endpoint", "endpoint", endpoint, "err", err)
		writeError(w, http.StatusServiceUnavailable, "endpoint %s is not available", endpoint)
		return
	}
	switch err := rt.authenticate(r, st, workspace, endpoint); {
	case errors.Is(err, errUnauthenticated):
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+endpoint+`"`)
		writeError(w, http.StatusUnauthorized, "missing or invalid credential for endpoint %s", endpoint)
		return
	case errors.Is(err, errNotAllowed):
		writeError(w, http.StatusForbidden, "the principal of this token may not score on endpoint %s (it needs %s over %s)",
			endpoint, wharf.ActionOnlineEndpointScore, wharf.WorkspaceScope(workspace))
		return
	case err != nil:
		rt.Logger.Error("checking a scoring token's principal", "endpoint", endpoint, "err", err)
		writeError(w, http.StatusServiceUnavailable, "endpoint %s cannot check credentials now", endpoint)
		return
	}
	path := r.PathValue("model")
	if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/v2/health/") {
		rt.health(w, r, st)
		return
	}
	pinned := r.Header.Get(DeploymentHeader)
	d, err := st.pick(pinned)
	if err != nil {
		writeError(w, http.StatusNotFound, "%s", err.Error())
		return
	}
	if r.Method == http.MethodGet {
		rt.modelMetadata(w, d, path)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "request body exceeds %d bytes", maxBody)
		return
	}
	if pinned == "" {
		if m := st.mirrorTarget(); m != nil {
			go rt.mirror(m, body, r.URL.Path)
		}
	}
	status := d.serve(r.Context(), w, body, r.URL.Path)
	rt.metrics.observe(workspace, endpoint, d.def.Name, status, time.Since(start))
}

// Outcomes of authenticate other than success and store failures.
var (
	errUnauthenticated = errors.New("missing or invalid credential")
	errNotAllowed      = errors.New("the principal may not score")
)

// authenticate checks the bearer credential: one of the endpoint's keys,
// compared in constant time, or a token minted for this endpoint whose
// principal still exists and still holds the score action over the
// endpoint's workspace. A token outlives neither its principal nor the
// role that let it score: both are looked up on every request, as the
// API does, since an hour-long token is too long a window to leave open.
func (rt *Router) authenticate(r *http.Request, st *endpointState, workspace, endpoint string) error {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return errUnauthenticated
	}
	if st.ep.AuthMode == wharf.AuthModeKey {
		for _, k := range st.keys {
			if len(k) > 0 && subtle.ConstantTimeCompare([]byte(tok), k) == 1 {
				return nil
			}
		}
		return errUnauthenticated
	}
	if rt.Tokens == nil || rt.Audience == nil {
		return errUnauthenticated
	}
	claims, err := rt.Tokens.Verify(tok, rt.Audience(workspace, endpoint))
	if err != nil {
		return errUnauthenticated
	}
	return rt.mayScore(r.Context(), claims.AppID, workspace)
}

// mayScore checks that the principal of a scoring token (a service
// principal's app id, or the object id of a user who fetched the token)
// exists and holds the score action over the workspace.
func (rt *Router) mayScore(ctx context.Context, appID, workspace string) error {
	sp, err := rt.Store.FindServicePrincipal(ctx, appID)
	switch {
	case err == nil && sp.AppID == appID:
	case err != nil && !wharf.IsNotFound(err):
		return err
	default:
		u, err := rt.Store.FindUser(ctx, appID)
		if wharf.IsNotFound(err) || (err == nil && u.ObjectID != appID) {
			return errUnauthenticated
		} else if err != nil {
			return err
		}
	}
	as, err := rt.Store.ListRoleAssignments(ctx, wharf.RoleAssignmentFilter{PrincipalID: appID})
	if err != nil {
		return err
	}
	if !wharf.Authorize(as, wharf.ActionOnlineEndpointScore, wharf.WorkspaceScope(workspace)) {
		return errNotAllowed
	}
	return nil
}

// pick returns the pinned deployment, or one drawn by the traffic split.
func (st *endpointState) pick(pinned string) (*deploymentState, error) {
	if pinned != "" {
		d := st.deployments[pinned]
		if d == nil {
			return nil, fmt.Errorf("deployment %s not found in endpoint %s", pinned, st.ep.Name)
		}
		return d, nil
	}
	n := rand.IntN(100)
	for _, name := range sortedNames(st.ep.Traffic) {
		p := st.ep.Traffic[name]
		if n < p {
			if d := st.deployments[name]; d != nil {
				return d, nil
			}
		}
		n -= p
	}
	return nil, fmt.Errorf("endpoint %s sends no traffic to any deployment; set traffic or name one in the %s header",
		st.ep.Name, DeploymentHeader)
}

// mirrorTarget draws whether this request is mirrored, and where.
func (st *endpointState) mirrorTarget() *deploymentState {
	for name, p := range st.ep.MirrorTraffic {
		if p > 0 && rand.IntN(100) < p {
			return st.deployments[name]
		}
	}
	return nil
}

// mirror sends a copy of a request to the shadow deployment; its answer
// is discarded and its failures never reach the caller.
func (rt *Router) mirror(d *deploymentState, body []byte, path string) {
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
	defer cancel()
	status := d.serve(ctx, discard{}, body, path)
	rt.metrics.mirrored.WithLabelValues(d.workspace, d.def.Endpoint, d.def.Name, strconv.Itoa(status)).Inc()
}

// health answers the Open Inference Protocol's liveness and readiness.
func (rt *Router) health(w http.ResponseWriter, r *http.Request, st *endpointState) {
	if strings.HasSuffix(r.URL.Path, "/live") {
		writeJSON(w, http.StatusOK, map[string]bool{"live": true})
		return
	}
	for name, p := range st.ep.Traffic {
		if d := st.deployments[name]; p > 0 && d != nil && d.ready() {
			writeJSON(w, http.StatusOK, map[string]bool{"ready": true})
			return
		}
	}
	writeJSON(w, http.StatusServiceUnavailable, map[string]bool{"ready": false})
}

func (rt *Router) modelMetadata(w http.ResponseWriter, d *deploymentState, model string) {
	name, version, _ := strings.Cut(d.def.Model, ":")
	if model != "" && model != name && model != d.def.Name {
		writeError(w, http.StatusNotFound, "model %s is not served here (this deployment serves %s)", model, name)
		return
	}
	if strings.HasSuffix(model, "/ready") || d.ready() {
		status := http.StatusOK
		if !d.ready() {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, map[string]any{"name": name, "versions": []string{version}, "platform": d.platform(),
			"ready": d.ready()})
		return
	}
	writeJSON(w, http.StatusServiceUnavailable, map[string]any{"name": name, "ready": false})
}

// discard is the response writer of mirrored requests.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) WriteHeader(int)             {}

// DeploymentLogs returns the last lines of a deployment's log.
func (rt *Router) DeploymentLogs(workspace, endpoint, name string, lines int) ([]byte, error) {
	f, ok := rt.Runtimes.(*Factory)
	if !ok {
		return nil, nil
	}
	b, err := os.ReadFile(filepath.Join(f.Dir, "logs", workspace, endpoint, name+".log"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	all := strings.SplitAfter(string(b), "\n")
	if len(all) > lines+1 {
		all = all[len(all)-lines-1:]
	}
	return []byte(strings.Join(all, "")), nil
}
