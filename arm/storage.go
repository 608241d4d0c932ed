package arm

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/blob"
	"github.com/wharfml/wharf/scheduler"
)

// The Blob Storage API, as much of it as the SDK's uploads use (PUT blob,
// block and block list, metadata, properties, download and listing),
// served over a workspace's datastores: the container
// "<workspace>.<datastore>" is that datastore, a blob is the file at its
// path, stored in the server's content store and recorded as the
// datastore file (so that jobs name it by azureml://datastores/ URI), and
// its properties beside it (wharf.StorageBlobService). Every request
// carries a shared access signature the server issued (see sas.go): the
// SDK calls this API without a bearer token.

// BlobPrefix is where the Blob API is served: https://<account>.blob.
// <suffix>/<container>/<blob> is routed to /blob/<account>/<container>/
// <blob> (see BlobHost), which also answers path-style requests.
const BlobPrefix = "/blob"

// Account is the storage account Wharf's datastores show the SDK: the
// one whose API Wharf serves. Any account name below the storage suffix
// reaches it; the container says which workspace and datastore.
const Account = "wharf"

// storageVersion is the x-ms-version the answers carry.
const storageVersion = "2025-01-05"

// BlobHost routes a request for <account>.blob.<storage suffix> below
// BlobPrefix; a server passes it to http.Server.VirtualHost.
func (h *Handler) BlobHost(host string) (prefix string, ok bool) {
	account, ok := strings.CutSuffix(strings.ToLower(host), ".blob."+strings.ToLower(h.storageSuffix()))
	if !ok || account == "" || strings.Contains(account, ".") {
		return "", false
	}
	return BlobPrefix + "/" + account, true
}

// blobURL is the URL of a container, or of a folder of one, as the SDK
// is told it: below <account>.blob.<suffix>.
func (h *Handler) blobURL(resource string) string {
	return "https://" + Account + ".blob." + h.storageSuffix() + "/" + resource
}

// containerName is the container of a workspace's datastore.
func containerName(workspace, datastore string) string { return workspace + "." + datastore }

// storageError is an error of the Blob API: its status and Azure's error
// code, which azure-storage-blob turns into its exceptions
// (BlobNotFound into ResourceNotFoundError).
type storageError struct {
	status  int
	code    string
	message string
}

func (e *storageError) Error() string { return e.code + ": " + e.message }

func newStorageError(status int, code, format string, args ...any) *storageError {
	return &storageError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// writeStorageError answers err in the Blob API's shape: the code in
// x-ms-error-code (all a HEAD has) and an XML body.
func (h *Handler) writeStorageError(w http.ResponseWriter, r *http.Request, err error) {
	var se *storageError
	if !errors.As(err, &se) {
		switch code := wharf.ErrorCode(err); code {
		case wharf.ENOTFOUND:
			se = newStorageError(http.StatusNotFound, "BlobNotFound", "%s", wharf.ErrorMessage(err))
		case wharf.EFORBIDDEN:
			msg := wharf.ErrorMessage(err)
			c, rest, _ := strings.Cut(msg, ": ")
			se = newStorageError(http.StatusForbidden, c, "%s", rest)
		case wharf.EINVALID:
			se = newStorageError(http.StatusBadRequest, "InvalidInput", "%s", wharf.ErrorMessage(err))
		default:
			if code == wharf.EINTERNAL {
				h.log().Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			se = newStorageError(http.StatusInternalServerError, "InternalError", "%s", wharf.ErrorMessage(err))
		}
	}
	w.Header().Set("x-ms-error-code", se.code)
	w.Header().Set("x-ms-version", storageVersion)
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(se.status)
	if r.Method != http.MethodHead {
		_ = xml.NewEncoder(w).Encode(struct {
			XMLName xml.Name `xml:"Error"`
			Code    string
			Message string
		}{Code: se.code, Message: se.message})
	}
}

// blobTarget is what a Blob API request names.
type blobTarget struct {
	workspace, datastore string
	// path is the blob's path, empty for the container itself.
	path string
	// sas is the request's verified signature.
	sas sas
}

// target reads the container and blob of a request and checks its
// signature for perm.
func (h *Handler) target(r *http.Request, perm string) (blobTarget, error) {
	container, blobPath := r.PathValue("container"), r.PathValue("blob")
	ws, ds, ok := strings.Cut(container, ".")
	if !ok || wharf.ValidateName("workspace", ws) != nil || wharf.ValidateName("datastore", ds) != nil {
		return blobTarget{}, newStorageError(http.StatusNotFound, "ContainerNotFound", "container %q is not <workspace>.<datastore>", container)
	}
	resource := container
	if blobPath != "" {
		resource += "/" + blobPath
	}
	s, err := h.sasKeys().verify(r.Context(), r.URL.Query(), resource, perm, time.Now())
	if err != nil {
		return blobTarget{}, err
	}
	if _, err := h.Store.FindDatastore(r.Context(), ws, ds); err != nil {
		if wharf.IsNotFound(err) {
			return blobTarget{}, newStorageError(http.StatusNotFound, "ContainerNotFound", "%s", wharf.ErrorMessage(err))
		}
		return blobTarget{}, err
	}
	return blobTarget{workspace: ws, datastore: ds, path: blobPath, sas: s}, nil
}

func (h *Handler) sasKeys() *sasKeys {
	h.sasOnce.Do(func() { h.sas = &sasKeys{store: h.Store} })
	return h.sas
}

// blobMetadata reads the x-ms-meta-* headers. Their names are kept in
// lower case: HTTP's header names carry no case, and the SDK writes its
// own so.
func blobMetadata(hdr http.Header) map[string]string {
	md := map[string]string{}
	for k, v := range hdr {
		if name, ok := strings.CutPrefix(strings.ToLower(k), "x-ms-meta-"); ok && len(v) > 0 {
			md[name] = v[0]
		}
	}
	return md
}

func etag(digest string) string {
	return `"0x` + strings.ToUpper(strings.TrimPrefix(digest, "sha256:")[:16]) + `"`
}

// putBlob serves PUT on a blob: its content (comp absent), its metadata,
// a block, or a block list that commits the blocks.
func (h *Handler) putBlob(w http.ResponseWriter, r *http.Request) {
	comp := r.URL.Query().Get("comp")
	t, err := h.target(r, "w")
	if err == nil && t.path == "" {
		err = newStorageError(http.StatusBadRequest, "InvalidUri", "a blob's path is required")
	}
	if err == nil && h.Blobs == nil {
		err = wharf.Errorf(wharf.EUNAVAILABLE, "content storage is not configured on this server")
	}
	if err != nil {
		h.writeStorageError(w, r, err)
		return
	}
	switch comp {
	case "":
		err = h.putBlobContent(w, r, t)
	case "metadata":
		err = h.Store.SetStorageBlobMetadata(r.Context(), t.workspace, t.datastore, t.path, blobMetadata(r.Header))
		if err == nil {
			w.Header().Set("x-ms-version", storageVersion)
			w.WriteHeader(http.StatusOK)
		}
	case "block":
		err = h.putBlock(w, r, t)
	case "blocklist":
		err = h.putBlockList(w, r, t)
	default:
		err = newStorageError(http.StatusBadRequest, "UnsupportedQueryParameter", "comp=%s is not supported", comp)
	}
	if err != nil {
		h.writeStorageError(w, r, err)
	}
}

// ifNoneMatch refuses to replace an existing blob when the request says
// If-None-Match: *, as the SDK does for uploads it believes new.
func (h *Handler) ifNoneMatch(r *http.Request, t blobTarget) error {
	if r.Header.Get("If-None-Match") != "*" {
		return nil
	}
	_, err := h.Store.FindDatastoreFile(r.Context(), t.workspace, t.datastore, t.path)
	switch {
	case err == nil:
		return newStorageError(http.StatusConflict, "BlobAlreadyExists", "the specified blob already exists")
	case wharf.IsNotFound(err):
		return nil
	}
	return err
}

// storeContent streams a request body into the content store, checking
// its length against the one the request declared.
func (h *Handler) storeContent(r *http.Request) (string, int64, error) {
	digest, size, err := h.Blobs.Put(r.Context(), r.Body)
	if err != nil {
		return "", 0, err
	}
	if r.ContentLength >= 0 && size != r.ContentLength {
		return "", 0, newStorageError(http.StatusBadRequest, "InvalidInput", "the body has %d bytes, Content-Length says %d", size, r.ContentLength)
	}
	return digest, size, nil
}

func (h *Handler) putBlobContent(w http.ResponseWriter, r *http.Request, t blobTarget) error {
	if bt := r.Header.Get("x-ms-blob-type"); bt != "" && bt != "BlockBlob" {
		return newStorageError(http.StatusBadRequest, "InvalidBlobType", "only block blobs are supported, not %s", bt)
	}
	if err := h.ifNoneMatch(r, t); err != nil {
		return err
	}
	digest, _, err := h.storeContent(r)
	if err != nil {
		return err
	}
	return h.commitBlob(w, r, t, digest)
}

// commitBlob records content at the blob's path with the request's
// properties and answers 201.
func (h *Handler) commitBlob(w http.ResponseWriter, r *http.Request, t blobTarget, digest string) error {
	ct := r.Header.Get("x-ms-blob-content-type")
	if ct == "" && r.URL.Query().Get("comp") == "" {
		ct = r.Header.Get("Content-Type")
	}
	b := &wharf.StorageBlob{
		DatastoreFile: wharf.DatastoreFile{Workspace: t.workspace, Datastore: t.datastore, Path: t.path, Digest: digest, Kind: scheduler.KindFile},
		ContentType:   ct, Metadata: blobMetadata(r.Header),
	}
	// In an azure_blob or s3 datastore the blob lands in its container
	// first, where Azure ML's SDK would have put it, for other tools;
	// only then is it recorded, so a failed write records nothing.
	if err := blob.WriteDatastorePath(r.Context(), h.Store, h.Blobs, t.workspace, t.datastore, t.path, digest, false); err != nil {
		return err
	}
	if err := h.Store.PutStorageBlob(r.Context(), b); err != nil {
		return err
	}
	w.Header().Set("ETag", etag(digest))
	w.Header().Set("Last-Modified", b.UpdatedAt.Format(http.TimeFormat))
	w.Header().Set("x-ms-version", storageVersion)
	w.Header().Set("x-ms-request-server-encrypted", "false")
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (h *Handler) putBlock(w http.ResponseWriter, r *http.Request, t blobTarget) error {
	id := r.URL.Query().Get("blockid")
	if id == "" {
		return newStorageError(http.StatusBadRequest, "InvalidQueryParameterValue", "blockid is required")
	}
	digest, size, err := h.storeContent(r)
	if err != nil {
		return err
	}
	if err := h.Store.PutStorageBlock(r.Context(), &wharf.StorageBlock{Workspace: t.workspace, Datastore: t.datastore,
		Path: t.path, ID: id, Digest: digest, Size: size}); err != nil {
		return err
	}
	w.Header().Set("x-ms-version", storageVersion)
	w.Header().Set("x-ms-request-server-encrypted", "false")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// maxBlockList bounds a block list's XML: Azure allows 50,000 blocks.
const maxBlockList = 4 << 20

// putBlockList joins uploaded blocks, in the list's order, into the
// blob. Only blocks uploaded since the blob was last written can be
// named: Wharf keeps a blob's content, not the blocks it was made of.
func (h *Handler) putBlockList(w http.ResponseWriter, r *http.Request, t blobTarget) error {
	var list struct {
		Entries []struct {
			XMLName xml.Name
			ID      string `xml:",chardata"`
		} `xml:",any"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBlockList))
	if err == nil {
		err = xml.Unmarshal(body, &list)
	}
	if err != nil {
		return newStorageError(http.StatusBadRequest, "InvalidXmlDocument", "the block list is not XML: %v", err)
	}
	uploaded, err := h.Store.StorageBlocks(r.Context(), t.workspace, t.datastore, t.path)
	if err != nil {
		return err
	}
	byID := map[string]string{}
	for _, b := range uploaded {
		byID[b.ID] = b.Digest
	}
	digests := make([]string, 0, len(list.Entries))
	for _, e := range list.Entries {
		d, ok := byID[e.ID]
		if !ok || e.XMLName.Local == "Committed" {
			return newStorageError(http.StatusBadRequest, "InvalidBlockList", "block %q was not uploaded since the blob was last written", e.ID)
		}
		digests = append(digests, d)
	}
	if err := h.ifNoneMatch(r, t); err != nil {
		return err
	}
	digest, err := h.joinBlocks(r.Context(), digests)
	if err != nil {
		return err
	}
	return h.commitBlob(w, r, t, digest)
}

// joinBlocks stores the concatenation of stored blocks, streaming them.
func (h *Handler) joinBlocks(ctx context.Context, digests []string) (string, error) {
	pr, pw := io.Pipe()
	go func() {
		for _, d := range digests {
			rc, _, err := h.Blobs.Open(ctx, d)
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			_, err = io.Copy(pw, rc)
			rc.Close()
			if err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.Close()
	}()
	digest, _, err := h.Blobs.Put(ctx, pr)
	pr.CloseWithError(err)
	return digest, err
}

// getBlob serves GET and HEAD on a blob: its properties and, for GET,
// its content or the x-ms-range (or Range) of it. GET on a path with
// restype=container lists the container below that path, as a client
// given a folder's URL as its container's asks.
func (h *Handler) getBlob(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("restype") == "container" {
		h.getContainer(w, r)
		return
	}
	t, err := h.target(r, "r")
	var b *wharf.StorageBlob
	if err == nil {
		b, err = h.Store.FindStorageBlob(r.Context(), t.workspace, t.datastore, t.path)
	}
	if wharf.IsNotFound(err) {
		// A file of a job's folder output, recorded as the folder.
		if inFolder, ferr := h.folderBlob(r.Context(), t.workspace, t.datastore, t.path); ferr != nil || inFolder != nil {
			b, err = inFolder, ferr
		}
	}
	if err == nil && b.Kind != scheduler.KindFile {
		err = newStorageError(http.StatusNotFound, "BlobNotFound", "%s is a folder", t.path)
	}
	var size int64
	if err == nil && h.Blobs == nil {
		err = wharf.Errorf(wharf.EUNAVAILABLE, "content storage is not configured on this server")
	}
	if err == nil {
		size, err = h.Blobs.Stat(r.Context(), b.Digest)
	}
	if err != nil {
		h.writeStorageError(w, r, err)
		return
	}
	start, end, partial, err := blobRange(r, size)
	if err != nil {
		h.writeStorageError(w, r, err)
		return
	}
	hdr := w.Header()
	for k, v := range b.Metadata {
		// As stored (Go would capitalize a canonical key), as the
		// SDK compares names.
		hdr["x-ms-meta-"+k] = []string{v}
	}
	ct := b.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	hdr.Set("Content-Type", ct)
	hdr.Set("ETag", etag(b.Digest))
	hdr.Set("Last-Modified", b.UpdatedAt.Format(http.TimeFormat))
	hdr.Set("x-ms-creation-time", b.CreatedAt.Format(http.TimeFormat))
	hdr.Set("x-ms-blob-type", "BlockBlob")
	hdr.Set("x-ms-version", storageVersion)
	hdr.Set("Accept-Ranges", "bytes")
	hdr.Set("Content-Length", strconv.FormatInt(end-start, 10))
	status := http.StatusOK
	if partial {
		hdr.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, size))
		status = http.StatusPartialContent
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	rc, _, err := h.Blobs.Open(r.Context(), b.Digest)
	if err != nil {
		h.writeStorageError(w, r, err)
		return
	}
	defer rc.Close()
	w.WriteHeader(status)
	if _, err := io.CopyN(io.Discard, rc, start); err == nil {
		_, _ = io.CopyN(w, rc, end-start)
	}
}

// blobRange reads a request's byte range ("bytes=a-b", b optional) of a
// blob of size bytes: the half-open [start, end), and whether it is part.
func blobRange(r *http.Request, size int64) (start, end int64, partial bool, err error) {
	spec := r.Header.Get("x-ms-range")
	if spec == "" {
		spec = r.Header.Get("Range")
	}
	if spec == "" {
		return 0, size, false, nil
	}
	a, b, ok := strings.Cut(strings.TrimPrefix(spec, "bytes="), "-")
	start, err1 := strconv.ParseInt(a, 10, 64)
	end = size
	var err2 error
	if b != "" {
		var last int64
		last, err2 = strconv.ParseInt(b, 10, 64)
		end = min(last+1, size)
	}
	if !ok || err1 != nil || err2 != nil || start < 0 || start >= size || end <= start {
		return 0, 0, false, newStorageError(http.StatusRequestedRangeNotSatisfiable, "InvalidRange", "range %q does not fit a blob of %d bytes", spec, size)
	}
	return start, end, true, nil
}

// maxListResults is the most blobs one listing returns, as Azure's.
const maxListResults = 5000

// getContainer serves GET on a container: its properties, or with
// comp=list the list of its blobs below a prefix, a page at a time.
func (h *Handler) getContainer(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	perm := "r"
	if q.Get("comp") == "list" {
		perm = "l"
	}
	t, err := h.target(r, perm)
	if err != nil {
		h.writeStorageError(w, r, err)
		return
	}
	w.Header().Set("x-ms-version", storageVersion)
	if q.Get("comp") != "list" {
		w.Header().Set("ETag", etag("sha256:"+strings.Repeat("0", 64)))
		w.Header().Set("Last-Modified", time.Unix(0, 0).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusOK)
		return
	}
	// A folder's URL as the container: its path leads every name.
	base := ""
	if t.path != "" {
		base = t.path + "/"
	}
	limit := maxListResults
	if n, err := strconv.Atoi(q.Get("maxresults")); err == nil && n > 0 && n < limit {
		limit = n
	}
	marker := ""
	if m := q.Get("marker"); m != "" {
		marker = base + m
	}
	blobs, err := h.Store.ListStorageBlobs(r.Context(), t.workspace, t.datastore, base+q.Get("prefix"), marker, limit+1)
	if err == nil {
		blobs, err = h.withFolderFiles(r.Context(), t.workspace, t.datastore, base+q.Get("prefix"), marker, blobs, limit+1)
	}
	if err != nil {
		h.writeStorageError(w, r, err)
		return
	}
	next := ""
	if len(blobs) > limit {
		blobs = blobs[:limit]
		next = strings.TrimPrefix(blobs[limit-1].Path, base)
	}
	var out bytes.Buffer
	out.WriteString(xml.Header)
	enc := xml.NewEncoder(&out)
	err = enc.Encode(h.enumeration(r, q, blobs, base, next))
	if err != nil {
		h.writeStorageError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out.Bytes())
}

// xmlBlob is a blob in a listing.
type xmlBlob struct {
	Name       string
	Properties struct {
		CreationTime  string `xml:"Creation-Time"`
		LastModified  string `xml:"Last-Modified"`
		Etag          string
		ContentLength int64  `xml:"Content-Length"`
		ContentType   string `xml:"Content-Type"`
		BlobType      string
		AccessTier    string
		LeaseStatus   string
		LeaseState    string
	}
	Metadata *xmlMetadata `xml:",omitempty"`
}

// xmlMetadata is a blob's metadata in a listing, each name an element.
type xmlMetadata map[string]string

// MarshalXML writes each name and value as <name>value</name>.
func (m *xmlMetadata) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	for k, v := range *m {
		if err := e.EncodeElement(v, xml.StartElement{Name: xml.Name{Local: k}}); err != nil {
			return err
		}
	}
	return e.EncodeToken(start.End())
}

func (h *Handler) enumeration(r *http.Request, q url.Values, blobs []*wharf.StorageBlob, base, next string) any {
	type enumeration struct {
		XMLName         xml.Name `xml:"EnumerationResults"`
		ServiceEndpoint string   `xml:"ServiceEndpoint,attr"`
		ContainerName   string   `xml:"ContainerName,attr"`
		Prefix          string
		Marker          string
		MaxResults      int       `xml:",omitempty"`
		Blobs           []xmlBlob `xml:"Blobs>Blob"`
		NextMarker      string
	}
	withMetadata := strings.Contains(q.Get("include"), "metadata")
	out := enumeration{ServiceEndpoint: "https://" + r.Host + "/", ContainerName: r.PathValue("container"),
		Prefix: q.Get("prefix"), Marker: q.Get("marker"), NextMarker: next, Blobs: []xmlBlob{}}
	for _, b := range blobs {
		var x xmlBlob
		x.Name = strings.TrimPrefix(b.Path, base)
		p := &x.Properties
		p.CreationTime, p.LastModified = b.CreatedAt.Format(http.TimeFormat), b.UpdatedAt.Format(http.TimeFormat)
		p.Etag, p.ContentType, p.BlobType = etag(b.Digest), b.ContentType, "BlockBlob"
		p.AccessTier, p.LeaseStatus, p.LeaseState = "Hot", "unlocked", "available"
		if size, err := h.Blobs.Stat(r.Context(), b.Digest); err == nil {
			p.ContentLength = size
		}
		if withMetadata {
			md := xmlMetadata(b.Metadata)
			x.Metadata = &md
		}
		out.Blobs = append(out.Blobs, x)
	}
	return out
}
