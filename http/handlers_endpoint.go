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
	s.route("GET "+base, wharf.ActionOnlineEndpointRead, s.handleListEndpoints)
	s.route("GET "+base+"/{name}", wharf.ActionOnlineEndpointRead, s.handleGetEndpoint)
	s.route("PUT "+base+"/{name}", wharf.ActionOnlineEndpointWrite, s.handlePutEndpoint)
	s.route("DELETE "+base+"/{name}", wharf.ActionOnlineEndpointDelete, s.handleDeleteEndpoint)
	s.route("POST "+base+"/{name}/listKeys", wharf.ActionOnlineEndpointKeys, s.handleListEndpointKeys)
	s.route("POST "+base+"/{name}/regenerateKeys", wharf.ActionOnlineEndpointWrite, s.handleRegenerateEndpointKeys)
	s.route("GET "+base+"/{name}/deployments", wharf.ActionOnlineEndpointRead, s.handleListDeployments)
	s.route("GET "+base+"/{name}/deployments/{deployment}", wharf.ActionOnlineEndpointRead, s.handleGetDeployment)
	s.route("PUT "+base+"/{name}/deployments/{deployment}", wharf.ActionOnlineEndpointWrite, s.handlePutDeployment)
	s.route("DELETE "+base+"/{name}/deployments/{deployment}", wharf.ActionOnlineEndpointDelete, s.handleDeleteDeployment)
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

// endpointRequest is the body of an endpoint creation or update; absent
// fields keep their stored values on update.
type endpointRequest struct {
	AuthMode      *string           `json:"auth_mode"`
	Description   *string           `json:"description"`
	Tags          map[string]string `json:"tags"`
	Traffic       map[string]int    `json:"traffic"`
	MirrorTraffic map[string]int    `json:"mirror_traffic"`
}

func (s *Server) handleListEndpoints(w http.ResponseWriter, r *http.Request) {
	eps, err := s.Store.ListOnlineEndpoints(r.Context(), r.PathValue("workspace"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]endpointJSON, len(eps))
	for i, e := range eps {
		out[i] = s.endpointJSON(e)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGetEndpoint(w http.ResponseWriter, r *http.Request) {
	e, err := s.Store.FindOnlineEndpoint(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.endpointJSON(e))
}

func (s *Server) handlePutEndpoint(w http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("workspace")
	name, err := pathName(r, "name")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req endpointRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	e, err := s.Store.FindOnlineEndpoint(r.Context(), ws, name)
	isNew := wharf.IsNotFound(err)
	switch {
	case isNew:
		e = &wharf.OnlineEndpoint{Workspace: ws, Name: name, ProvisioningState: "Succeeded"}
	case err != nil:
		s.writeError(w, r, err)
		return
	}
	if req.AuthMode != nil {
		if !isNew && *req.AuthMode != e.AuthMode && *req.AuthMode != "" {
			s.writeError(w, r, wharf.Errorf(wharf.EINVALID, "auth_mode cannot change after creation (it is %s)", e.AuthMode).WithField("auth_mode"))
			return
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
		s.writeError(w, r, err)
		return
	}
	created, err := s.Store.PutOnlineEndpoint(r.Context(), e)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if created {
		for _, k := range []string{"primary", "secondary"} {
			if err := s.newEndpointKey(r, ws, name, k); err != nil {
				s.Endpoints.Invalidate(ws, name)
				s.writeError(w, r, err)
				return
			}
		}
	}
	s.Endpoints.Invalidate(ws, name)
	writeJSON(w, createdStatus(created), s.endpointJSON(e))
}

func (s *Server) handleDeleteEndpoint(w http.ResponseWriter, r *http.Request) {
	ws, name := r.PathValue("workspace"), r.PathValue("name")
	if err := s.Store.DeleteOnlineEndpoint(r.Context(), ws, name); err != nil {
		s.writeError(w, r, err)
		return
	}
	// The endpoint is gone: its cached keys go now, not after the key
	// secrets are, so that a failure deleting those leaves no key working.
	s.Endpoints.Invalidate(ws, name)
	for _, k := range []string{"primary", "secondary"} {
		if err := s.Store.DeleteSecret(r.Context(), wharf.WorkspaceScope(ws), wharf.OnlineEndpointKeySecret(name, k)); err != nil && !wharf.IsNotFound(err) {
			s.writeError(w, r, err)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// newEndpointKey stores a fresh random key, 256 bits like Azure's.
func (s *Server) newEndpointKey(r *http.Request, ws, endpoint, kind string) error {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	key := base64.RawURLEncoding.EncodeToString(b)
	_, err := s.Store.SetSecret(r.Context(), wharf.WorkspaceScope(ws), wharf.OnlineEndpointKeySecret(endpoint, kind), []byte(key), "text/plain")
	return err
}

func (s *Server) handleListEndpointKeys(w http.ResponseWriter, r *http.Request) {
	ws, name := r.PathValue("workspace"), r.PathValue("name")
	e, err := s.Store.FindOnlineEndpoint(r.Context(), ws, name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if e.AuthMode == wharf.AuthModeAMLToken {
		tok, exp, err := s.Tokens.Issue(callerID(r), s.TenantID, callerID(r), EndpointAudience(ws, name))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		refresh := time.Now().Add(time.Until(exp) / 2)
		writeJSON(w, http.StatusOK, map[string]any{"accessToken": tok, "tokenType": "Bearer",
			"expiryTimeUtc": exp.Unix(), "refreshAfterTimeUtc": refresh.Unix()})
		return
	}
	out := map[string]string{}
	for _, k := range []string{"primary", "secondary"} {
		sec, err := s.Store.GetSecret(r.Context(), wharf.WorkspaceScope(ws), wharf.OnlineEndpointKeySecret(name, k), "")
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		out[k+"Key"] = string(sec.Value)
	}
	writeJSON(w, http.StatusOK, out)
}

// EndpointAudience is the audience of the tokens an aml_token endpoint
// accepts: a token for one endpoint cannot score on another.
func EndpointAudience(workspace, endpoint string) string {
	return "https://ml.wharf/endpoints/" + workspace + "/" + endpoint
}

func (s *Server) handleRegenerateEndpointKeys(w http.ResponseWriter, r *http.Request) {
	ws, name := r.PathValue("workspace"), r.PathValue("name")
	var req struct {
		KeyType string `json:"key_type"`
	}
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	kind := strings.ToLower(req.KeyType)
	if kind != "primary" && kind != "secondary" {
		s.writeError(w, r, wharf.Errorf(wharf.EINVALID, "key_type must be primary or secondary, got %q", req.KeyType).WithField("key_type"))
		return
	}
	e, err := s.Store.FindOnlineEndpoint(r.Context(), ws, name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if e.AuthMode != wharf.AuthModeKey {
		s.writeError(w, r, wharf.Errorf(wharf.EINVALID, "endpoint %s uses %s authentication; it has no keys", name, e.AuthMode))
		return
	}
	if err := s.newEndpointKey(r, ws, name, kind); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.Endpoints.Invalidate(ws, name)
	w.WriteHeader(http.StatusNoContent)
}

// deploymentRequest is the body of a deployment creation or update.
type deploymentRequest struct {
	Model string          `json:"model"`
	Spec  json.RawMessage `json:"spec"`
}

func (s *Server) handleListDeployments(w http.ResponseWriter, r *http.Request) {
	ds, err := s.Store.ListOnlineDeployments(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ds)
}

// deploymentJSON is a deployment with its provisioning state as the data
// plane reports it.
type deploymentJSON struct {
	*wharf.OnlineDeployment
	ProvisioningState string `json:"provisioning_state"`
	Error             string `json:"error,omitempty"`
}

func (s *Server) deploymentJSON(r *http.Request, d *wharf.OnlineDeployment) deploymentJSON {
	state, err := s.Endpoints.DeploymentStatus(r.Context(), d.Workspace, d.Endpoint, d.Name)
	out := deploymentJSON{OnlineDeployment: d, ProvisioningState: state}
	if err != nil {
		// The reason a deployment failed to start (a model that cannot be
		// loaded, an environment that does not build) is for its owner.
		out.Error = err.Error()
		if out.ProvisioningState == "" {
			out.ProvisioningState = "Failed"
		}
	}
	return out
}

func (s *Server) handleGetDeployment(w http.ResponseWriter, r *http.Request) {
	d, err := s.Store.FindOnlineDeployment(r.Context(), r.PathValue("workspace"), r.PathValue("name"), r.PathValue("deployment"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.deploymentJSON(r, d))
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

// handlePutDeployment pins the model reference to a version, then stores
// the deployment; the router starts serving it when it is ready.
func (s *Server) handlePutDeployment(w http.ResponseWriter, r *http.Request) {
	ws, ep := r.PathValue("workspace"), r.PathValue("name")
	name, err := pathName(r, "deployment")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req deploymentRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	ref := strings.TrimPrefix(req.Model, "azureml:")
	modelName, version := ref, "latest"
	if i := strings.LastIndexAny(ref, ":@"); i > 0 {
		modelName, version = ref[:i], ref[i+1:]
	}
	if modelName == "" {
		s.writeError(w, r, wharf.Errorf(wharf.EINVALID, "model is required (azureml:<name>:<version> or azureml:<name>@latest)").WithField("model"))
		return
	}
	v, err := s.findVersion(r, ws, modelName, version)
	if err != nil {
		if wharf.IsNotFound(err) {
			err = wharf.Errorf(wharf.EINVALID, "model %s not found in workspace %s", req.Model, ws).WithField("model")
		}
		s.writeError(w, r, err)
		return
	}
	if len(req.Spec) == 0 {
		req.Spec = json.RawMessage(`{}`)
	}
	var code struct {
		CodeConfiguration struct {
			CodeDigest string `json:"code_digest"`
		} `json:"code_configuration"`
	}
	if json.Unmarshal(req.Spec, &code) == nil && code.CodeConfiguration.CodeDigest != "" {
		if err := s.checkReferenced(r.Context(), ws, code.CodeConfiguration.CodeDigest, "code_configuration.code"); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	d := &wharf.OnlineDeployment{Workspace: ws, Endpoint: ep, Name: name, Model: v.Name + ":" + strconv.FormatInt(v.Version, 10),
		Spec: req.Spec, ProvisioningState: "Succeeded"}
	created, err := s.Store.PutOnlineDeployment(r.Context(), d)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.Endpoints.Invalidate(ws, ep)
	writeJSON(w, createdStatus(created), s.deploymentJSON(r, d))
}

func (s *Server) handleDeleteDeployment(w http.ResponseWriter, r *http.Request) {
	ws, ep := r.PathValue("workspace"), r.PathValue("name")
	if err := s.Store.DeleteOnlineDeployment(r.Context(), ws, ep, r.PathValue("deployment")); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.Endpoints.Invalidate(ws, ep)
	w.WriteHeader(http.StatusNoContent)
}
