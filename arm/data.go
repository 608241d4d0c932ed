package arm

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/resolve"
)

// Assets is Wharf's creation of asset versions, the one `wharf ml data
// create` uses, which the ARM routes of data translate onto. *http.Server
// is one.
type Assets interface {
	CreateAsset(ctx context.Context, ws, kind, name string, req *wharfhttp.AssetRequest) (*wharf.Asset, error)
}

// dataTypes are the data asset types the SDK sends, as Wharf names them.
var dataTypes = map[string]string{"uri_file": "uri_file", "uri_folder": "uri_folder", "mltable": "mltable"}

// putDataVersion creates a data asset version from the SDK's dataUri,
// pinned, as `wharf ml data create` pins it, to what the datastore path
// holds now: the SDK uploads a local file or folder to the default
// datastore first and names it by that path.
func (h *Handler) putDataVersion(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Properties struct {
			DataType    string            `json:"dataType"`
			DataURI     string            `json:"dataUri"`
			Description string            `json:"description"`
			Tags        map[string]string `json:"tags"`
		} `json:"properties"`
	}
	if err := decodeBody(r, &body); err != nil {
		h.WriteError(w, r, err)
		return
	}
	p := body.Properties
	ws, name, version := r.PathValue("workspace"), r.PathValue("name"), r.PathValue("version")
	typ, ok := dataTypes[strings.ToLower(p.DataType)]
	if !ok {
		h.WriteError(w, r, wharf.Errorf(wharf.EINVALID, "data %s:%s: dataType %q is not supported (allowed: uri_file, uri_folder, mltable)", name, version, p.DataType).WithField("properties.dataType"))
		return
	}
	if p.DataURI == "" {
		h.WriteError(w, r, wharf.Errorf(wharf.EINVALID, "data %s:%s: dataUri is required", name, version).WithField("properties.dataUri"))
		return
	}
	spec, err := json.Marshal(resolve.DataAsset{Type: typ, Path: workspaceRelative(p.DataURI)})
	if err == nil {
		_, err = h.Assets.CreateAsset(r.Context(), ws, wharf.AssetData, name, &wharfhttp.AssetRequest{
			Version: version, Spec: spec, Description: p.Description, Tags: p.Tags})
	}
	if e, ok := err.(*wharf.Error); ok && strings.HasPrefix(e.Field, "spec.path") {
		e.Field = "properties.dataUri"
	}
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	h.assetVersion(wharf.AssetData, h.dataJSON)(w, r)
}

// workspaceRelative drops the workspace from a datastore URI the SDK
// writes in full (azureml://subscriptions/…/workspaces/<ws>/datastores/…),
// leaving the azureml://datastores/<ds>/paths/<path> form jobs name; the
// workspace is the request's.
func workspaceRelative(uri string) string {
	rest, ok := strings.CutPrefix(uri, "azureml://subscriptions/")
	if !ok {
		return uri
	}
	if i := strings.Index(rest, "/datastores/"); i >= 0 {
		return "azureml://" + rest[i+1:]
	}
	return uri
}

func (h *Handler) listDataVersions(w http.ResponseWriter, r *http.Request) {
	list, err := h.Store.ListAssets(r.Context(), r.PathValue("workspace"), wharf.AssetData, r.PathValue("name"))
	if top, perr := strconv.Atoi(r.URL.Query().Get("$top")); perr == nil && top > 0 && top < len(list) {
		list = list[:top]
	}
	writeList(h, w, r, list, err, h.dataJSON)
}

// dataJSON is a data asset version in ARM's shape.
func (h *Handler) dataJSON(r *http.Request, a *wharf.Asset) armVersion {
	spec := dataSpec(a)
	tags := a.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return armVersion{
		ID:   workspaceID(r, a.Workspace) + "/data/" + a.Name + "/versions/" + a.Version,
		Name: a.Version, Type: "Microsoft.MachineLearningServices/workspaces/data/versions",
		Properties: map[string]any{
			"dataType": spec.Type, "dataUri": spec.Path, "description": a.Description, "tags": tags,
			"properties": map[string]string{}, "isAnonymous": false, "isArchived": false,
		},
		SystemData: systemData(a.CreatedBy, a.CreatedAt),
	}
}

// getDataContainer answers a data asset with its latest and next version,
// which the SDK reads to number a version created without one.
func (h *Handler) getDataContainer(w http.ResponseWriter, r *http.Request) {
	list, err := h.Store.ListAssets(r.Context(), r.PathValue("workspace"), wharf.AssetData, r.PathValue("name"))
	if err == nil && len(list) == 0 {
		err = wharf.Errorf(wharf.ENOTFOUND, "data %s not found", r.PathValue("name"))
	}
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.dataContainerJSON(r, list))
}

// listDataContainers lists the workspace's data assets, each with its
// latest version.
func (h *Handler) listDataContainers(w http.ResponseWriter, r *http.Request) {
	list, err := h.Store.ListAssets(r.Context(), r.PathValue("workspace"), wharf.AssetData, "")
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	out := []armVersion{}
	for _, a := range list {
		versions, err := h.Store.ListAssets(r.Context(), a.Workspace, wharf.AssetData, a.Name)
		if err != nil {
			h.WriteError(w, r, err)
			return
		}
		out = append(out, h.dataContainerJSON(r, versions))
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": out})
}

// dataContainerJSON is a data asset, given its versions newest first.
func (h *Handler) dataContainerJSON(r *http.Request, versions []*wharf.Asset) armVersion {
	latest := versions[0]
	next := 1
	for _, v := range versions {
		if n, err := strconv.Atoi(v.Version); err == nil && n >= next {
			next = n + 1
		}
	}
	return armVersion{
		ID: workspaceID(r, latest.Workspace) + "/data/" + latest.Name, Name: latest.Name,
		Type: "Microsoft.MachineLearningServices/workspaces/data",
		Properties: map[string]any{"dataType": dataSpec(latest).Type,
			"latestVersion": latest.Version, "nextVersion": strconv.Itoa(next), "isArchived": false,
			"description": "", "tags": map[string]string{}, "properties": map[string]string{}},
		SystemData: systemData(latest.CreatedBy, latest.CreatedAt),
	}
}

// dataSpec is a data asset's stored definition; one of an older form
// reads as far as it can.
func dataSpec(a *wharf.Asset) resolve.DataAsset {
	var spec resolve.DataAsset
	_ = json.Unmarshal(a.Spec, &spec)
	return spec
}
