package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	azblobblob "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/wharfml/wharf"
)

// AzureConfig says where an Azure Blob Storage container is and how to
// reach it. Exactly one of AccountKey and SASToken may be set; with neither
// the container is read anonymously, which a public container allows.
type AzureConfig struct {
	// Datastore names the store in error messages.
	Datastore string
	// AccountURL is the storage account's blob endpoint: by default
	// https://<account>.blob.core.windows.net, or an emulator's such as
	// http://127.0.0.1:10000/devstoreaccount1.
	AccountURL string
	Account    string
	Container  string
	// Prefix is prepended to every object name: a folder in the
	// container, ending in "/" (added when missing).
	Prefix     string
	AccountKey string
	// SASToken is a shared access signature's query string, with or
	// without its leading "?".
	SASToken string
}

// AzureAccountURL is a storage account's blob endpoint on public Azure,
// for the given protocol (https unless "http").
func AzureAccountURL(account, protocol string) string {
	if protocol == "" {
		protocol = "https"
	}
	return fmt.Sprintf("%s://%s.blob.core.windows.net", protocol, account)
}

// NewAzure returns a BlobStore in an Azure Blob Storage container. It makes
// no request: a missing container or a bad key shows up, named, at the
// first operation.
func NewAzure(cfg AzureConfig) (*ObjectStore, error) {
	if cfg.Container == "" {
		return nil, wharf.Errorf(wharf.EINVALID, "datastore %s: no container name", cfg.Datastore).WithField("container_name")
	}
	if cfg.AccountURL == "" {
		if cfg.Account == "" {
			return nil, wharf.Errorf(wharf.EINVALID, "datastore %s: no account name or endpoint", cfg.Datastore).WithField("account_name")
		}
		cfg.AccountURL = AzureAccountURL(cfg.Account, "")
	}
	if cfg.AccountKey != "" && cfg.SASToken != "" {
		return nil, wharf.Errorf(wharf.EINVALID, "datastore %s: give an account key or a SAS token, not both", cfg.Datastore).WithField("credentials")
	}
	u, err := url.Parse(strings.TrimSuffix(cfg.AccountURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, wharf.Errorf(wharf.EINVALID, "datastore %s: endpoint %q is not an http(s) URL", cfg.Datastore, cfg.AccountURL).WithField("endpoint")
	}
	u = u.JoinPath(cfg.Container)
	if cfg.SASToken != "" {
		u.RawQuery = strings.TrimPrefix(cfg.SASToken, "?")
	}
	opts := &container.ClientOptions{ClientOptions: azcore.ClientOptions{
		Retry: policy.RetryOptions{MaxRetries: retryAttempts - 1, RetryDelay: 500 * time.Millisecond, MaxRetryDelay: 30 * time.Second},
	}}
	var c *container.Client
	if cfg.AccountKey != "" {
		account := cfg.Account
		if account == "" {
			return nil, wharf.Errorf(wharf.EINVALID, "datastore %s: an account key needs the account name", cfg.Datastore).WithField("account_name")
		}
		cred, cerr := azblob.NewSharedKeyCredential(account, cfg.AccountKey)
		if cerr != nil {
			return nil, wharf.Errorf(wharf.EINVALID, "datastore %s: account key: %v", cfg.Datastore, cerr).WithField("credentials.account_key")
		}
		c, err = container.NewClientWithSharedKeyCredential(u.String(), cred, opts)
	} else {
		c, err = container.NewClientWithNoCredential(u.String(), opts)
	}
	if err != nil {
		return nil, fmt.Errorf("datastore %s: %w", cfg.Datastore, err)
	}
	return &ObjectStore{api: &azureAPI{c: c, datastore: cfg.Datastore, container: cfg.Container}, prefix: cleanPrefix(cfg.Prefix)}, nil
}

// cleanPrefix makes a non-empty prefix end in exactly one "/", without a
// leading one.
func cleanPrefix(p string) string {
	p = strings.Trim(p, "/")
	if p == "" {
		return ""
	}
	return p + "/"
}

// azureAPI is objectAPI over an Azure Blob Storage container.
type azureAPI struct {
	c         *container.Client
	datastore string
	container string
}

func (a *azureAPI) putSmall(ctx context.Context, key string, content []byte) error {
	_, err := a.c.NewBlockBlobClient(key).Upload(ctx, streaming.NopCloser(bytes.NewReader(content)), nil)
	return a.describe(err, "write "+key)
}

func (a *azureAPI) putStream(ctx context.Context, key string, r io.Reader) error {
	_, err := a.c.NewBlockBlobClient(key).UploadStream(ctx, r, &blockblob.UploadStreamOptions{
		BlockSize: partSize, Concurrency: partConcurrency,
	})
	return a.describe(err, "write "+key)
}

func (a *azureAPI) putFile(ctx context.Context, key string, f *os.File) error {
	_, err := a.c.NewBlockBlobClient(key).UploadFile(ctx, f, &blockblob.UploadFileOptions{
		BlockSize: partSize, Concurrency: partConcurrency,
	})
	return a.describe(err, "write "+key)
}

func (a *azureAPI) getRange(ctx context.Context, key string, off, count int64) (io.ReadCloser, int64, error) {
	resp, err := a.c.NewBlobClient(key).DownloadStream(ctx, &azblobblob.DownloadStreamOptions{
		Range: azblobblob.HTTPRange{Offset: off, Count: count},
	})
	if bloberror.HasCode(err, bloberror.InvalidRange) {
		return nil, 0, errShortObject
	}
	if err != nil {
		return nil, 0, a.describe(err, "read "+key)
	}
	var length int64
	if resp.ContentLength != nil {
		length = *resp.ContentLength
	}
	return resp.Body, length, nil
}

// copyIsCheap: Azure copies a block blob within one storage account on the
// service side, usually at once, and Azurite by its block list alone.
func (a *azureAPI) copyIsCheap() bool { return true }

// copy starts a server-side copy and waits for it: within one account the
// service copies without the bytes passing through Wharf, usually at once.
func (a *azureAPI) copy(ctx context.Context, src, dst string, _ int64) error {
	dstClient := a.c.NewBlobClient(dst)
	resp, err := dstClient.StartCopyFromURL(ctx, a.c.NewBlobClient(src).URL(), nil)
	if err != nil {
		return a.describe(err, "copy to "+dst)
	}
	status := resp.CopyStatus
	for status != nil && *status == azblobblob.CopyStatusTypePending {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(copyPollInterval):
		}
		props, err := dstClient.GetProperties(ctx, nil)
		if err != nil {
			return a.describe(err, "copy to "+dst)
		}
		status = props.CopyStatus
	}
	if status != nil && *status != azblobblob.CopyStatusTypeSuccess {
		return storageError(a.datastore, "copy to "+dst, wharf.EUNAVAILABLE, fmt.Errorf("copy ended %s", *status))
	}
	return nil
}

func (a *azureAPI) get(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	resp, err := a.c.NewBlobClient(key).DownloadStream(ctx, nil)
	if err != nil {
		return nil, 0, a.describe(err, "read "+key)
	}
	var size int64
	if resp.ContentLength != nil {
		size = *resp.ContentLength
	}
	// The retry reader resumes from where a dropped connection left off.
	return resp.NewRetryReader(ctx, &azblobblob.RetryReaderOptions{MaxRetries: retryAttempts - 1}), size, nil
}

func (a *azureAPI) head(ctx context.Context, key string) (int64, error) {
	props, err := a.c.NewBlobClient(key).GetProperties(ctx, nil)
	if err != nil {
		return 0, a.describe(err, "look up "+key)
	}
	if props.ContentLength == nil {
		return 0, nil
	}
	return *props.ContentLength, nil
}

func (a *azureAPI) delete(ctx context.Context, key string) error {
	_, err := a.c.NewBlobClient(key).Delete(ctx, nil)
	return a.describe(err, "delete "+key)
}

// check looks up a blob that is not expected to exist: the answer (a
// missing blob, a missing container, access denied) needs only the read
// permission that any usable credential has, a container SAS or anonymous
// access to a public container included.
func (a *azureAPI) check(ctx context.Context) error {
	_, err := a.c.NewBlobClient(".wharf-check").GetProperties(ctx, nil)
	if err := a.describe(err, "check the container"); !errors.Is(err, errNoObject) {
		return err
	}
	return nil
}

// abortUploads has nothing to do: a block blob's blocks staged and never
// committed are discarded by the service itself after a week.
func (a *azureAPI) abortUploads(context.Context, string, time.Time) (int, error) { return 0, nil }

// describe turns an SDK error into errNoObject for a missing blob, or an
// error that names the datastore and what to check.
func (a *azureAPI) describe(err error, what string) error {
	if !needsDescribing(err) {
		return err
	}
	var re *azcore.ResponseError
	status := 0
	if errors.As(err, &re) {
		status = re.StatusCode
	}
	switch {
	case bloberror.HasCode(err, bloberror.ContainerNotFound):
		return storageError(a.datastore, what, wharf.ENOTFOUND, fmt.Errorf("container %q does not exist: create it, or fix container_name", a.container))
	case bloberror.HasCode(err, bloberror.BlobNotFound):
		return errNoObject
	case bloberror.HasCode(err, bloberror.AuthenticationFailed, bloberror.AuthorizationFailure,
		bloberror.AuthorizationPermissionMismatch, bloberror.InsufficientAccountPermissions, bloberror.NoAuthenticationInformation) ||
		status == http.StatusForbidden || status == http.StatusUnauthorized:
		return storageError(a.datastore, what, wharf.EFORBIDDEN, fmt.Errorf("access denied: check the account key or SAS token and its permissions (%s)", errorCode(re, status)))
	case bloberror.HasCode(err, bloberror.ServerBusy) || status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests:
		return storageError(a.datastore, what, wharf.EUNAVAILABLE, fmt.Errorf("the storage account is throttling requests and still was after %d tries: retry later or spread the load", retryAttempts))
	case status == http.StatusNotFound:
		// A HEAD has no body to carry a code: a missing blob in an
		// existing container.
		return errNoObject
	}
	return storageError(a.datastore, what, wharf.EUNAVAILABLE, err)
}

// errorCode is the service's error code, or the HTTP status without one.
func errorCode(re *azcore.ResponseError, status int) string {
	if re != nil && re.ErrorCode != "" {
		return re.ErrorCode
	}
	return fmt.Sprintf("HTTP %d", status)
}
