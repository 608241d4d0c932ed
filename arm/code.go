package arm

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/resolve"
	"github.com/wharfml/wharf/scheduler"
	"github.com/wharfml/wharf/snapshot"
)

// Code uploads. The SDK asks where to upload a job's code folder
// (startPendingUpload), uploads it through the Blob API to the folder of
// the workspace's default datastore that the answer names, and then
// registers the code version (PUT), naming the folder by URL. The version
// is Wharf's snapshot of the folder as it is then: a later write there
// does not change it. Jobs name it by its id (codeId).

// codeSpec is what a code version keeps: where it was uploaded and the
// SDK's hash of it, by which the SDK finds code it uploaded before.
type codeSpec struct {
	CodeURI     string `json:"code_uri"`
	Hash        string `json:"hash,omitempty"`
	HashVersion string `json:"hash_version,omitempty"`
	// Name is the uploaded folder's (or file's) name, which the code
	// keeps in jobs, as the CLI's uploads do.
	Name string `json:"name"`
}

// pendingUploadLife is how long a code upload's signature lasts.
const pendingUploadLife = 4 * time.Hour

// startPendingUpload names a fresh folder of the default datastore and a
// signature that may write there alone.
func (h *Handler) startPendingUpload(w http.ResponseWriter, r *http.Request) {
	ws := r.PathValue("workspace")
	ds, err := h.defaultDatastore(r)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	id := uuid.NewString()
	resource := containerName(ws, ds) + "/" + resolve.UploadFolder + "/" + id
	token, err := h.sasKeys().sign(r.Context(), sas{Permissions: "racwl", Expiry: time.Now().Add(pendingUploadLife).Truncate(time.Second),
		Resource: resource, ObjectID: callerID(r)})
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	blobURI := h.blobURL(resource)
	writeJSON(w, http.StatusOK, map[string]any{
		"blobReferenceForConsumption": map[string]any{
			"blobUri":             blobURI,
			"storageAccountArmId": nil,
			"credential":          map[string]string{"credentialType": "SAS", "sasUri": blobURI + "?" + token},
		},
		"pendingUploadId":   id,
		"pendingUploadType": "TemporaryBlobReference",
	})
}

// defaultDatastore is the name of the workspace's default datastore.
func (h *Handler) defaultDatastore(r *http.Request) (string, error) {
	list, err := h.Store.ListDatastores(r.Context(), r.PathValue("workspace"))
	if err != nil {
		return "", err
	}
	for _, d := range list {
		if d.IsDefault {
			return d.Name, nil
		}
	}
	return "", wharf.Errorf(wharf.ENOTFOUND, "workspace %q has no default datastore to upload to", r.PathValue("workspace"))
}

// datastorePath reads a URL the Blob API serves (as blobUri gave it) into
// the workspace's datastore and path it names.
func (h *Handler) datastorePath(ws, raw, field string) (datastore, p string, err error) {
	u, err := url.Parse(raw)
	bad := wharf.Errorf(wharf.EINVALID, "%q is not a folder this server gave for uploads to workspace %q", raw, ws).WithField(field)
	if err != nil || u.Scheme != "https" {
		return "", "", bad
	}
	rest := strings.TrimPrefix(u.Path, "/")
	if _, ok := h.BlobHost(u.Host); !ok {
		// Path-style: /blob/<account>/<container>/...
		var found bool
		if rest, found = strings.CutPrefix(rest, strings.TrimPrefix(BlobPrefix, "/")+"/"); !found {
			return "", "", bad
		}
		if _, rest, found = strings.Cut(rest, "/"); !found {
			return "", "", bad
		}
	}
	container, p, _ := strings.Cut(rest, "/")
	w, ds, ok := strings.Cut(container, ".")
	if !ok || w != ws || p == "" {
		return "", "", bad
	}
	return ds, p, nil
}

// putCode registers a code version: the snapshot of what was uploaded
// below its codeUri.
func (h *Handler) putCode(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Properties struct {
			CodeURI     string            `json:"codeUri"`
			Description string            `json:"description"`
			Tags        map[string]string `json:"tags"`
			Properties  map[string]any    `json:"properties"`
		} `json:"properties"`
	}
	if err := decodeBody(r, &body); err != nil {
		h.WriteError(w, r, err)
		return
	}
	ws, name, version := r.PathValue("workspace"), r.PathValue("name"), r.PathValue("version")
	p := body.Properties
	ds, folder, err := h.datastorePath(ws, p.CodeURI, "properties.codeUri")
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	digest, err := h.codeSnapshot(r, ds, folder)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	spec := codeSpec{CodeURI: p.CodeURI, Name: path.Base(folder)}
	if hash, ok := p.Properties["hash_sha256"].(string); ok {
		spec.Hash = hash
	}
	if hv, ok := p.Properties["hash_version"]; ok {
		b, _ := json.Marshal(hv)
		spec.HashVersion = strings.Trim(string(b), `"`)
	}
	b, err := json.Marshal(spec)
	if err == nil {
		err = h.Store.CreateAsset(r.Context(), &wharf.Asset{Workspace: ws, Kind: wharf.AssetCode, Name: name, Version: version,
			Spec: b, Digest: digest, Description: p.Description, Tags: p.Tags, CreatedBy: callerID(r)})
	}
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	h.getCode(w, r)
}

// codeSnapshot is the snapshot of the folder (or the one file) uploaded
// at a datastore path: a folder of files, as a job's code is.
func (h *Handler) codeSnapshot(r *http.Request, datastore, p string) (string, error) {
	if h.Blobs == nil {
		return "", wharf.Errorf(wharf.EUNAVAILABLE, "content storage is not configured on this server")
	}
	ws := r.PathValue("workspace")
	res := &resolve.Resolver{Store: h.Store, Blobs: h.Blobs}
	in, err := res.Input(r.Context(), ws, "", "azureml://datastores/"+datastore+"/paths/"+p, "properties.codeUri")
	if err != nil {
		return "", err
	}
	if in.Kind == scheduler.KindFolder {
		return in.Digest, nil
	}
	size, err := h.Blobs.Stat(r.Context(), in.Digest)
	if err != nil {
		return "", err
	}
	m, err := snapshot.FromStored(r.Context(), []snapshot.File{{Path: path.Base(p), Mode: snapshot.ModeFile, Digest: in.Digest, Size: size}}, h.Blobs)
	if err != nil {
		return "", err
	}
	return m.Digest, h.Store.AddBlobRefs(r.Context(), ws, []string{m.Digest})
}

func (h *Handler) getCode(w http.ResponseWriter, r *http.Request) {
	a, err := h.Store.FindAsset(r.Context(), r.PathValue("workspace"), wharf.AssetCode, r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.codeJSON(r, a))
}

// listCodeVersions lists a code's versions or, with hash, the versions of
// any name holding code of that hash: the SDK's lookup of code it has
// uploaded before, which it then uses instead of uploading again.
func (h *Handler) listCodeVersions(w http.ResponseWriter, r *http.Request) {
	hash := r.URL.Query().Get("hash")
	name := r.PathValue("name")
	if hash != "" {
		name = ""
	}
	list, err := h.Store.ListAssets(r.Context(), r.PathValue("workspace"), wharf.AssetCode, name)
	if hash != "" && err == nil {
		var same []*wharf.Asset
		for _, a := range list {
			var spec codeSpec
			if json.Unmarshal(a.Spec, &spec) == nil && spec.Hash == hash {
				same = append(same, a)
			}
		}
		list = same
	}
	writeList(h, w, r, list, err, h.codeJSON)
}

// codeJSON is a code version in ARM's shape.
func (h *Handler) codeJSON(r *http.Request, a *wharf.Asset) armVersion {
	var spec codeSpec
	_ = json.Unmarshal(a.Spec, &spec) // written by putCode
	tags := a.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	props := map[string]any{}
	if spec.Hash != "" {
		props["hash_sha256"], props["hash_version"] = spec.Hash, spec.HashVersion
	}
	return armVersion{
		ID:   workspaceID(r, a.Workspace) + "/codes/" + a.Name + "/versions/" + a.Version,
		Name: a.Version, Type: "Microsoft.MachineLearningServices/workspaces/codes/versions",
		Properties: map[string]any{"codeUri": spec.CodeURI, "description": a.Description, "tags": tags, "properties": props,
			"isAnonymous": true, "isArchived": false, "provisioningState": "Succeeded"},
		SystemData: systemData(a.CreatedBy, a.CreatedAt),
	}
}

// codeURI is the job document's code for a code version's ARM id: the
// snapshot, named as the CLI names uploaded content.
func (h *Handler) codeURI(r *http.Request, id string) (string, error) {
	a, err := h.codeAsset(r, id, "properties.codeId")
	if err != nil {
		return "", err
	}
	var spec codeSpec
	_ = json.Unmarshal(a.Spec, &spec)
	return resolve.UploadURI(a.Digest, scheduler.KindFolder, spec.Name), nil
}

// codeAsset is the code version an ARM id names (…/codes/<name>/versions/
// <version>, "azureml:" before it as a component's code has it); field
// names it in errors.
func (h *Handler) codeAsset(r *http.Request, id, field string) (*wharf.Asset, error) {
	ws := r.PathValue("workspace")
	name, version, ok := assetOfID(strings.TrimPrefix(id, "azureml:"), "codes")
	if !ok {
		return nil, wharf.Errorf(wharf.EINVALID, "code %q is not a code version of workspace %q", id, ws).WithField(field)
	}
	a, err := h.Store.FindAsset(r.Context(), ws, wharf.AssetCode, name, version)
	if err != nil {
		return nil, wharf.Errorf(wharf.ErrorCode(err), "%s", wharf.ErrorMessage(err)).WithField(field)
	}
	return a, nil
}
