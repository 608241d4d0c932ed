package arm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/jobspec"
	"github.com/wharfml/wharf/resolve"
)

// Endpoints is Wharf's online endpoint control plane, the one `wharf ml
// online-endpoint` drives through the REST API: the ARM routes translate
// onto it, so keys, traffic rules and the router's view of an endpoint
// are kept one way. *http.Server is one.
type Endpoints interface {
	PutOnlineEndpoint(ctx context.Context, ws, name string, req *wharfhttp.OnlineEndpointUpdate) (*wharf.OnlineEndpoint, bool, error)
	DeleteOnlineEndpoint(ctx context.Context, ws, name string) error
	OnlineEndpointKeys(ctx context.Context, ws, name string) (any, error)
	RegenerateOnlineEndpointKey(ctx context.Context, ws, name, keyType string) error
	PutOnlineDeployment(ctx context.Context, ws, ep, name, model string, spec json.RawMessage) (*wharf.OnlineDeployment, bool, error)
	DeleteOnlineDeployment(ctx context.Context, ws, ep, name string) error
	OnlineDeploymentState(ctx context.Context, d *wharf.OnlineDeployment) (state, reason string)
	ScoringURI(workspace, endpoint string) string
}

// Long-running operations: an endpoint's or deployment's PUT and DELETE
// answer at once, naming in Azure-AsyncOperation where the SDK polls the
// outcome. The operation is named by what it changed, not kept: its
// status is read from the resource each time, so a server that restarts,
// or another server over the same store, answers the poll alike.
const (
	operationPut    = "put"
	operationDelete = "delete"
)

// authModes are Azure's authMode for each of Wharf's.
var authModes = map[string]string{wharf.AuthModeKey: "Key", wharf.AuthModeAMLToken: "AMLToken"}

// endpointFields are the request fields of an endpoint's ARM form, by
// the az ml schema's name that Wharf's errors give.
var endpointFields = map[string]string{"auth_mode": "properties.authMode", "traffic": "properties.traffic",
	"mirror_traffic": "properties.mirrorTraffic", "description": "properties.description"}

// armEndpointBody is an online endpoint as the SDK sends it.
type armEndpointBody struct {
	Tags       map[string]string `json:"tags"`
	Properties struct {
		AuthMode      string          `json:"authMode"`
		Description   *string         `json:"description"`
		Traffic       map[string]int  `json:"traffic"`
		MirrorTraffic map[string]int  `json:"mirrorTraffic"`
		Compute       string          `json:"compute"`
		Properties    json.RawMessage `json:"properties"`
	} `json:"properties"`
}

func (h *Handler) putOnlineEndpoint(w http.ResponseWriter, r *http.Request) {
	var body armEndpointBody
	if err := decodeBody(r, &body); err != nil {
		h.WriteError(w, r, err)
		return
	}
	p := body.Properties
	if p.Compute != "" {
		h.WriteError(w, r, wharf.Errorf(wharf.EINVALID, "online endpoint %s: Kubernetes endpoints (compute %q) are not supported; Wharf's online endpoints are managed", r.PathValue("name"), p.Compute).WithField("properties.compute"))
		return
	}
	update := &wharfhttp.OnlineEndpointUpdate{Description: p.Description, Tags: body.Tags, Traffic: p.Traffic, MirrorTraffic: p.MirrorTraffic}
	if p.AuthMode != "" {
		mode := ""
		for wharfMode, azure := range authModes {
			if strings.EqualFold(azure, p.AuthMode) {
				mode = wharfMode
			}
		}
		if mode == "" {
			h.WriteError(w, r, wharf.Errorf(wharf.EINVALID, "online endpoint %s: authMode %q is not supported (allowed: Key, AMLToken)", r.PathValue("name"), p.AuthMode).WithField("properties.authMode"))
			return
		}
		update.AuthMode = &mode
	}
	ws, name := r.PathValue("workspace"), r.PathValue("name")
	if err := wharf.ValidateName("name", name); err != nil {
		h.WriteError(w, r, err)
		return
	}
	e, created, err := h.Endpoints.PutOnlineEndpoint(r.Context(), ws, name, update)
	if err != nil {
		if e, ok := err.(*wharf.Error); ok && endpointFields[e.Field] != "" {
			e.Field = endpointFields[e.Field]
		}
		h.WriteError(w, r, err)
		return
	}
	h.accepted(w, r, created, r.URL.Path, h.endpointJSON(r, e))
}

// accepted answers a long-running PUT or DELETE: 201 for a resource made,
// 200 for one changed, 202 for one removed, with where the SDK polls for
// the outcome (the resource's path, below it operations/<put|delete>).
func (h *Handler) accepted(w http.ResponseWriter, r *http.Request, created bool, resource string, body any) {
	op := operationPut
	status := http.StatusOK
	switch {
	case r.Method == http.MethodDelete:
		op, status = operationDelete, http.StatusAccepted
	case created:
		status = http.StatusCreated
	}
	w.Header().Set("Azure-AsyncOperation", h.base()+resource+"/operations/"+op)
	w.Header().Set("Retry-After", "1")
	if body == nil {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, body)
}

// writeOperation answers a poll of a long-running operation: InProgress
// until it ends, then Succeeded, or Failed with Wharf's reason.
func writeOperation(w http.ResponseWriter, status, reason string) {
	out := map[string]any{"status": status}
	if status == "Failed" {
		out["error"] = map[string]string{"code": "DeploymentFailed", "message": reason}
	}
	if status == "InProgress" {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, http.StatusOK, out)
}

// endpointOperation answers the poll of an endpoint's PUT or DELETE. An
// endpoint is stored whole by its PUT, so a put has succeeded once it is
// there, and a delete once it is not.
func (h *Handler) endpointOperation(w http.ResponseWriter, r *http.Request) {
	ws, name := r.PathValue("workspace"), r.PathValue("name")
	_, err := h.Store.FindOnlineEndpoint(r.Context(), ws, name)
	if err != nil && !wharf.IsNotFound(err) {
		h.WriteError(w, r, err)
		return
	}
	h.operationOutcome(w, r, "online endpoint "+name, err == nil, "Succeeded", "")
}

// operationOutcome answers a poll given whether the resource exists and,
// when it does, its provisioning state.
func (h *Handler) operationOutcome(w http.ResponseWriter, r *http.Request, what string, exists bool, state, reason string) {
	switch op := r.PathValue("operation"); {
	case op == operationDelete && !exists:
		writeOperation(w, "Succeeded", "")
	case op == operationDelete:
		writeOperation(w, "Failed", what+" exists again: it was created after it was deleted")
	case op == operationPut && !exists:
		writeOperation(w, "Failed", what+" no longer exists: it was deleted after it was created")
	case op == operationPut:
		switch state {
		case "Succeeded":
			writeOperation(w, "Succeeded", "")
		case "Failed":
			writeOperation(w, "Failed", what+" failed to start: "+reason)
		default:
			writeOperation(w, "InProgress", "")
		}
	default:
		h.WriteError(w, r, wharf.Errorf(wharf.ENOTFOUND, "no operation %q (operations are put and delete)", op))
	}
}

func (h *Handler) getOnlineEndpoint(w http.ResponseWriter, r *http.Request) {
	e, err := h.Store.FindOnlineEndpoint(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.endpointJSON(r, e))
}

func (h *Handler) listOnlineEndpoints(w http.ResponseWriter, r *http.Request) {
	list, err := h.Store.ListOnlineEndpoints(r.Context(), r.PathValue("workspace"))
	writeList(h, w, r, list, err, h.endpointJSON)
}

func (h *Handler) deleteOnlineEndpoint(w http.ResponseWriter, r *http.Request) {
	if err := h.Endpoints.DeleteOnlineEndpoint(r.Context(), r.PathValue("workspace"), r.PathValue("name")); err != nil {
		h.WriteError(w, r, err)
		return
	}
	h.accepted(w, r, false, r.URL.Path, nil)
}

// listOnlineEndpointKeys answers listKeys with a key endpoint's two keys,
// and token with an aml_token endpoint's token for the caller: Wharf's
// own listKeys answers each in the shape Azure's call does.
func (h *Handler) listOnlineEndpointKeys(w http.ResponseWriter, r *http.Request) {
	out, err := h.Endpoints.OnlineEndpointKeys(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// onlineEndpointToken answers token, the call the SDK makes for an
// aml_token endpoint; a key endpoint has keys, not tokens.
func (h *Handler) onlineEndpointToken(w http.ResponseWriter, r *http.Request) {
	e, err := h.Store.FindOnlineEndpoint(r.Context(), r.PathValue("workspace"), r.PathValue("name"))
	if err == nil && e.AuthMode != wharf.AuthModeAMLToken {
		err = wharf.Errorf(wharf.EINVALID, "online endpoint %s uses %s authentication: it has keys (listKeys), not tokens", e.Name, e.AuthMode)
	}
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	h.listOnlineEndpointKeys(w, r)
}

func (h *Handler) regenerateOnlineEndpointKeys(w http.ResponseWriter, r *http.Request) {
	var body struct {
		KeyType string `json:"keyType"`
	}
	if err := decodeBody(r, &body); err != nil {
		h.WriteError(w, r, err)
		return
	}
	if err := h.Endpoints.RegenerateOnlineEndpointKey(r.Context(), r.PathValue("workspace"), r.PathValue("name"), body.KeyType); err != nil {
		if wharf.ErrorCode(err) == wharf.EINVALID {
			err = wharf.Errorf(wharf.EINVALID, "%s", wharf.ErrorMessage(err)).WithField("keyType")
		}
		h.WriteError(w, r, err)
		return
	}
	// Azure's regenerateKeys is itself long-running; it is done here.
	h.accepted(w, r, false, strings.TrimSuffix(r.URL.Path, "/regenerateKeys"), nil)
}

// endpointJSON is an online endpoint in ARM's shape.
func (h *Handler) endpointJSON(r *http.Request, e *wharf.OnlineEndpoint) armVersion {
	tags := e.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	traffic, mirror := e.Traffic, e.MirrorTraffic
	if traffic == nil {
		traffic = map[string]int{}
	}
	if mirror == nil {
		mirror = map[string]int{}
	}
	scoring := h.Endpoints.ScoringURI(e.Workspace, e.Name)
	return armVersion{
		ID: workspaceID(r, e.Workspace) + "/onlineEndpoints/" + e.Name, Name: e.Name,
		Type: "Microsoft.MachineLearningServices/workspaces/onlineEndpoints", Location: h.location(r, e.Workspace),
		Kind: "Managed", Tags: tags, Identity: map[string]string{"type": "SystemAssigned"},
		Properties: map[string]any{
			"authMode":            authModes[e.AuthMode],
			"description":         e.Description,
			"provisioningState":   e.ProvisioningState,
			"scoringUri":          scoring,
			"swaggerUri":          strings.TrimSuffix(scoring, "/score") + "/swagger.json",
			"traffic":             traffic,
			"mirrorTraffic":       mirror,
			"publicNetworkAccess": "Enabled",
			"properties":          map[string]string{},
		},
		SystemData: systemData("", e.CreatedAt),
	}
}

// location is the workspace's location, which ARM gives each of its
// resources.
func (h *Handler) location(r *http.Request, workspace string) string {
	ws, err := h.Store.FindWorkspace(r.Context(), workspace)
	if err != nil {
		return ""
	}
	return ws.Location
}

// armDeploymentBody is an online deployment as the SDK sends it.
type armDeploymentBody struct {
	Tags map[string]string `json:"tags"`
	SKU  *struct {
		Capacity int `json:"capacity"`
	} `json:"sku"`
	Properties struct {
		EndpointComputeType string `json:"endpointComputeType"`
		Model               string `json:"model"`
		EnvironmentID       string `json:"environmentId"`
		CodeConfiguration   *struct {
			CodeID        string `json:"codeId"`
			ScoringScript string `json:"scoringScript"`
		} `json:"codeConfiguration"`
		InstanceType              string            `json:"instanceType"`
		Description               string            `json:"description"`
		EnvironmentVariables      map[string]string `json:"environmentVariables"`
		AppInsightsEnabled        bool              `json:"appInsightsEnabled"`
		EgressPublicNetworkAccess string            `json:"egressPublicNetworkAccess"`
		RequestSettings           *struct {
			RequestTimeout                   string `json:"requestTimeout"`
			MaxConcurrentRequestsPerInstance int    `json:"maxConcurrentRequestsPerInstance"`
			MaxQueueWait                     string `json:"maxQueueWait"`
		} `json:"requestSettings"`
		LivenessProbe  *armProbe `json:"livenessProbe"`
		ReadinessProbe *armProbe `json:"readinessProbe"`
	} `json:"properties"`
}

// armProbe is a probe's settings in ARM's form, durations in ISO 8601.
type armProbe struct {
	InitialDelay     string `json:"initialDelay"`
	Period           string `json:"period"`
	Timeout          string `json:"timeout"`
	SuccessThreshold int    `json:"successThreshold"`
	FailureThreshold int    `json:"failureThreshold"`
}

// probeSpec is a probe in the az ml schema's form.
func probeSpec(field string, p *armProbe) (map[string]int, error) {
	out := map[string]int{"success_threshold": p.SuccessThreshold, "failure_threshold": p.FailureThreshold}
	for k, v := range map[string]string{"initial_delay": p.InitialDelay, "period": p.Period, "timeout": p.Timeout} {
		ms, err := milliseconds(field+"."+k, v)
		if err != nil {
			return nil, err
		}
		out[k] = ms / 1000
	}
	return out, nil
}

// putOnlineDeployment translates the SDK's deployment into the az ml
// schema's, as `wharf ml online-deployment create` stores it, and
// creates it through Wharf's control plane; the router starts it, and the
// operation's poll reports it serving or failed.
func (h *Handler) putOnlineDeployment(w http.ResponseWriter, r *http.Request) {
	var body armDeploymentBody
	if err := decodeBody(r, &body); err != nil {
		h.WriteError(w, r, err)
		return
	}
	ws, ep, name := r.PathValue("workspace"), r.PathValue("name"), r.PathValue("deployment")
	if err := wharf.ValidateName("name", name); err != nil {
		h.WriteError(w, r, err)
		return
	}
	if _, err := h.Store.FindOnlineEndpoint(r.Context(), ws, ep); err != nil {
		h.WriteError(w, r, err)
		return
	}
	spec, model, err := h.deploymentSpec(r, &body)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	d, created, err := h.Endpoints.PutOnlineDeployment(r.Context(), ws, ep, name, model, spec)
	if err != nil {
		if e, ok := err.(*wharf.Error); ok && e.Field == "model" {
			e.Field = "properties.model"
		}
		h.WriteError(w, r, err)
		return
	}
	h.accepted(w, r, created, r.URL.Path, h.deploymentJSON(r, d))
}

// deploymentSpec is the stored form of the SDK's deployment, and its model
// as a reference Wharf's control plane pins.
func (h *Handler) deploymentSpec(r *http.Request, body *armDeploymentBody) (json.RawMessage, string, error) {
	p := body.Properties
	if t := p.EndpointComputeType; t != "" && !strings.EqualFold(t, "Managed") {
		return nil, "", wharf.Errorf(wharf.EINVALID, "endpointComputeType %q is not supported; Wharf's deployments are managed", t).WithField("properties.endpointComputeType")
	}
	model, err := modelReference(p.Model)
	if err != nil {
		return nil, "", err
	}
	count := 1
	if body.SKU != nil && body.SKU.Capacity > 0 {
		count = body.SKU.Capacity
	}
	egress := strings.ToLower(p.EgressPublicNetworkAccess)
	stored := map[string]any{"instance_type": p.InstanceType, "instance_count": count,
		"environment_variables": p.EnvironmentVariables, "description": p.Description, "tags": body.Tags,
		"app_insights_enabled": p.AppInsightsEnabled, "egress_public_network_access": egress}
	rs := map[string]int{"request_timeout_ms": 5000, "max_concurrent_requests_per_instance": 1}
	if s := p.RequestSettings; s != nil {
		ms, err := milliseconds("properties.requestSettings.requestTimeout", s.RequestTimeout)
		if err != nil {
			return nil, "", err
		}
		if ms > 0 {
			rs["request_timeout_ms"] = ms
		}
		if s.MaxConcurrentRequestsPerInstance > 0 {
			rs["max_concurrent_requests_per_instance"] = s.MaxConcurrentRequestsPerInstance
		}
	}
	stored["request_settings"] = rs
	for k, probe := range map[string]*armProbe{"liveness_probe": p.LivenessProbe, "readiness_probe": p.ReadinessProbe} {
		if probe == nil {
			continue
		}
		field := "properties.livenessProbe"
		if k == "readiness_probe" {
			field = "properties.readinessProbe"
		}
		if stored[k], err = probeSpec(field, probe); err != nil {
			return nil, "", err
		}
	}
	if cc := p.CodeConfiguration; cc != nil && cc.CodeID != "" {
		digest, err := h.codeDigest(r, cc.CodeID, "properties.codeConfiguration.codeId")
		if err != nil {
			return nil, "", err
		}
		if cc.ScoringScript == "" {
			return nil, "", wharf.Errorf(wharf.EINVALID, "codeConfiguration names no scoring script").WithField("properties.codeConfiguration.scoringScript")
		}
		stored["code_configuration"] = map[string]string{"code_digest": digest, "scoring_script": cc.ScoringScript}
	}
	if p.EnvironmentID != "" {
		env, err := h.deploymentEnvironment(r, p.EnvironmentID)
		if err != nil {
			return nil, "", err
		}
		stored["environment"] = env
	}
	b, err := json.Marshal(stored)
	return b, model, err
}

// milliseconds reads an ISO 8601 duration in milliseconds.
func milliseconds(field, iso string) (int, error) {
	if iso == "" {
		return 0, nil
	}
	d, err := jobspec.ParseISODuration(iso)
	if err != nil {
		return 0, wharf.Errorf(wharf.EINVALID, "%s: %v", field, err).WithField(field)
	}
	return int(time.Duration(d) / time.Millisecond), nil
}

// modelReference turns the SDK's model, the ARM id of a model version (or
// an azureml: reference), into the reference Wharf's control plane pins.
func modelReference(id string) (string, error) {
	if id == "" {
		return "", wharf.Errorf(wharf.EINVALID, "a deployment needs a model: register it and name it").WithField("properties.model")
	}
	if strings.HasPrefix(id, "azureml:") && !strings.HasPrefix(id, "azureml://") {
		return id, nil
	}
	name, version, ok := assetOfID(id, "models")
	if !ok {
		return "", wharf.Errorf(wharf.EINVALID, "model %q is not a model version of this workspace (…/workspaces/<ws>/models/<name>/versions/<version>)", id).WithField("properties.model")
	}
	return "azureml:" + name + ":" + version, nil
}

// assetOfID reads name and version from the ARM id of a workspace's asset
// version: …/workspaces/<ws>/<kind>/<name>/versions/<version>.
func assetOfID(id, kind string) (name, version string, ok bool) {
	_, rest, ok := strings.Cut(id, "/workspaces/")
	if !ok {
		return "", "", false
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	if len(parts) != 5 || !strings.EqualFold(parts[1], kind) || parts[3] != "versions" || parts[2] == "" || parts[4] == "" {
		return "", "", false
	}
	return parts[2], parts[4], true
}

// deploymentEnvironment pins a deployment's environment, the ARM id of a
// workspace environment version, as `wharf ml online-deployment create`
// pins a registered one.
func (h *Handler) deploymentEnvironment(r *http.Request, id string) (any, error) {
	const field = "properties.environmentId"
	name, version, ok := assetOfID(id, "environments")
	if !ok {
		return nil, wharf.Errorf(wharf.EINVALID, "environment %q is not an environment version of this workspace (…/workspaces/<ws>/environments/<name>/versions/<version>)", id).WithField(field)
	}
	a, err := h.Store.FindAsset(r.Context(), r.PathValue("workspace"), wharf.AssetEnvironment, name, version)
	if wharf.IsNotFound(err) {
		return nil, wharf.Errorf(wharf.EINVALID, "environment %s:%s not found", name, version).WithField(field)
	} else if err != nil {
		return nil, err
	}
	var env resolve.Environment
	if err := json.Unmarshal(a.Spec, &env); err != nil {
		return nil, fmt.Errorf("environment %s:%s cannot be read: %w", a.Name, a.Version, err)
	}
	return resolve.DeploymentEnvironment(a.Name+":"+a.Version, env), nil
}

// codeDigest is the content of a code version the SDK uploaded, a folder
// snapshot, by its ARM id; field names it in errors.
func (h *Handler) codeDigest(r *http.Request, id, field string) (string, error) {
	a, err := h.codeAsset(r, id, field)
	if err != nil {
		return "", err
	}
	return a.Digest, nil
}

func (h *Handler) getOnlineDeployment(w http.ResponseWriter, r *http.Request) {
	d, err := h.Store.FindOnlineDeployment(r.Context(), r.PathValue("workspace"), r.PathValue("name"), r.PathValue("deployment"))
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.deploymentJSON(r, d))
}

func (h *Handler) listOnlineDeployments(w http.ResponseWriter, r *http.Request) {
	ws, ep := r.PathValue("workspace"), r.PathValue("name")
	if _, err := h.Store.FindOnlineEndpoint(r.Context(), ws, ep); err != nil {
		h.WriteError(w, r, err)
		return
	}
	list, err := h.Store.ListOnlineDeployments(r.Context(), ws, ep)
	writeList(h, w, r, list, err, h.deploymentJSON)
}

func (h *Handler) deleteOnlineDeployment(w http.ResponseWriter, r *http.Request) {
	if err := h.Endpoints.DeleteOnlineDeployment(r.Context(), r.PathValue("workspace"), r.PathValue("name"), r.PathValue("deployment")); err != nil {
		h.WriteError(w, r, err)
		return
	}
	h.accepted(w, r, false, r.URL.Path, nil)
}

// deploymentOperation answers the poll of a deployment's PUT or DELETE: a
// put is in progress while the router starts the deployment's runtime.
func (h *Handler) deploymentOperation(w http.ResponseWriter, r *http.Request) {
	ws, ep, name := r.PathValue("workspace"), r.PathValue("name"), r.PathValue("deployment")
	d, err := h.Store.FindOnlineDeployment(r.Context(), ws, ep, name)
	if err != nil && !wharf.IsNotFound(err) {
		h.WriteError(w, r, err)
		return
	}
	var state, reason string
	if err == nil {
		state, reason = h.Endpoints.OnlineDeploymentState(r.Context(), d)
	}
	h.operationOutcome(w, r, "deployment "+name, err == nil, state, reason)
}

// deploymentSettings is what the ARM form of a deployment reads back from
// its stored spec.
type deploymentSettings struct {
	InstanceType         string            `json:"instance_type"`
	InstanceCount        int               `json:"instance_count"`
	EnvironmentVariables map[string]string `json:"environment_variables"`
	Description          string            `json:"description"`
	Tags                 map[string]string `json:"tags"`
	AppInsightsEnabled   bool              `json:"app_insights_enabled"`
	RequestSettings      struct {
		RequestTimeoutMS                 int `json:"request_timeout_ms"`
		MaxConcurrentRequestsPerInstance int `json:"max_concurrent_requests_per_instance"`
	} `json:"request_settings"`
	CodeConfiguration *struct {
		ScoringScript string `json:"scoring_script"`
	} `json:"code_configuration"`
	Environment *struct {
		Ref string `json:"ref"`
	} `json:"environment"`
}

// deploymentJSON is an online deployment in ARM's shape, with the
// provisioning state the router reports.
func (h *Handler) deploymentJSON(r *http.Request, d *wharf.OnlineDeployment) armVersion {
	var s deploymentSettings
	_ = json.Unmarshal(d.Spec, &s) // a spec of an older form reads as far as it can
	wsID := workspaceID(r, d.Workspace)
	state, reason := h.Endpoints.OnlineDeploymentState(r.Context(), d)
	if s.Tags == nil {
		s.Tags = map[string]string{}
	}
	if s.EnvironmentVariables == nil {
		s.EnvironmentVariables = map[string]string{}
	}
	modelName, modelVersion, _ := strings.Cut(d.Model, ":")
	props := map[string]any{
		"endpointComputeType":  "Managed",
		"model":                wsID + "/models/" + modelName + "/versions/" + modelVersion,
		"instanceType":         s.InstanceType,
		"description":          s.Description,
		"environmentVariables": s.EnvironmentVariables,
		"appInsightsEnabled":   s.AppInsightsEnabled,
		"provisioningState":    state,
		"scaleSettings":        map[string]string{"scaleType": "Default"},
		"requestSettings": map[string]any{
			"requestTimeout":                   fmt.Sprintf("PT%gS", float64(s.RequestSettings.RequestTimeoutMS)/1000),
			"maxConcurrentRequestsPerInstance": max(s.RequestSettings.MaxConcurrentRequestsPerInstance, 1),
		},
		"properties": map[string]string{},
	}
	if reason != "" {
		props["error"] = map[string]string{"code": "DeploymentFailed", "message": reason}
	}
	if s.Environment != nil && s.Environment.Ref != "" {
		props["environmentId"] = environmentID(wsID, "azureml:"+s.Environment.Ref)
	}
	if s.CodeConfiguration != nil {
		props["codeConfiguration"] = map[string]string{"scoringScript": s.CodeConfiguration.ScoringScript}
	}
	return armVersion{
		ID:   wsID + "/onlineEndpoints/" + d.Endpoint + "/deployments/" + d.Name,
		Name: d.Name, Type: "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments",
		Location: h.location(r, d.Workspace), Kind: "Managed", Tags: s.Tags,
		SKU:        map[string]any{"name": "Default", "capacity": max(s.InstanceCount, 1)},
		Properties: props, SystemData: systemData("", d.CreatedAt),
	}
}
