package scheduler

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// blobHostSuffix ends the host of Azure Blob storage's public endpoints,
// https://<account>.blob.core.windows.net.
const blobHostSuffix = ".blob.core.windows.net"

// blobFolderURL reads a folder URL as Azure Blob storage: the container's
// URL (with the URL's SAS, if any) and the prefix below which the
// folder's blobs are. An account listed in endpoints is reached at its
// endpoint (Azurite, Azure Stack, a private endpoint) rather than at
// <account>.blob.core.windows.net. A URL that is not Azure Blob storage
// is an error: plain HTTPS lists no folder.
func blobFolderURL(rawURL string, endpoints map[string]string) (containerURL, prefix string, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", "", err
	}
	host := strings.ToLower(u.Hostname())
	if account, ok := strings.CutSuffix(host, blobHostSuffix); ok && account != "" {
		rawURL = atEndpoint(rawURL, endpoints)
	} else if !underEndpoint(rawURL, endpoints) {
		return "", "", fmt.Errorf("a folder can be read only from Azure Blob storage (wasbs://, abfss:// or https://<account>%s/<container>/<path>, or an endpoint the server is given with --azure-blob-endpoint), whose container lists its blobs; plain HTTPS lists no folder", blobHostSuffix)
	}
	parts, err := azblob.ParseURL(rawURL)
	if err != nil {
		return "", "", err
	}
	if parts.ContainerName == "" {
		return "", "", errors.New("the URL names no container")
	}
	prefix = strings.Trim(parts.BlobName, "/")
	if prefix != "" {
		prefix += "/"
	}
	parts.BlobName = ""
	return parts.String(), prefix, nil
}

// atEndpoint rewrites a URL at https://<account>.blob.core.windows.net
// to the endpoint the account is given in endpoints, if any.
func atEndpoint(rawURL string, endpoints map[string]string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	account, ok := strings.CutSuffix(strings.ToLower(u.Hostname()), blobHostSuffix)
	ep := endpoints[account]
	if !ok || ep == "" {
		return rawURL
	}
	rewritten := strings.TrimRight(ep, "/") + u.EscapedPath()
	if u.RawQuery != "" {
		rewritten += "?" + u.RawQuery
	}
	return rewritten
}

// underEndpoint reports whether rawURL lies below one of the endpoints.
func underEndpoint(rawURL string, endpoints map[string]string) bool {
	for _, ep := range endpoints {
		if strings.HasPrefix(rawURL, strings.TrimRight(ep, "/")+"/") {
			return true
		}
	}
	return false
}

// fetchFolderInput downloads every blob below an Azure Blob folder URL
// into dir/<name>, keeping their paths below the folder, and returns the
// folder. Access is anonymous (a public container) or by the SAS the URL
// carries. The error names the URL and why it could not be read.
func (s *Scheduler) fetchFolderInput(ctx context.Context, rawURL, dir, name string) (string, error) {
	fail := func(err error) (string, error) {
		return "", fmt.Errorf("downloading folder %s: %w", rawURL, unwrapURLError(err))
	}
	containerURL, prefix, err := blobFolderURL(rawURL, s.BlobEndpoints)
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	defer cancel()
	opts := &container.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: fetchClient, Retry: policy.RetryOptions{MaxRetries: 2}}}
	c, err := container.NewClientWithNoCredential(containerURL, opts)
	if err != nil {
		return fail(err)
	}
	dest := filepath.Join(dir, name)
	if err := os.MkdirAll(dest, 0o700); err != nil {
		return "", err
	}
	var total int64
	files := 0
	pager := c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return fail(err)
		}
		for _, item := range page.Segment.BlobItems {
			if item.Name == nil {
				continue
			}
			rel := strings.TrimPrefix(*item.Name, prefix)
			if rel == "" || strings.HasSuffix(rel, "/") {
				continue // a folder marker
			}
			clean := path.Clean(rel)
			if clean == ".." || strings.HasPrefix(clean, "../") || path.IsAbs(clean) {
				return fail(fmt.Errorf("blob %q would land outside the folder", *item.Name))
			}
			if item.Properties != nil && item.Properties.ContentLength != nil {
				total += *item.Properties.ContentLength
			}
			if total > FetchMaxBytes {
				return fail(fmt.Errorf("more than the %d bytes allowed", FetchMaxBytes))
			}
			target := filepath.Join(dest, filepath.FromSlash(clean))
			if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
				return "", err
			}
			if err := downloadBlob(ctx, c.NewBlobClient(*item.Name), target); err != nil {
				return fail(fmt.Errorf("%s: %w", *item.Name, err))
			}
			files++
		}
	}
	if files == 0 {
		return fail(fmt.Errorf("no blobs below %q", prefix))
	}
	return dest, nil
}

// downloadBlob writes one blob to target.
func downloadBlob(ctx context.Context, b *blob.Client, target string) error {
	f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = b.DownloadFile(ctx, f, nil)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(target)
	}
	return err
}
