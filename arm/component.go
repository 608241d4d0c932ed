package arm

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/resolve"
)

// putComponentVersion registers a command component version from the
// SDK's componentSpec, read and stored as `wharf ml component create`
// stores a component file: its environment must exist, its code is the
// code version the SDK uploaded. The componentSpec is kept as sent, which
// the SDK reads back.
func (h *Handler) putComponentVersion(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Properties struct {
			ComponentSpec map[string]any    `json:"componentSpec"`
			Description   string            `json:"description"`
			Tags          map[string]string `json:"tags"`
			IsAnonymous   bool              `json:"isAnonymous"`
		} `json:"properties"`
	}
	if err := decodeBody(r, &body); err != nil {
		h.WriteError(w, r, err)
		return
	}
	const field = "properties.componentSpec"
	ws, name, version := r.PathValue("workspace"), r.PathValue("name"), r.PathValue("version")
	spec := body.Properties.ComponentSpec
	if spec == nil {
		h.WriteError(w, r, wharf.Errorf(wharf.EINVALID, "component %s:%s: componentSpec is required", name, version).WithField(field))
		return
	}
	anonymous := name == wharf.AnonymousComponent
	if body.Properties.IsAnonymous && !anonymous {
		h.WriteError(w, r, wharf.Errorf(wharf.EINVALID, "component %s:%s: an anonymous component is registered as %s/versions/<hash>",
			name, version, wharf.AnonymousComponent).WithField("properties.isAnonymous"))
		return
	}
	if anonymous {
		// The version is the SDK's hash of the step's interface and
		// code, the same for the same step: the version there is
		// that step, whatever name the step carries this time.
		if _, err := h.Store.FindAsset(r.Context(), ws, wharf.AssetComponent, name, version); err == nil {
			h.assetVersion(wharf.AssetComponent, h.componentJSON)(w, r)
			return
		} else if !wharf.IsNotFound(err) {
			h.WriteError(w, r, err)
			return
		}
	} else {
		for k, want := range map[string]string{"name": name, "version": version} {
			if got, ok := spec[k]; ok && got != want {
				h.WriteError(w, r, wharf.Errorf(wharf.EINVALID, "component %s:%s: componentSpec names %s %v, the path %s", name, version, k, got, want).WithField(field+"."+k))
				return
			}
			spec[k] = want
		}
	}
	sent, err := json.Marshal(spec)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	// The SDK's own bookkeeping (_source) is not part of the component.
	for k := range spec {
		if strings.HasPrefix(k, "_") || k == "$schema" {
			delete(spec, k)
		}
	}
	var digest string
	if code, ok := spec["code"]; ok {
		ref, _ := code.(string)
		if digest, err = h.codeDigest(r, ref, field+".code"); err != nil {
			h.WriteError(w, r, err)
			return
		}
		delete(spec, "code")
	}
	if anonymous {
		// Checked as a component of the path's name and version: the
		// step's own name is kept in the componentSpec sent.
		spec["name"], spec["version"] = name, version
	}
	doc, err := json.Marshal(spec)
	var stored *resolve.Component
	if err == nil {
		res := &resolve.Resolver{Store: h.Store, Blobs: h.Blobs}
		stored, err = res.CommandComponent(r.Context(), ws, doc)
	}
	if e, ok := err.(*wharf.Error); ok {
		prefixFields(e, field)
	}
	if err == nil {
		stored.Document = sent
		var b []byte
		if b, err = json.Marshal(stored); err == nil {
			_, err = h.Assets.CreateAsset(r.Context(), ws, wharf.AssetComponent, name, &wharfhttp.AssetRequest{
				Version: version, Spec: b, Digest: digest, Description: body.Properties.Description, Tags: body.Properties.Tags})
		}
	}
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	h.assetVersion(wharf.AssetComponent, h.componentJSON)(w, r)
}

// prefixFields names e's fields, and its details', below prefix: the
// component's fields are those of the request's componentSpec.
func prefixFields(e *wharf.Error, prefix string) {
	if e.Field != "" {
		e.Field = prefix + "." + e.Field
	}
	for i := range e.Details {
		if e.Details[i].Field != "" {
			e.Details[i].Field = prefix + "." + e.Details[i].Field
		}
	}
}

// componentJSON is a component version in ARM's shape: the componentSpec
// the SDK sent, or, for a component registered otherwise, its name,
// version, type and command.
func (h *Handler) componentJSON(r *http.Request, a *wharf.Asset) armVersion {
	var stored resolve.Component
	_ = json.Unmarshal(a.Spec, &stored) // a component of an older form reads as far as it can
	spec := map[string]any{}
	if len(stored.Document) == 0 || json.Unmarshal(stored.Document, &spec) != nil {
		spec = map[string]any{"name": a.Name, "version": a.Version, "type": "command"}
		if c := stored.Component; c != nil {
			spec["command"] = c.Command
			if c.Type != "" {
				spec["type"] = c.Type
			}
		}
	}
	tags := a.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return armVersion{
		ID:   workspaceID(r, a.Workspace) + "/components/" + a.Name + "/versions/" + a.Version,
		Name: a.Version, Type: "Microsoft.MachineLearningServices/workspaces/components/versions",
		Properties: map[string]any{"componentSpec": spec, "description": a.Description, "tags": tags,
			"properties": map[string]string{}, "isAnonymous": a.Anonymous(), "isArchived": false},
		SystemData: systemData(a.CreatedBy, a.CreatedAt),
	}
}

// listComponentContainers lists the workspace's named components, each
// with its newest version; anonymous steps are not among them, as in
// Azure.
func (h *Handler) listComponentContainers(w http.ResponseWriter, r *http.Request) {
	list, err := h.Store.ListAssets(r.Context(), r.PathValue("workspace"), wharf.AssetComponent, "")
	list = wharf.NamedAssets(list)
	writeList(h, w, r, list, err, func(r *http.Request, a *wharf.Asset) armVersion {
		tags := a.Tags
		if tags == nil {
			tags = map[string]string{}
		}
		return armVersion{
			ID: workspaceID(r, a.Workspace) + "/components/" + a.Name, Name: a.Name,
			Type: "Microsoft.MachineLearningServices/workspaces/components",
			Properties: map[string]any{"description": a.Description, "tags": tags, "properties": map[string]string{},
				"latestVersion": a.Version, "isArchived": false},
			SystemData: systemData(a.CreatedBy, a.CreatedAt),
		}
	})
}
