package mlflow

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wharfml/wharf"
)

// ArtifactScheme prefixes the artifact URIs of runs and logged
// models; the client sends the rest of such a URI to the artifact proxy.
const ArtifactScheme = "mlflow-artifacts:"

// maxArtifactPath bounds artifact paths well above any real model layout.
const maxArtifactPath = 1024

// streamChunk is how much of a download is held back until the next read
// proves the blob intact so far; see copyVerified.
const streamChunk = 256 << 10

func invalidPath(p string) error {
	if len(p) > 200 {
		p = p[:200] + "..."
	}
	return wharf.Errorf(wharf.EINVALID, "Invalid path: %q", p).WithField("path")
}

// cleanArtifactPath checks a client-supplied artifact path, relative to the
// workspace's artifact root, the way MLflow's validate_path_is_safe does
// and stricter: no "." or ".." segment, no absolute path, backslash, NUL or
// control character, "#", URL scheme or drive letter, no empty segment, and
// the same again after each round of percent-decoding, so that %2e%2e and
// its double encodings are caught too. Such a path is refused rather than
// cleaned: the artifact index keys exact strings, and a request that needs
// cleaning is not one a real client sends. A trailing slash is dropped and,
// where allowEmpty, "" names the root.
func cleanArtifactPath(p string, allowEmpty bool) (string, error) {
	orig := p
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		if allowEmpty && !strings.HasPrefix(orig, "//") {
			return "", nil
		}
		return "", invalidPath(orig)
	}
	if len(p) > maxArtifactPath {
		return "", invalidPath(orig)
	}
	cur := p
	for range 4 {
		if !safeArtifactPath(cur) {
			return "", invalidPath(orig)
		}
		dec, err := url.PathUnescape(cur)
		if err != nil || dec == cur {
			break
		}
		cur = dec
	}
	return p, nil
}

func safeArtifactPath(p string) bool {
	if p == "" || p[0] == '/' || strings.ContainsAny(p, "\\#") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] == 0x7f {
			return false
		}
	}
	// A scheme (s3:, file:) or a drive letter (C:) in the first segment.
	first, _, _ := strings.Cut(p, "/")
	if strings.Contains(first, ":") {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// ArtifactRoot returns the workspace artifact path behind an
// mlflow-artifacts URI ("mlflow-artifacts:/1/<run>/artifacts" gives
// "1/<run>/artifacts"); ok is false for URIs elsewhere (s3://...).
func ArtifactRoot(uri string) (string, bool) {
	rest, ok := strings.CutPrefix(uri, ArtifactScheme)
	if !ok {
		return "", false
	}
	// mlflow-artifacts://host/path names a host; the path follows it.
	if strings.HasPrefix(rest, "//") {
		_, rest, _ = strings.Cut(rest[2:], "/")
	}
	root := strings.Trim(rest, "/")
	if root != "" && !safeArtifactPath(root) {
		return "", false
	}
	return root, true
}

func joinArtifactPath(dir, name string) string {
	if dir == "" {
		return name
	}
	if name == "" {
		return dir
	}
	return dir + "/" + name
}

// listArtifactDir lists the direct children of dir: files with their size,
// and each subfolder once. Names are relative to dir. A dir that is a file
// or does not exist has no children.
func (h *Handler) listArtifactDir(r *http.Request, ws, dir string) ([]mlflowFileInfo, error) {
	arts, err := h.Store.ListArtifacts(r.Context(), ws, dir)
	if err != nil {
		return nil, err
	}
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	var out []mlflowFileInfo
	dirs := map[string]bool{}
	for _, a := range arts {
		rest, ok := strings.CutPrefix(a.Path, prefix)
		if !ok || rest == "" {
			continue
		}
		if name, _, isDir := strings.Cut(rest, "/"); isDir {
			if !dirs[name] {
				dirs[name] = true
				out = append(out, mlflowFileInfo{Path: name, IsDir: true})
			}
			continue
		}
		size := a.Size
		out = append(out, mlflowFileInfo{Path: rest, FileSize: &size})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

type listArtifactsResponse struct {
	RootURI       string           `json:"root_uri,omitempty"`
	Files         []mlflowFileInfo `json:"files,omitempty"`
	NextPageToken string           `json:"next_page_token,omitempty"`
}

// listUnder lists sub below the artifact URI root, with paths relative to
// root as MLflow's ListArtifacts gives them. Roots outside the proxy
// cannot be listed here and list empty, as the client then fetches from
// them directly.
func (h *Handler) listUnder(r *http.Request, ws, rootURI, sub string) (any, error) {
	sub, err := cleanArtifactPath(sub, true)
	if err != nil {
		return nil, err
	}
	out := listArtifactsResponse{RootURI: rootURI}
	root, ok := ArtifactRoot(rootURI)
	if !ok {
		return out, nil
	}
	files, err := h.listArtifactDir(r, ws, joinArtifactPath(root, sub))
	if err != nil {
		return nil, err
	}
	for i := range files {
		files[i].Path = joinArtifactPath(sub, files[i].Path)
	}
	out.Files = files
	return out, nil
}

func (h *Handler) listRunArtifacts(r *http.Request, ws string, a *args) (any, error) {
	id, sub := a.runID(), a.str("path")
	if err := a.Err(); err != nil {
		return nil, err
	}
	run, err := h.Store.FindRun(r.Context(), ws, id)
	if err != nil {
		return nil, err
	}
	return h.listUnder(r, ws, run.ArtifactURI, sub)
}

func (h *Handler) listLoggedModelArtifacts(r *http.Request, ws string, a *args) (any, error) {
	sub := a.str("artifact_directory_path")
	if err := a.Err(); err != nil {
		return nil, err
	}
	m, err := h.Store.FindLoggedModel(r.Context(), ws, r.PathValue("model_id"))
	if err != nil {
		return nil, err
	}
	return h.listUnder(r, ws, m.ArtifactURI, sub)
}

// artifactRequest checks the workspace, the blob store and the path of an
// artifact proxy call; an error has been written when ok is false.
func (h *Handler) artifactRequest(w http.ResponseWriter, r *http.Request, p string, allowEmpty bool) (ws, clean string, ok bool) {
	ws, err := h.workspace(r)
	if err == nil && h.Blobs == nil {
		// MLflow answers 503 when artifact serving is off.
		err = wharf.Errorf(wharf.EUNAVAILABLE, "artifact serving is not configured on this server")
	}
	if err == nil {
		clean, err = cleanArtifactPath(p, allowEmpty)
	}
	if err != nil {
		h.WriteError(w, r, err)
		return "", "", false
	}
	return ws, clean, true
}

// putArtifact stores one file. The body streams into the blob store,
// which hashes it on the way, and only then does the path point at the
// new content, so a failed upload leaves the old file in place.
func (h *Handler) putArtifact(w http.ResponseWriter, r *http.Request) {
	ws, p, ok := h.artifactRequest(w, r, r.PathValue("path"), false)
	if !ok {
		return
	}
	digest, size, err := h.Blobs.Put(r.Context(), r.Body)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	a := &wharf.Artifact{Workspace: ws, Path: p, Digest: digest, Size: size, UpdatedAt: nowMillis()}
	if err := h.Store.PutArtifact(wharf.ArmAudit(r.Context(), http.StatusOK), a); err != nil {
		h.WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// getArtifact streams one file as an attachment. GET on the folder
// form (a trailing slash, no file name) lists instead, as listing is the
// only thing a folder can give.
func (h *Handler) getArtifact(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("path") == "" {
		h.listArtifacts(w, r)
		return
	}
	ws, p, ok := h.artifactRequest(w, r, r.PathValue("path"), false)
	if !ok {
		return
	}
	h.serveArtifact(w, r, ws, p)
}

// OpenArtifact opens the stored file at p of a workspace's artifact tree;
// content whose size disagrees with the tree is an EINTERNAL error. The
// caller closes the reader.
func OpenArtifact(ctx context.Context, store wharf.ArtifactService, blobs wharf.BlobStore, ws, p string) (*wharf.Artifact, io.ReadCloser, error) {
	a, err := store.FindArtifact(ctx, ws, p)
	if err != nil {
		return nil, nil, err
	}
	rc, size, err := blobs.Open(ctx, a.Digest)
	if err != nil {
		return nil, nil, err
	}
	if size != a.Size {
		rc.Close()
		return nil, nil, wharf.Errorf(wharf.EINTERNAL, "artifact %q: stored content is %d bytes, the index says %d", p, size, a.Size)
	}
	return a, rc, nil
}

// serveArtifact sends the stored file at p as an attachment.
func (h *Handler) serveArtifact(w http.ResponseWriter, r *http.Request, ws, p string) {
	a, rc, err := OpenArtifact(r.Context(), h.Store, h.Blobs, ws, p)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	defer rc.Close()
	size := a.Size
	hdr := w.Header()
	hdr.Set("Content-Type", artifactContentType(p))
	hdr.Set("Content-Length", strconv.FormatInt(size, 10))
	disp := mime.FormatMediaType("attachment", map[string]string{"filename": path.Base(p)})
	if disp == "" {
		disp = "attachment"
	}
	hdr.Set("Content-Disposition", disp)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("ETag", `"`+a.Digest+`"`)
	if a.UpdatedAt > 0 {
		hdr.Set("Last-Modified", time.UnixMilli(a.UpdatedAt).UTC().Format(http.TimeFormat))
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if err := copyVerified(w, rc); err != nil {
		var werr writeError
		if !errors.As(err, &werr) {
			h.log().Error("artifact download aborted", "workspace", ws, "path", p, "digest", a.Digest, "err", err)
		}
		// The status line is gone; breaking the connection is the only
		// way left to tell the client its copy is incomplete.
		panic(http.ErrAbortHandler)
	}
}

// writeError marks a failure to write to the client, as opposed to a
// failure of the blob being read.
type writeError struct{ error }

// copyVerified copies a blob reader to w, always holding back the last
// chunk read until a further read succeeds. The reader reports corruption
// at its end instead of io.EOF, so the held-back chunk is written only
// once the whole blob is known to be intact, and a damaged blob never
// reaches the client complete.
func copyVerified(w io.Writer, rc io.Reader) error {
	bufs := [2][]byte{make([]byte, streamChunk), make([]byte, streamChunk)}
	cur := 0
	var held []byte
	for {
		n, err := io.ReadFull(rc, bufs[cur])
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return err
		}
		if n > 0 && held != nil {
			if _, werr := w.Write(held); werr != nil {
				return writeError{werr}
			}
			held = nil
		}
		if n > 0 {
			held = bufs[cur][:n]
			cur = 1 - cur
		}
		if err != nil { // io.EOF or a short last chunk: the blob checked out
			if held != nil {
				if _, werr := w.Write(held); werr != nil {
					return writeError{werr}
				}
			}
			return nil
		}
	}
}

// artifactContentType guesses a type from the extension. Types a browser
// would run (HTML, SVG, JavaScript) are sent as plain text: artifacts are
// user content served from the API's origin.
func artifactContentType(p string) string {
	t := mime.TypeByExtension(path.Ext(p))
	if t == "" {
		return "application/octet-stream"
	}
	base, _, _ := strings.Cut(t, ";")
	switch strings.TrimSpace(strings.ToLower(base)) {
	case "text/html", "image/svg+xml", "text/javascript", "application/javascript", "application/xhtml+xml", "text/xml", "application/xml":
		return "text/plain; charset=utf-8"
	}
	return t
}

func (h *Handler) deleteArtifact(w http.ResponseWriter, r *http.Request) {
	ws, p, ok := h.artifactRequest(w, r, r.PathValue("path"), false)
	if !ok {
		return
	}
	if err := h.Store.DeleteArtifacts(r.Context(), ws, p); err != nil {
		h.WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

type listProxyArtifactsResponse struct {
	Files []mlflowFileInfo `json:"files,omitempty"`
}

// listArtifacts lists a folder for the proxy's client: entries are
// basenames, which the client joins to the folder itself.
func (h *Handler) listArtifacts(w http.ResponseWriter, r *http.Request) {
	ws, dir, ok := h.artifactRequest(w, r, r.URL.Query().Get("path"), true)
	if !ok {
		return
	}
	files, err := h.listArtifactDir(r, ws, dir)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listProxyArtifactsResponse{Files: files})
}
