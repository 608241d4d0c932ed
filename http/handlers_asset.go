package http

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/blob"
	"github.com/wharfml/wharf/jobspec"
	"github.com/wharfml/wharf/resolve"
	"github.com/wharfml/wharf/snapshot"
)

// assetKinds maps each asset kind to the actions that guard it.
var assetKinds = []struct {
	kind                string
	read, write, delete string
}{
	{wharf.AssetData, wharf.ActionDataRead, wharf.ActionDataWrite, wharf.ActionDataDelete},
	{wharf.AssetEnvironment, wharf.ActionEnvironmentRead, wharf.ActionEnvironmentWrite, wharf.ActionEnvironmentDelete},
	{wharf.AssetComponent, wharf.ActionComponentRead, wharf.ActionComponentWrite, wharf.ActionComponentDelete},
}

// registerAssetRoutes registers data assets, environments and components,
// and the content-addressed upload their files travel by.
func (s *Server) registerAssetRoutes() {
	const ws = "/api/v1/workspaces/{workspace}"
	for _, k := range assetKinds {
		kind := k.kind
		base := ws + "/" + kind
		s.route("GET "+base, k.read, jsonAPI(s, s.listAssets(kind, false)))
		s.route("GET "+base+"/{name}/versions", k.read, jsonAPI(s, s.listAssets(kind, true)))
		s.route("GET "+base+"/{name}/versions/{version}", k.read, jsonAPI(s, s.getAsset(kind)))
		s.route("POST "+base+"/{name}/versions", k.write, jsonAPI(s, s.createAsset(kind)))
	}
	s.registerRegistryRoutes()
	s.route("GET "+ws+"/datastores/{name}/paths/{path...}", wharf.ActionDatastoreRead, jsonAPI(s, s.getDatastoreFile))
	// Content is uploaded once by digest and then named by assets and
	// jobs; a client asks first (HEAD) and sends only what is missing.
	// Upload is a data write, download a data read: code and data travel
	// the same way. A workspace sees only the blobs it references (see
	// wharf.BlobRefService): content another workspace holds is 404
	// here, not even confirmed to exist, until it is uploaded through
	// this one.
	s.route("HEAD "+ws+"/blobs/{digest}", wharf.ActionDataRead, s.handleStatBlob)
	s.route("GET "+ws+"/blobs/{digest}", wharf.ActionDataRead, s.handleGetBlob)
	s.register("PUT "+ws+"/blobs/{digest}", AccessScoped, wharf.ActionDataWrite, jsonAPI(s, s.putBlob)).RawBody = true
}

// AssetRequest is the body of an asset creation.
type AssetRequest struct {
	Version     string            `json:"version"`
	Spec        json.RawMessage   `json:"spec"`
	Digest      string            `json:"digest"`
	Description string            `json:"description"`
	Tags        map[string]string `json:"tags"`
}

// createAsset creates a version of an asset of kind.
func (s *Server) createAsset(kind string) func(*http.Request, *AssetRequest) (int, *wharf.Asset, error) {
	return func(r *http.Request, req *AssetRequest) (int, *wharf.Asset, error) {
		a, err := s.CreateAsset(r.Context(), r.PathValue("workspace"), kind, r.PathValue("name"), req)
		return http.StatusCreated, a, err
	}
}

// CreateAsset creates a version of an asset of kind, by the context's
// caller: content it pins must be stored and the workspace's, a
// component's steps must read, and a data asset naming a datastore path
// is pinned to what is there (or files its uploaded content there).
func (s *Server) CreateAsset(ctx context.Context, ws, kind, name string, req *AssetRequest) (*wharf.Asset, error) {
	if len(req.Spec) > 0 && !json.Valid(req.Spec) {
		return nil, wharf.Errorf(wharf.EINVALID, "spec is not valid JSON").WithField("spec")
	}
	if req.Digest != "" && s.Blobs == nil {
		return nil, errNoBlobs
	}
	if req.Digest != "" {
		// An asset may only pin content that is stored, so a job never
		// finds its input missing, and that this workspace holds, since
		// the asset makes it the workspace's.
		if err := s.checkReferenced(ctx, ws, req.Digest, "digest"); err != nil {
			return nil, err
		}
	}
	if kind == wharf.AssetComponent {
		// A pipeline component's steps are read at every use; they
		// must read now.
		if err := s.resolver().CheckComponent(ctx, ws, req.Spec); err != nil {
			return nil, err
		}
		if err := s.resolver().PublishComponentCode(ctx, ws, req.Spec, req.Digest); err != nil {
			return nil, err
		}
	}
	if kind == wharf.AssetData && req.Digest == "" {
		if err := s.pinDataPath(ctx, ws, req); err != nil {
			return nil, err
		}
	}
	if kind == wharf.AssetData && req.Digest != "" {
		if err := s.recordDataPath(ctx, ws, req); err != nil {
			return nil, err
		}
	}
	var caller string
	if c := wharf.CallerFromContext(ctx); c != nil {
		caller = c.PrincipalID
	}
	a := &wharf.Asset{
		Workspace: ws, Kind: kind, Name: name, Version: req.Version,
		Spec: req.Spec, Digest: req.Digest, Description: req.Description, Tags: req.Tags, CreatedBy: caller,
	}
	if err := s.Store.CreateAsset(ctx, a); err != nil {
		return nil, err
	}
	return a, nil
}

// pinDataPath pins a data asset that names a datastore path to what is
// stored there now (a file, a folder, or everything below the path), as
// assets of uploaded content are pinned. A path that holds nothing yet is
// accepted, as Azure accepts it: the asset then resolves the path anew at
// every job until content is there.
func (s *Server) pinDataPath(ctx context.Context, ws string, req *AssetRequest) error {
	var spec resolve.DataAsset
	if err := json.Unmarshal(req.Spec, &spec); err != nil || !jobspec.IsDatastoreURI(spec.Path) {
		return nil
	}
	in, err := s.resolver().Input(ctx, ws, spec.Type, spec.Path, "spec.path")
	if wharf.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := resolve.CheckKind(spec.Type, in.Kind, spec.Path); err != nil {
		return err
	}
	spec.Kind, spec.FileName = in.Kind, in.FileName
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	req.Spec, req.Digest = b, in.Digest
	return nil
}

// publishCode writes a deployment's uploaded code, digest, at the
// LocalUpload URI path the client gave it (code_configuration.code_path)
// into the upload datastore's container when that is an azure_blob or s3
// one, as Azure ML's CLI uploads it there. No path, nothing to write.
func (s *Server) publishCode(ctx context.Context, ws, path, digest string) error {
	if path == "" {
		return nil
	}
	return s.resolver().PublishUpload(ctx, ws, path, digest, "code_configuration.code_path")
}

// recordDataPath files uploaded data under the datastore path its asset
// names (azureml://datastores/<ds>/paths/<p>), unless something is there.
func (s *Server) recordDataPath(ctx context.Context, ws string, req *AssetRequest) error {
	var spec struct {
		Path string `json:"path"`
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(req.Spec, &spec); err != nil || !strings.HasPrefix(spec.Path, "azureml://datastores/") {
		return nil
	}
	rest := strings.TrimPrefix(spec.Path, "azureml://datastores/")
	ds, p, ok := strings.Cut(rest, "/paths/")
	if !ok || ds == "" {
		return wharf.Errorf(wharf.EINVALID, "path %q is not azureml://datastores/<datastore>/paths/<path>", spec.Path).WithField("spec.path")
	}
	if _, err := s.Store.FindDatastoreFile(ctx, ws, ds, p); err == nil {
		return nil
	} else if wharf.ErrorCode(err) != wharf.ENOTFOUND {
		return err
	}
	// In an azure_blob or s3 datastore the files land in its container,
	// as Azure's upload puts them, before Wharf records the path.
	if err := blob.WriteDatastorePath(ctx, s.Store, s.Blobs, ws, ds, p, req.Digest, spec.Kind == "folder"); err != nil {
		return err
	}
	return s.Store.PutDatastoreFile(ctx, &wharf.DatastoreFile{Workspace: ws, Datastore: ds, Path: p,
		Digest: req.Digest, Kind: spec.Kind})
}

func (s *Server) getDatastoreFile(r *http.Request, _ *noBody) (int, *wharf.DatastoreFile, error) {
	f, err := s.Store.FindDatastoreFile(r.Context(), r.PathValue("workspace"), r.PathValue("name"), r.PathValue("path"))
	return http.StatusOK, f, err
}

// getAsset finds a version of an asset of kind. Azure's curated
// environments are in every workspace, as in Azure: an environment the
// workspace does not hold is looked up in the catalog of them, so the
// CLI's check of a job file and its environment show find them too.
func (s *Server) getAsset(kind string) func(*http.Request, *noBody) (int, *wharf.Asset, error) {
	return func(r *http.Request, _ *noBody) (int, *wharf.Asset, error) {
		ws, name, version := r.PathValue("workspace"), r.PathValue("name"), r.PathValue("version")
		a, err := s.Store.FindAsset(r.Context(), ws, kind, name, version)
		if kind == wharf.AssetEnvironment && wharf.IsNotFound(err) {
			if c, ok := resolve.Curated(name, version); ok {
				if _, werr := s.Store.FindWorkspace(r.Context(), ws); werr != nil {
					return 0, nil, werr
				}
				return http.StatusOK, c, nil
			}
		}
		return http.StatusOK, a, err
	}
}

// listAssets lists the assets of kind, or with versions the versions of
// the one in the path.
func (s *Server) listAssets(kind string, versions bool) func(*http.Request, *noBody) (int, []*wharf.Asset, error) {
	return func(r *http.Request, _ *noBody) (int, []*wharf.Asset, error) {
		name := ""
		if versions {
			name = r.PathValue("name")
		}
		as, err := s.Store.ListAssets(r.Context(), r.PathValue("workspace"), kind, name)
		if !versions {
			// Anonymous steps are found through the pipelines that
			// name them, not among the components a team registers.
			as = wharf.NamedAssets(as)
		}
		return http.StatusOK, as, err
	}
}

// errNoBlobs answers content routes on a server started without a blob
// store.
var errNoBlobs = wharf.Errorf(wharf.EUNAVAILABLE, "content storage is not configured on this server")

// referencedBlob returns the digest of a content route when the route's
// workspace references it, and an ENOTFOUND error otherwise.
func (s *Server) referencedBlob(r *http.Request) (string, error) {
	ws, digest := r.PathValue("workspace"), r.PathValue("digest")
	missing, err := s.Store.UnreferencedBlobs(r.Context(), ws, []string{digest})
	if err != nil {
		return "", err
	}
	if len(missing) > 0 {
		return "", wharf.Errorf(wharf.ENOTFOUND, "content %s not found in workspace %s", digest, ws)
	}
	return digest, nil
}

func (s *Server) handleStatBlob(w http.ResponseWriter, r *http.Request) {
	if s.Blobs == nil {
		w.WriteHeader(ErrorStatus(wharf.EUNAVAILABLE))
		return
	}
	digest, err := s.referencedBlob(r)
	if err != nil {
		w.WriteHeader(ErrorStatus(wharf.ErrorCode(err)))
		return
	}
	size, err := s.Blobs.Stat(r.Context(), digest)
	if err != nil {
		w.WriteHeader(ErrorStatus(wharf.ErrorCode(err)))
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
}

func (s *Server) handleGetBlob(w http.ResponseWriter, r *http.Request) {
	if s.Blobs == nil {
		s.writeError(w, r, errNoBlobs)
		return
	}
	digest, err := s.referencedBlob(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rc, size, err := s.Blobs.Open(r.Context(), digest)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	// A digest mismatch surfaces as a read error mid-stream; the
	// connection is then cut, so the client sees a short body, not bad
	// data.
	_, _ = io.Copy(w, rc)
}

// putBlob stores the raw body (In is noBody: it is content, not JSON)
// under the digest the client named, refusing it when the content hashes to
// something else.
func (s *Server) putBlob(r *http.Request, _ *noBody) (int, map[string]any, error) {
	if s.Blobs == nil {
		return 0, nil, errNoBlobs
	}
	want := r.PathValue("digest")
	if !strings.HasPrefix(want, "sha256:") || len(want) != len("sha256:")+64 {
		return 0, nil, wharf.Errorf(wharf.EINVALID, "digest %q is not sha256:<64 hex digits>", want).WithField("digest")
	}
	got, size, err := s.Blobs.Put(r.Context(), r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			err = wharf.Errorf(wharf.ETOOLARGE, "upload exceeds %d bytes", tooBig.Limit)
		}
		return 0, nil, err
	}
	if got != want {
		// The bytes are stored under their own digest, harmlessly: content
		// addressing means they can never be mistaken for the named blob.
		return 0, nil, wharf.Errorf(wharf.EINVALID, "content hashes to %s, not %s (corrupted upload?)", got, want).WithField("digest")
	}
	// Whoever sent the bytes holds them: the workspace may read them
	// back from now on.
	if err := s.Store.AddBlobRefs(r.Context(), r.PathValue("workspace"), []string{got}); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, map[string]any{"digest": got, "size": size}, nil
}

// checkReferenced is snapshot.CheckReferenced on this server's stores.
func (s *Server) checkReferenced(ctx context.Context, ws, digest, field string) error {
	return snapshot.CheckReferenced(ctx, s.Store, s.Blobs, ws, digest, field)
}
