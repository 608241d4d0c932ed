package http

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wharfml/wharf"
)

// registerEndpointRoutes registers the online endpoint control plane.
func (s *Server) registerEndpointRoutes() {
	const base = "/api/v1/workspaces/{workspace}/onlineEndpoints"
	s.route("GET "+base, wharf.ActionOnlineEndpointRead, jsonAPI(s, s.listEndpoints))
	s.route("GET "+base+"/{name}", wharf.ActionOnlineEndpointRead, jsonAPI(s, s.getEndpoint))
	s.route("PUT "+base+"/{name}", wharf.ActionOnlineEndpointWrite, jsonAPI(s, s.putEndpoint))
	s.route("DELETE "+base+"/{name}", wharf.ActionOnlineEndpointDelete, jsonAPI(s, s.deleteEndpoint))
	s.route("POST "+base+"/{name}/listKeys", wharf.ActionOnlineEndpointKeys, jsonAPI(s, s.listEndpointKeys))
	s.route("POST "+base+"/{name}/regenerateKeys", wharf.ActionOnlineEndpointWrite, jsonAPI(s, s.regenerateEndpointKeys))
	s.route("GET "+base+"/{name}/deployments", wharf.ActionOnlineEndpointRead, jsonAPI(s, s.listDeployments))
	s.route("GET "+base+"/{name}/deployments/{deployment}", wharf.ActionOnlineEndpointRead, jsonAPI(s, s.getDeployment))
	s.route("PUT "+base+"/{name}/deployments/{deployment}", wharf.ActionOnlineEndpointWrite, jsonAPI(s, s.putDeployment))
	s.route("DELETE "+base+"/{name}/deployments/{deployment}", wharf.ActionOnlineEndpointDelete, jsonAPI(s, s.deleteDeployment))
	s.route("GET "+base+"/{name}/deployments/{deployment}/logs", wharf.ActionOnlineEndpointRead, s.handleDeploymentLogs)
	// Scoring authenticates with the endpoint's own keys or tokens, so it
	// bypasses the API's authentication; the router checks the caller.
	for _, p := range []string{
		"POST /endpoints/{workspace}/{endpoint}/score",
		"GET /endpoints/{workspace}/{endpoint}/v2/health/live",
		"GET /endpoints/{workspace}/{endpoint}/v2/health/ready",
		"GET /endpoints/{workspace}/{endpoint}/v2/models/{model}",
		"GET /endpoints/{workspace}/{endpoint}/v2/models/{model}/ready",
		"POST /endpoints/{workspace}/{endpoint}/v2/models/{model}/infer",
	} {
		s.endpointRoute(p, s.handleScore)
	}
}

// EndpointRouter is the data plane of online endpoints: it answers
// scoring requests and is told when an endpoint or deployment changes.
type EndpointRouter interface {
	// Score answers one scoring request; it authenticates the caller
	// with the endpoint's keys or tokens itself.
	Score(w http.ResponseWriter, r *http.Request, workspace, endpoint string)
	// Invalidate drops what the router holds about an endpoint.
	Invalidate(workspace, endpoint string)
	// InvalidateWorkspace drops what the router holds about every
	// endpoint of a workspace.
	InvalidateWorkspace(workspace string)
	// DeploymentStatus is a deployment's provisioning state: Creating
	// while its runtime starts, then Succeeded, or Failed with the reason.
	DeploymentStatus(ctx context.Context, workspace, endpoint, name string) (string, error)
	// DeploymentLogs returns the last lines of a deployment's log.
	DeploymentLogs(workspace, endpoint, name string, lines int) ([]byte, error)
}

// noRouter answers scoring requests on a server without a data plane.
type noRouter struct{}

func (noRouter) Score(w http.ResponseWriter, r *http.Request, workspace, endpoint string) {
	writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: wharf.Error{Code: wharf.EUNAVAILABLE,
		Message: "this server does not serve online endpoints"}})
}

func (noRouter) Invalidate(workspace, endpoint string) {}

func (noRouter) InvalidateWorkspace(workspace string) {}

func (noRouter) DeploymentStatus(ctx context.Context, workspace, endpoint, name string) (string, error) {
	return "Succeeded", nil
}

func (noRouter) DeploymentLogs(workspace, endpoint, name string, lines int) ([]byte, error) {
	return nil, nil
}

func (s *Server) handleScore(w http.ResponseWriter, r *http.Request) {
	s.Endpoints.Score(w, r, r.PathValue("workspace"), r.PathValue("endpoint"))
}

// endpointJSON is an endpoint as az ml online-endpoint show prints it.
type endpointJSON struct {
	*wharf.OnlineEndpoint
	ID         string `json:"id"`
	ScoringURI string `json:"scoring_uri"`
	OpenAPIURI string `json:"openapi_uri"`
}

// ScoringURI is where an endpoint answers scoring requests.
func (s *Server) ScoringURI(workspace, endpoint string) string {
	return s.URL + "/endpoints/" + workspace + "/" + endpoint + "/score"
}

func (s *Server) endpointJSON(e *wharf.OnlineEndpoint) endpointJSON {
	return endpointJSON{OnlineEndpoint: e, ID: wharf.WorkspaceScope(e.Workspace) + "/onlineEndpoints/" + e.Name,
		ScoringURI: s.ScoringURI(e.Workspace, e.Name),
		OpenAPIURI: s.URL + "/endpoints/" + e.Workspace + "/" + e.Name + "/swagger.json"}
}

// OnlineEndpointUpdate is the body of an endpoint creation or update;
// absent fields keep their stored values on update.
type OnlineEndpointUpdate struct {
	AuthMode      *string           `json:"auth_mode"`
	Description   *string           `json:"description"`
	Tags          map[string]string `json:"tags"`
	Traffic       map[string]int    `json:"traffic"`
	MirrorTraffic map[string]int    `json:"mirror_traffic"`
}

func (s *Server) listEndpoints(r *http.Request, _ *noBody) (int, []endpointJSON, error) {
	eps, err := s.Store.ListOnlineEndpoints(r.Context(), r.PathValue("workspace"))
	out := make([]endpointJSON, len(eps))
	for i, e := range eps {
		out[i] = s.endpointJSON(e)
	}
	return http.StatusOK, out, err
}

func (s *Server) getEndpoint(r *http.Request, _ *noBody) (int, endpointJSON, error) {
	e, err := s.Store.FindOnlineEndpoint(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
	if err != nil {
		return 0, endpointJSON{}, err
	}
	return http.StatusOK, s.endpointJSON(e), nil
}

func (s *Server) putEndpoint(r *http.Request, req *OnlineEndpointUpdate) (int, endpointJSON, error) {
	name, err := pathName(r, "name")
	if err != nil {
		return 0, endpointJSON{}, err
	}
	e, created, err := s.PutOnlineEndpoint(r.Context(), r.PathValue("workspace"), name, req)
	if err != nil {
		return 0, endpointJSON{}, err
	}
	return createdStatus(created), s.endpointJSON(e), nil
}

// PutOnlineEndpoint creates an endpoint, with fresh keys, or updates one;
// the router drops what it held about it either way.
func (s *Server) PutOnlineEndpoint(ctx context.Context, ws, name string, req *OnlineEndpointUpdate) (*wharf.OnlineEndpoint, bool, error) {
	e, err := s.Store.FindOnlineEndpoint(ctx, ws, name)
	isNew := wharf.IsNotFound(err)
	switch {
	case isNew:
		e = &wharf.OnlineEndpoint{Workspace: ws, Name: name, ProvisioningState: "Succeeded"}
	case err != nil:
		return nil, false, err
	}
	if req.AuthMode != nil {
		if !isNew && *req.AuthMode != e.AuthMode && *req.AuthMode != "" {
			return nil, false, wharf.Errorf(wharf.EINVALID, "auth_mode cannot change after creation (it is %s)", e.AuthMode).WithField("auth_mode")
		}
		e.AuthMode = *req.AuthMode
	}
	if req.Description != nil {
		e.Description = *req.Description
	}
	if req.Tags != nil {
		e.Tags = req.Tags
	}
	if req.Traffic != nil {
		e.Traffic = req.Traffic
	}
	if req.MirrorTraffic != nil {
		e.MirrorTraffic = req.MirrorTraffic
	}
	if err := e.Validate(); err != nil {
		return nil, false, err
	}
	created, err := s.Store.PutOnlineEndpoint(ctx, e)
	if err != nil {
		return nil, false, err
	}
	// Whatever happens to the keys, the router must not keep serving
	// what it held about the endpoint before this change.
	defer s.Endpoints.Invalidate(ws, name)
	if created {
		for _, k := range []string{"primary", "secondary"} {
			if err := s.newEndpointKey(ctx, ws, name, k); err != nil {
				return nil, false, err
			}
		}
	}
	return e, created, nil
}

func (s *Server) deleteEndpoint(r *http.Request, _ *noBody) (int, noBody, error) {
	if err := s.DeleteOnlineEndpoint(r.Context(), r.PathValue("workspace"), r.PathValue("name")); err != nil {
		return 0, noBody{}, err
	}
	return http.StatusNoContent, noBody{}, nil
}

// DeleteOnlineEndpoint removes an endpoint, its deployments and its keys.
func (s *Server) DeleteOnlineEndpoint(ctx context.Context, ws, name string) error {
	if err := s.Store.DeleteOnlineEndpoint(ctx, ws, name); err != nil {
		return err
	}
	// The endpoint is gone: its cached keys go now, not after the key
	// secrets are, so that a failure deleting those leaves no key working.
	s.Endpoints.Invalidate(ws, name)
	for _, k := range []string{"primary", "secondary"} {
		if err := s.Store.DeleteSecret(ctx, wharf.WorkspaceScope(ws), wharf.OnlineEndpointKeySecret(name, k)); err != nil && !wharf.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// newEndpointKey stores a fresh random key, 256 bits like Azure's.
func (s *Server) newEndpointKey(ctx context.Context, ws, endpoint, kind string) error {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	key := base64.RawURLEncoding.EncodeToString(b)
	_, err := s.Store.SetSecret(ctx, wharf.WorkspaceScope(ws), wharf.OnlineEndpointKeySecret(endpoint, kind), []byte(key), "text/plain")
	return err
}

func (s *Server) listEndpointKeys(r *http.Request, _ *noBody) (int, any, error) {
	out, err := s.OnlineEndpointKeys(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, out, nil
}

// OnlineEndpointKeys answers an aml_token endpoint's caller (the context's)
// with a fresh token for it, and a key endpoint's with its two keys, each
// in the shape Azure's listKeys (or token) answers.
func (s *Server) OnlineEndpointKeys(ctx context.Context, ws, name string) (any, error) {
	e, err := s.Store.FindOnlineEndpoint(ctx, ws, name)
	if err != nil {
		return nil, err
	}
	if e.AuthMode == wharf.AuthModeAMLToken {
		var caller string
		if c := wharf.CallerFromContext(ctx); c != nil {
			caller = c.PrincipalID
		}
		tok, exp, err := s.Tokens.Issue(caller, s.TenantID, caller, EndpointAudience(ws, name))
		if err != nil {
			return nil, err
		}
		refresh := time.Now().Add(time.Until(exp) / 2)
		return map[string]any{"accessToken": tok, "tokenType": "Bearer",
			"expiryTimeUtc": exp.Unix(), "refreshAfterTimeUtc": refresh.Unix()}, nil
	}
	out := map[string]string{}
	for _, k := range []string{"primary", "secondary"} {
		sec, err := s.Store.GetSecret(ctx, wharf.WorkspaceScope(ws), wharf.OnlineEndpointKeySecret(name, k), "")
		if err != nil {
			return nil, err
		}
		out[k+"Key"] = string(sec.Value)
	}
	return out, nil
}

// EndpointAudience is the audience of the tokens an aml_token endpoint
// accepts: a token for one endpoint cannot score on another.
func EndpointAudience(workspace, endpoint string) string {
	return "https://ml.wharf/endpoints/" + workspace + "/" + endpoint
}

// regenerateKeysRequest is `az ml online-endpoint regenerate-keys`.
type regenerateKeysRequest struct {
	KeyType string `json:"key_type"`
}

func (s *Server) regenerateEndpointKeys(r *http.Request, req *regenerateKeysRequest) (int, noBody, error) {
	if kind := strings.ToLower(req.KeyType); kind != "primary" && kind != "secondary" {
		return 0, noBody{}, wharf.Errorf(wharf.EINVALID, "key_type must be primary or secondary, got %q", req.KeyType).WithField("key_type")
	}
	if err := s.RegenerateOnlineEndpointKey(r.Context(), r.PathValue("workspace"), r.PathValue("name"), req.KeyType); err != nil {
		return 0, noBody{}, err
	}
	return http.StatusNoContent, noBody{}, nil
}

// RegenerateOnlineEndpointKey replaces a key endpoint's primary or
// secondary key (keyType, in any case); the other keeps working.
func (s *Server) RegenerateOnlineEndpointKey(ctx context.Context, ws, name, keyType string) error {
	kind := strings.ToLower(keyType)
	if kind != "primary" && kind != "secondary" {
		return wharf.Errorf(wharf.EINVALID, "key type must be primary or secondary, got %q", keyType)
	}
	e, err := s.Store.FindOnlineEndpoint(ctx, ws, name)
	if err != nil {
		return err
	}
	if e.AuthMode != wharf.AuthModeKey {
		return wharf.Errorf(wharf.EINVALID, "endpoint %s uses %s authentication; it has no keys", name, e.AuthMode)
	}
	if err := s.newEndpointKey(ctx, ws, name, kind); err != nil {
		return err
	}
	s.Endpoints.Invalidate(ws, name)
	return nil
}

// deploymentRequest is the body of a deployment creation or update.
type deploymentRequest struct {
	Model string          `json:"model"`
	Spec  json.RawMessage `json:"spec"`
}

// listDeployments answers each deployment as getDeployment does, with the
// provisioning state the data plane reports rather than the stored one.
func (s *Server) listDeployments(r *http.Request, _ *noBody) (int, []deploymentJSON, error) {
	ds, err := s.Store.ListOnlineDeployments(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
	out := make([]deploymentJSON, len(ds))
	for i, d := range ds {
		out[i] = s.deploymentJSON(r, d)
	}
	return http.StatusOK, out, err
}

// deploymentJSON is a deployment with its provisioning state as the data
// plane reports it.
type deploymentJSON struct {
	*wharf.OnlineDeployment
	ProvisioningState string `json:"provisioning_state"`
	Error             string `json:"error,omitempty"`
}

func (s *Server) deploymentJSON(r *http.Request, d *wharf.OnlineDeployment) deploymentJSON {
	state, reason := s.OnlineDeploymentState(r.Context(), d)
	return deploymentJSON{OnlineDeployment: d, ProvisioningState: state, Error: reason}
}

// OnlineDeploymentState is a deployment's provisioning state as the data
// plane reports it, Creating while its runtime starts, then Succeeded, or
// Failed with the reason it could not start.
func (s *Server) OnlineDeploymentState(ctx context.Context, d *wharf.OnlineDeployment) (state, reason string) {
	state, err := s.Endpoints.DeploymentStatus(ctx, d.Workspace, d.Endpoint, d.Name)
	if err != nil {
		// The reason a deployment failed to start (a model that cannot be
		// loaded, an environment that does not build) is for its owner.
		reason = err.Error()
		if state == "" {
			state = "Failed"
		}
	}
	return state, reason
}

func (s *Server) getDeployment(r *http.Request, _ *noBody) (int, deploymentJSON, error) {
	d, err := s.Store.FindOnlineDeployment(r.Context(), r.PathValue("workspace"), r.PathValue("name"), r.PathValue("deployment"))
	if err != nil {
		return 0, deploymentJSON{}, err
	}
	return http.StatusOK, s.deploymentJSON(r, d), nil
}

func (s *Server) handleDeploymentLogs(w http.ResponseWriter, r *http.Request) {
	ws, ep, name := r.PathValue("workspace"), r.PathValue("name"), r.PathValue("deployment")
	if _, err := s.Store.FindOnlineDeployment(r.Context(), ws, ep, name); err != nil {
		s.writeError(w, r, err)
		return
	}
	lines := 200
	if v := r.URL.Query().Get("lines"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			s.writeError(w, r, wharf.Errorf(wharf.EINVALID, "lines must be a positive integer").WithField("lines"))
			return
		}
		lines = n
	}
	b, err := s.Endpoints.DeploymentLogs(ws, ep, name, lines)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(b)
}

// modelRef splits a deployment's model reference, azureml:<name>:<version>
// or azureml:<name>@latest; a bare name means its latest version.
func modelRef(ref string) (name, version string) {
	ref = strings.TrimPrefix(ref, "azureml:")
	if i := strings.LastIndexAny(ref, ":@"); i > 0 {
		return ref[:i], ref[i+1:]
	}
	return ref, "latest"
}

// putDeployment pins the model reference to a version, then stores the
// deployment; the router starts serving it when it is ready.
func (s *Server) putDeployment(r *http.Request, req *deploymentRequest) (int, deploymentJSON, error) {
	name, err := pathName(r, "deployment")
	if err != nil {
		return 0, deploymentJSON{}, err
	}
	d, created, err := s.PutOnlineDeployment(r.Context(), r.PathValue("workspace"), r.PathValue("name"), name, req.Model, req.Spec)
	if err != nil {
		return 0, deploymentJSON{}, err
	}
	return createdStatus(created), s.deploymentJSON(r, d), nil
}

// PutOnlineDeployment creates or replaces a deployment of endpoint ep: its
// model reference (azureml:<name>:<version>, azureml:<name>@latest or a
// bare name) is pinned to a version, and spec is stored as the az ml
// schema has it (see wharf.OnlineDeployment). The router starts serving
// it when it is ready.
func (s *Server) PutOnlineDeployment(ctx context.Context, ws, ep, name, model string, spec json.RawMessage) (*wharf.OnlineDeployment, bool, error) {
	modelName, version := modelRef(model)
	if modelName == "" {
		return nil, false, wharf.Errorf(wharf.EINVALID, "model is required (azureml:<name>:<version> or azureml:<name>@latest)").WithField("model")
	}
	v, err := s.findVersionCtx(ctx, ws, modelName, version)
	if err != nil {
		if wharf.IsNotFound(err) {
			err = wharf.Errorf(wharf.EINVALID, "model %s not found in workspace %s", model, ws).WithField("model")
		}
		return nil, false, err
	}
	if len(spec) == 0 {
		spec = json.RawMessage(`{}`)
	}
	var code struct {
		CodeConfiguration struct {
			CodeDigest string `json:"code_digest"`
			CodePath   string `json:"code_path"`
		} `json:"code_configuration"`
	}
	if json.Unmarshal(spec, &code) == nil && code.CodeConfiguration.CodeDigest != "" {
		if err := s.checkReferenced(ctx, ws, code.CodeConfiguration.CodeDigest, "code_configuration.code"); err != nil {
			return nil, false, err
		}
		if err := s.publishCode(ctx, ws, code.CodeConfiguration.CodePath, code.CodeConfiguration.CodeDigest); err != nil {
			return nil, false, err
		}
	}
	d := &wharf.OnlineDeployment{Workspace: ws, Endpoint: ep, Name: name, Model: v.Name + ":" + v.AzureVersion(),
		Spec: spec, ProvisioningState: "Succeeded"}
	created, err := s.Store.PutOnlineDeployment(ctx, d)
	if err != nil {
		return nil, false, err
	}
	s.Endpoints.Invalidate(ws, ep)
	return d, created, nil
}

func (s *Server) deleteDeployment(r *http.Request, _ *noBody) (int, noBody, error) {
	if err := s.DeleteOnlineDeployment(r.Context(), r.PathValue("workspace"), r.PathValue("name"), r.PathValue("deployment")); err != nil {
		return 0, noBody{}, err
	}
	return http.StatusNoContent, noBody{}, nil
}

// DeleteOnlineDeployment removes a deployment that takes no traffic.
func (s *Server) DeleteOnlineDeployment(ctx context.Context, ws, ep, name string) error {
	if err := s.Store.DeleteOnlineDeployment(ctx, ws, ep, name); err != nil {
		return err
	}
	s.Endpoints.Invalidate(ws, ep)
	return nil
}
