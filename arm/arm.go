// Package arm serves the Azure Resource Manager shaped API of Azure Machine
// Learning that the unchanged Azure ML Python SDK v2 (azure-ai-ml's
// MLClient) calls, as a translation onto Wharf's own services: a workspace
// is Wharf's workspace, and so on. Nothing here keeps a resource of its own.
//
// The SDK finds every address it calls from a cloud metadata document
// (ARM_CLOUD_METADATA_URL=<server>/metadata/endpoints): resourceManager is
// the server itself, so that ARM calls, and the token scope
// <resourceManager>/.default, name Wharf.
//
// Like package mlflow, the package knows the protocol, not the server:
// Register puts its routes into Groups, which authenticate, authorize,
// audit and measure each request as every other route of the server, and
// answer their refusals with WriteError, in ARM's error shape.
package arm

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/mlflow"
)

// Workspaces is the path of ARM's workspaces below which every workspace's
// resources are routed; subscription and resource group are accepted and
// ignored, since a workspace's name is unique on a Wharf server.
const Workspaces = "/subscriptions/{subscription}/resourceGroups/{resourceGroup}/providers/Microsoft.MachineLearningServices/workspaces"

// MetadataPath is where the cloud metadata document is served, the path of
// ARM_CLOUD_METADATA_URL.
const MetadataPath = "/metadata/endpoints"

// DiscoveryPath is where the discovery document that workspaces name is
// served; the SDK reads the run-history base from it.
const DiscoveryPath = "/azureml/discovery"

// CloudName is the cloud's name in the metadata document, which the SDK
// keeps in AZUREML_CURRENT_CLOUD.
const CloudName = "Wharf"

// Group is where a Handler registers its routes, below a group's prefix.
// Wharf's http.Server.Group is one.
type Group interface {
	// Route registers h for pattern, "METHOD /path" below the prefix,
	// for callers granted action at the request's scope.
	Route(pattern, action string, h http.HandlerFunc)
	// Upload is Route for a route whose body is streamed content.
	Upload(pattern, action string, h http.HandlerFunc)
	// Authenticated registers h for any caller with a valid token.
	Authenticated(pattern string, h http.HandlerFunc)
	// Public registers h for any caller, without credentials.
	Public(pattern string, h http.HandlerFunc)
	// PublicUpload is Public for a route whose body is streamed
	// content: the Blob API's, which checks its own signatures.
	PublicUpload(pattern string, h http.HandlerFunc)
}

// Jobs runs job documents: Wharf's http.Server is one. The ARM routes
// translate a job onto the document the CLI submits and go through it.
type Jobs interface {
	// SubmitJobDocument resolves and submits a job document as
	// principal by, named name.
	SubmitJobDocument(ctx context.Context, workspace, by, name string, doc json.RawMessage) (*wharf.Job, error)
	// CancelJob cancels a job.
	CancelJob(ctx context.Context, workspace, name string) (*wharf.Job, error)
	// JobLog returns the log of a job's latest attempt, masked, as far
	// as this server holds it.
	JobLog(ctx context.Context, workspace, name string) ([]byte, error)
	// ForwardJobLog answers r from the server that ran the job's latest
	// attempt and holds its log, when that is another server over the
	// same store; false when it did not, and nothing was written.
	ForwardJobLog(w http.ResponseWriter, r *http.Request, workspace, name string) bool
}

// Handler serves the ARM-shaped API of every workspace.
type Handler struct {
	Store wharf.Store
	// Blobs holds the content of datastore files and job outputs that a
	// model is registered from.
	Blobs wharf.BlobStore
	// Endpoints and Models are Wharf's own control plane, which the
	// routes of online endpoints and models translate onto.
	Endpoints Endpoints
	Models    Models
	Assets    Assets
	// Jobs submits, cancels and reads the logs of jobs; nil on a server
	// that does not run them.
	Jobs Jobs
	// URL returns the server's externally reachable base URL: the
	// resourceManager of the metadata document. A function, since a
	// server learns its URL only once it listens.
	URL func() string
	// StorageSuffix is the metadata's suffixes.storage: the SDK uploads
	// datastore content to https://<account>.blob.<StorageSuffix>. Empty
	// means the host and port of URL.
	StorageSuffix string
	Logger        *slog.Logger

	sasOnce sync.Once
	sas     *sasKeys
}

func (h *Handler) log() *slog.Logger {
	if h.Logger == nil {
		return slog.Default()
	}
	return h.Logger
}

func (h *Handler) base() string { return strings.TrimRight(h.URL(), "/") }

// storageSuffix is StorageSuffix or, without one, URL's host and port.
func (h *Handler) storageSuffix() string {
	if h.StorageSuffix != "" {
		return h.StorageSuffix
	}
	u, err := url.Parse(h.base())
	if err != nil {
		return ""
	}
	return u.Host
}

// Register registers the ARM-shaped routes, each group made by group for
// its prefix: the public documents the SDK reads before it holds a token,
// and the workspaces' resources.
func (h *Handler) Register(group func(prefix string) Group) {
	docs := group("/metadata")
	docs.Public("GET /endpoints", h.metadata)
	group("/azureml").Public("GET /discovery", h.discovery)

	ws := group(Workspaces)
	ws.Route("GET /{workspace}", wharf.ActionWorkspaceRead, h.getWorkspace)
	ws.Route("GET /{workspace}/jobs", wharf.ActionJobRead, h.listJobs)
	ws.Route("GET /{workspace}/jobs/{name}", wharf.ActionJobRead, h.getJob)
	const env = "/{workspace}/environments/{name}/versions"
	ws.Route("GET "+env, wharf.ActionEnvironmentRead, h.assetVersions(wharf.AssetEnvironment, h.environmentJSON))
	ws.Route("GET "+env+"/{version}", wharf.ActionEnvironmentRead, h.assetVersion(wharf.AssetEnvironment, h.environmentJSON))
	ws.Route("PUT "+env+"/{version}", wharf.ActionEnvironmentWrite, h.putEnvironment)
	h.registerModels(ws)
	const data = "/{workspace}/data"
	ws.Route("GET "+data, wharf.ActionDataRead, h.listDataContainers)
	ws.Route("GET "+data+"/{name}", wharf.ActionDataRead, h.getDataContainer)
	ws.Route("GET "+data+"/{name}/versions", wharf.ActionDataRead, h.listDataVersions)
	ws.Route("GET "+data+"/{name}/versions/{version}", wharf.ActionDataRead, h.assetVersion(wharf.AssetData, h.dataJSON))
	ws.Route("PUT "+data+"/{name}/versions/{version}", wharf.ActionDataWrite, h.putDataVersion)
	h.registerOnlineEndpoints(ws)
	h.registerJobs(ws, group)
	h.registerDownloads(group)
	ws.Route("GET /{workspace}/components", wharf.ActionComponentRead, h.listComponentContainers)
	const comp = "/{workspace}/components/{name}/versions"
	ws.Route("GET "+comp, wharf.ActionComponentRead, h.assetVersions(wharf.AssetComponent, h.componentJSON))
	ws.Route("GET "+comp+"/{version}", wharf.ActionComponentRead, h.assetVersion(wharf.AssetComponent, h.componentJSON))
	ws.Route("PUT "+comp+"/{version}", wharf.ActionComponentWrite, h.putComponentVersion)
}

// registerModels registers the routes of models and their versions.
func (h *Handler) registerModels(ws Group) {
	const models = "/{workspace}/models"
	ws.Route("GET "+models, wharf.ActionModelRead, h.listModels)
	ws.Route("GET "+models+"/{name}", wharf.ActionModelRead, h.getModel)
	ws.Route("GET "+models+"/{name}/versions", wharf.ActionModelRead, h.listModelVersions)
	ws.Route("GET "+models+"/{name}/versions/{version}", wharf.ActionModelRead, h.getModelVersion)
	ws.Route("PUT "+models+"/{name}/versions/{version}", wharf.ActionModelWrite, h.putModelVersion)
}

// registerOnlineEndpoints registers the routes of online endpoints, their
// deployments and the polls of their long-running operations.
func (h *Handler) registerOnlineEndpoints(ws Group) {
	const ep = "/{workspace}/onlineEndpoints"
	const dep = ep + "/{name}/deployments"
	ws.Route("GET "+ep, wharf.ActionOnlineEndpointRead, h.listOnlineEndpoints)
	ws.Route("GET "+ep+"/{name}", wharf.ActionOnlineEndpointRead, h.getOnlineEndpoint)
	ws.Route("PUT "+ep+"/{name}", wharf.ActionOnlineEndpointWrite, h.putOnlineEndpoint)
	ws.Route("DELETE "+ep+"/{name}", wharf.ActionOnlineEndpointDelete, h.deleteOnlineEndpoint)
	ws.Route("GET "+ep+"/{name}/operations/{operation}", wharf.ActionOnlineEndpointRead, h.endpointOperation)
	ws.Route("POST "+ep+"/{name}/listKeys", wharf.ActionOnlineEndpointKeys, h.listOnlineEndpointKeys)
	ws.Route("POST "+ep+"/{name}/token", wharf.ActionOnlineEndpointKeys, h.onlineEndpointToken)
	ws.Route("POST "+ep+"/{name}/regenerateKeys", wharf.ActionOnlineEndpointWrite, h.regenerateOnlineEndpointKeys)
	ws.Route("GET "+dep, wharf.ActionOnlineEndpointRead, h.listOnlineDeployments)
	ws.Route("GET "+dep+"/{deployment}", wharf.ActionOnlineEndpointRead, h.getOnlineDeployment)
	ws.Route("PUT "+dep+"/{deployment}", wharf.ActionOnlineEndpointWrite, h.putOnlineDeployment)
	ws.Route("DELETE "+dep+"/{deployment}", wharf.ActionOnlineEndpointDelete, h.deleteOnlineDeployment)
	ws.Route("GET "+dep+"/{deployment}/operations/{operation}", wharf.ActionOnlineEndpointRead, h.deploymentOperation)
}

// WriteError answers err in ARM's error shape, {"error":{"code","message"}},
// which azure-core turns into its HttpResponseError (ResourceNotFoundError
// for 404).
func (h *Handler) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	code := wharf.ErrorCode(err)
	if code == wharf.EINTERNAL {
		h.log().Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	out := wharf.Error{Code: code, Message: wharf.ErrorMessage(err)}
	var e *wharf.Error
	if errors.As(err, &e) {
		out.Field, out.Details = e.Field, e.Details
	}
	writeJSON(w, wharfhttp.ErrorStatus(code), wharfhttp.ErrorResponse{Error: out})
}

// writeList answers a list in ARM's shape, {"value": [...]}, each item
// in its ARM form, or err.
func writeList[T any](h *Handler, w http.ResponseWriter, r *http.Request, list []T, err error, armOf func(*http.Request, T) armVersion) {
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	out := make([]armVersion, 0, len(list))
	for _, item := range list {
		out = append(out, armOf(r, item))
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": out})
}

// assetVersion answers a version of an asset of kind in its ARM form.
func (h *Handler) assetVersion(kind string, armOf func(*http.Request, *wharf.Asset) armVersion) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, err := h.Store.FindAsset(r.Context(), r.PathValue("workspace"), kind, r.PathValue("name"), r.PathValue("version"))
		if err != nil {
			h.WriteError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, armOf(r, a))
	}
}

// assetVersions lists the versions of an asset of kind, newest first.
func (h *Handler) assetVersions(kind string, armOf func(*http.Request, *wharf.Asset) armVersion) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		list, err := h.Store.ListAssets(r.Context(), r.PathValue("workspace"), kind, r.PathValue("name"))
		writeList(h, w, r, list, err, armOf)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// metadata serves the cloud metadata document: a list of one cloud whose
// every endpoint is this server. The SDK picks the cloud whose
// resourceManager is part of ARM_CLOUD_METADATA_URL, and drops a cloud
// lacking any of name, portal, resourceManager, loginEndpoint or
// suffixes.storage.
func (h *Handler) metadata(w http.ResponseWriter, r *http.Request) {
	base := h.base()
	writeJSON(w, http.StatusOK, []map[string]any{{
		"name":            CloudName,
		"portal":          base,
		"resourceManager": base + "/",
		"authentication": map[string]any{
			"loginEndpoint": base + "/",
			"audiences":     []string{base + "/"},
			"tenant":        "common",
		},
		"suffixes": map[string]string{"storage": h.storageSuffix()},
	}})
}

// discovery serves the document a workspace's discoveryUrl names; jobs.stream
// takes the run-history base from its "api".
func (h *Handler) discovery(w http.ResponseWriter, r *http.Request) {
	base := h.base()
	writeJSON(w, http.StatusOK, map[string]string{
		"api":             base,
		"history":         base,
		"experimentation": base,
	})
}

// armWorkspace is a workspace as ARM returns it.
type armWorkspace struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Kind       string            `json:"kind"`
	Tags       map[string]string `json:"tags"`
	Properties map[string]any    `json:"properties"`
}

// workspaceID is the ARM id of workspace ws, with the subscription and
// resource group the request named.
func workspaceID(r *http.Request, ws string) string {
	return "/subscriptions/" + r.PathValue("subscription") + "/resourceGroups/" + r.PathValue("resourceGroup") +
		"/providers/Microsoft.MachineLearningServices/workspaces/" + ws
}

func (h *Handler) getWorkspace(w http.ResponseWriter, r *http.Request) {
	ws, err := h.Store.FindWorkspace(r.Context(), r.PathValue("workspace"))
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	tags := ws.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	writeJSON(w, http.StatusOK, armWorkspace{
		ID: workspaceID(r, ws.Name), Name: ws.Name, Type: "Microsoft.MachineLearningServices/workspaces",
		Location: ws.Location, Kind: "Default", Tags: tags,
		Properties: map[string]any{
			"friendlyName":      ws.DisplayName,
			"description":       ws.Description,
			"provisioningState": "Succeeded",
			"discoveryUrl":      h.base() + DiscoveryPath,
			"mlFlowTrackingUri": mlflow.TrackingURI(h.base(), ws.Name),
			"storageAccount":    ws.StorageAccount,
			"keyVault":          ws.KeyVault,
			"workspaceId":       ws.Name,
			"creationTime":      ws.CreatedAt,
		},
	})
}
