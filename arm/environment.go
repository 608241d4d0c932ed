package arm

import (
	"encoding/json"
	"net/http"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/jobspec"
	"github.com/wharfml/wharf/resolve"
	"github.com/wharfml/wharf/yamlfile"
)

// armEnvironmentProperties are the properties of an environment version
// as the SDK sends and reads them.
type armEnvironmentProperties struct {
	Image       string            `json:"image,omitempty"`
	CondaFile   string            `json:"condaFile,omitempty"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags"`
	Properties  map[string]string `json:"properties"`
	OSType      string            `json:"osType,omitempty"`
	Build       json.RawMessage   `json:"build,omitempty"`
	// Read back only.
	EnvironmentType   string `json:"environmentType,omitempty"`
	IsAnonymous       bool   `json:"isAnonymous"`
	IsArchived        bool   `json:"isArchived"`
	ProvisioningState string `json:"provisioningState,omitempty"`
}

// armVersion is a versioned resource (environment, model, code) as ARM
// returns it.
type armVersion struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Properties any            `json:"properties"`
	SystemData map[string]any `json:"systemData"`
	// Tracked resources (endpoints, deployments) carry these too.
	Location string            `json:"location,omitempty"`
	Kind     string            `json:"kind,omitempty"`
	Tags     map[string]string `json:"tags,omitempty"`
	Identity map[string]string `json:"identity,omitempty"`
	SKU      map[string]any    `json:"sku,omitempty"`
}

func systemData(createdBy string, at time.Time) map[string]any {
	return map[string]any{"createdAt": at, "createdBy": createdBy, "createdByType": "Application",
		"lastModifiedAt": at, "lastModifiedBy": createdBy, "lastModifiedByType": "Application"}
}

// putEnvironment creates an environment version: the SDK's body becomes the
// environment YAML the CLI reads (conda file inline), read and stored as
// `wharf ml environment create` stores it.
func (h *Handler) putEnvironment(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Properties armEnvironmentProperties `json:"properties"`
	}
	if err := decodeBody(r, &body); err != nil {
		h.WriteError(w, r, err)
		return
	}
	p := body.Properties
	name, version := r.PathValue("name"), r.PathValue("version")
	if len(p.Build) > 0 && string(p.Build) != "null" {
		h.WriteError(w, r, wharf.Errorf(wharf.EINVALID,
			"environment %s:%s: a Docker build context is not supported through the SDK; give an image (and a conda file), or create it with `wharf ml environment create --file`", name, version).WithField("properties.build"))
		return
	}
	doc := map[string]any{"name": name, "version": version, "image": p.Image}
	if p.Description != "" {
		doc["description"] = p.Description
	}
	if len(p.Tags) > 0 {
		doc["tags"] = p.Tags
	}
	if p.OSType != "" {
		doc["os_type"] = p.OSType
	}
	if p.CondaFile != "" {
		var conda any
		if err := yaml.Unmarshal([]byte(p.CondaFile), &conda); err != nil {
			h.WriteError(w, r, wharf.Errorf(wharf.EINVALID, "environment %s:%s: the conda file is not YAML: %v", name, version, err).WithField("properties.condaFile"))
			return
		}
		doc["conda_file"] = conda
	}
	src, err := json.Marshal(doc)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	parsed, err := yamlfile.Parse("environment "+name+":"+version+" (SDK request)", src)
	if err == nil {
		var spec *jobspec.EnvironmentSpec
		spec, err = jobspec.EnvironmentFromDocument(parsed)
		err = resolve.DocumentError(err)
		if err == nil {
			var stored resolve.Environment
			if stored, err = resolve.EnvironmentOf(spec); err == nil {
				err = h.createAsset(r, wharf.AssetEnvironment, name, version, stored, spec.Description, spec.Tags)
			}
		}
	}
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	h.assetVersion(wharf.AssetEnvironment, h.environmentJSON)(w, r)
}

// createAsset stores an asset version created by the caller.
func (h *Handler) createAsset(r *http.Request, kind, name, version string, spec any, description string, tags map[string]string) error {
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return h.Store.CreateAsset(r.Context(), &wharf.Asset{
		Workspace: r.PathValue("workspace"), Kind: kind, Name: name, Version: version,
		Spec: b, Description: description, Tags: tags, CreatedBy: callerID(r),
	})
}

// environmentJSON is an environment version in ARM's shape; its conda
// specification is given back as a conda file.
func (h *Handler) environmentJSON(r *http.Request, a *wharf.Asset) armVersion {
	var env resolve.Environment
	_ = json.Unmarshal(a.Spec, &env) // a curated or older spec reads as far as it can
	p := armEnvironmentProperties{
		Image: env.Image, Description: a.Description, Tags: a.Tags, Properties: map[string]string{},
		OSType: "Linux", EnvironmentType: "UserCreated", ProvisioningState: "Succeeded",
	}
	if p.Tags == nil {
		p.Tags = map[string]string{}
	}
	if env.Conda != nil {
		p.CondaFile = condaFile(env.Conda)
	}
	return armVersion{
		ID:   workspaceID(r, a.Workspace) + "/environments/" + a.Name + "/versions/" + a.Version,
		Name: a.Version, Type: "Microsoft.MachineLearningServices/workspaces/environments/versions",
		Properties: p, SystemData: systemData(a.CreatedBy, a.CreatedAt),
	}
}

// condaFile writes a conda specification back as a conda file.
func condaFile(c *jobspec.CondaSpec) string {
	deps := make([]any, 0, len(c.Dependencies)+1)
	for _, d := range c.Dependencies {
		deps = append(deps, d)
	}
	if len(c.Pip) > 0 {
		deps = append(deps, map[string]any{"pip": c.Pip})
	}
	doc := map[string]any{"dependencies": deps}
	if c.Name != "" {
		doc["name"] = c.Name
	}
	if len(c.Channels) > 0 {
		doc["channels"] = c.Channels
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		return ""
	}
	return string(b)
}

// decodeBody reads a JSON request body, ignoring fields it does not know:
// the SDK sends many Wharf has no use for.
func decodeBody(r *http.Request, v any) error {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		return wharf.Errorf(wharf.EINVALID, "the request body is not the JSON expected: %v", err)
	}
	return nil
}
