package blob

import (
	"bytes"
	"context"
	"io"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	azblobblob "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

var _ namedAPI = (*azureAPI)(nil)

// eachBlob calls fn with every blob whose name starts with prefix, as the
// listing gives it.
func (a *azureAPI) eachBlob(ctx context.Context, prefix string, fn func(item *container.BlobItem) error) error {
	pager := a.c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return a.describe(err, "list "+prefix)
		}
		for _, item := range page.Segment.BlobItems {
			if item.Name == nil || item.Properties == nil {
				continue
			}
			if err := fn(item); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *azureAPI) list(ctx context.Context, prefix string, fn func(key string, modified time.Time) error) error {
	return a.eachBlob(ctx, prefix, func(item *container.BlobItem) error {
		if item.Properties.LastModified == nil {
			return nil
		}
		return fn(*item.Name, *item.Properties.LastModified)
	})
}

func (a *azureAPI) listVersions(ctx context.Context, prefix string, fn func(key, etag string, size int64) error) error {
	return a.eachBlob(ctx, prefix, func(item *container.BlobItem) error {
		if item.Properties.ETag == nil || item.Properties.ContentLength == nil {
			return nil
		}
		return fn(*item.Name, azureETag(item.Properties.ETag), *item.Properties.ContentLength)
	})
}

func (a *azureAPI) getVersion(ctx context.Context, key string) (io.ReadCloser, string, int64, error) {
	resp, err := a.c.NewBlobClient(key).DownloadStream(ctx, nil)
	if err != nil {
		return nil, "", 0, a.describe(err, "read "+key)
	}
	var size int64
	if resp.ContentLength != nil {
		size = *resp.ContentLength
	}
	// A resumed read asks for the version first read (the retry reader
	// sends its ETag), so it never joins two versions.
	return resp.NewRetryReader(ctx, &azblobblob.RetryReaderOptions{MaxRetries: retryAttempts - 1}), azureETag(resp.ETag), size, nil
}

func (a *azureAPI) putVersion(ctx context.Context, key string, r io.Reader, size int64) (string, error) {
	b := a.c.NewBlockBlobClient(key)
	if size <= partSize {
		content, err := io.ReadAll(io.LimitReader(r, partSize+1))
		if err != nil {
			return "", err
		}
		resp, err := b.Upload(ctx, streaming.NopCloser(bytes.NewReader(content)), nil)
		if err != nil {
			return "", a.describe(err, "write "+key)
		}
		return azureETag(resp.ETag), nil
	}
	// The blocks become the blob only when the block list commits them:
	// a reader sees the old blob until then.
	resp, err := b.UploadStream(ctx, r, &blockblob.UploadStreamOptions{BlockSize: partSize, Concurrency: partConcurrency})
	if err != nil {
		return "", a.describe(err, "write "+key)
	}
	return azureETag(resp.ETag), nil
}

// azureETag is an ETag as Wharf records it: without the quotes that the
// service's headers have and its listings lack.
func azureETag(e *azcore.ETag) string {
	if e == nil {
		return ""
	}
	return unquoteETag(string(*e))
}
