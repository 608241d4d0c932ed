package http

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"os"

	"github.com/wharfml/wharf"
)

// BlobClient is a workspace's content store seen through the API: a
// wharf.BlobStore, so code that snapshots or materializes folders works
// the same against the server as against the local store.
type BlobClient struct {
	Client    *Client
	Workspace string
	// Progress, if set, is told how many bytes each upload sent.
	Progress func(n int64)
}

var _ wharf.BlobStore = (*BlobClient)(nil)

func (b *BlobClient) path(digest string) string {
	return "/api/v1/workspaces/" + url.PathEscape(b.Workspace) + "/blobs/" + url.PathEscape(digest)
}

// Put hashes r into a temporary file, then uploads it unless the server
// has it already. The spool keeps memory flat whatever the size.
func (b *BlobClient) Put(ctx context.Context, r io.Reader) (string, int64, error) {
	tmp, err := os.CreateTemp("", "wharf-upload-*")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	size, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err != nil {
		return "", 0, err
	}
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if _, err := b.Stat(ctx, digest); err == nil {
		return digest, size, nil
	} else if !wharf.IsNotFound(err) {
		return "", 0, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return "", 0, err
	}
	var body io.Reader = tmp
	if b.Progress != nil {
		body = &countingReader{r: tmp, report: b.Progress}
	}
	if err := b.Client.Upload(ctx, b.path(digest), body, size); err != nil {
		return "", 0, err
	}
	return digest, size, nil
}

// Open downloads a blob.
func (b *BlobClient) Open(ctx context.Context, digest string) (io.ReadCloser, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.Client.URL+b.path(digest), nil)
	if err != nil {
		return nil, 0, err
	}
	if err := b.Client.authorize(ctx, req); err != nil {
		return nil, 0, err
	}
	resp, err := b.Client.HTTP.Do(req)
	if err != nil {
		return nil, 0, wharf.Errorf(wharf.EUNAVAILABLE, "cannot reach the Wharf server at %s: %s", b.Client.URL, shortNetError(err))
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, 0, decodeErrorResponse(resp)
	}
	return resp.Body, resp.ContentLength, nil
}

// Stat asks whether the server has a blob.
func (b *BlobClient) Stat(ctx context.Context, digest string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, b.Client.URL+b.path(digest), nil)
	if err != nil {
		return 0, err
	}
	if err := b.Client.authorize(ctx, req); err != nil {
		return 0, err
	}
	resp, err := b.Client.HTTP.Do(req)
	if err != nil {
		return 0, wharf.Errorf(wharf.EUNAVAILABLE, "cannot reach the Wharf server at %s: %s", b.Client.URL, shortNetError(err))
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return 0, wharf.Errorf(wharf.ENOTFOUND, "content %s is not on the server", digest)
	case resp.StatusCode >= 400:
		return 0, wharf.Errorf(codeOfStatus(resp.StatusCode), "checking content %s: HTTP %d", digest, resp.StatusCode)
	}
	return resp.ContentLength, nil
}

// Delete is not offered: content is shared and removed by the server.
func (b *BlobClient) Delete(ctx context.Context, digest string) error {
	return wharf.Errorf(wharf.EFORBIDDEN, "content cannot be deleted through the API")
}

type countingReader struct {
	r      io.Reader
	report func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.report(int64(n))
	}
	return n, err
}

// codeOfStatus maps an HTTP status without a body back to an error code.
func codeOfStatus(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return wharf.EUNAUTHENTICATED
	case http.StatusForbidden:
		return wharf.EFORBIDDEN
	case http.StatusNotFound:
		return wharf.ENOTFOUND
	case http.StatusServiceUnavailable:
		return wharf.EUNAVAILABLE
	}
	return wharf.EINTERNAL
}
