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

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/wharfml/wharf"
)

// s3MaxCopy is the largest object S3 copies in one CopyObject request;
// larger ones are copied in parts of s3CopyPart.
const (
	s3MaxCopy  = 5 << 30
	s3CopyPart = 1 << 30
)

// S3Config says where an S3-compatible bucket is and how to reach it.
type S3Config struct {
	// Datastore names the store in error messages.
	Datastore string
	// Endpoint is the service's URL, e.g. http://127.0.0.1:9000 for a
	// local server; empty for AWS itself.
	Endpoint string
	Region   string
	Bucket   string
	// Prefix is prepended to every key: a folder in the bucket.
	Prefix string
	// PathStyle addresses the bucket as ENDPOINT/BUCKET rather than
	// BUCKET.ENDPOINT, which most self-hosted servers need.
	PathStyle bool
	// AccessKeyID and SecretAccessKey are static credentials; without
	// them the SDK's default chain (environment, shared files, instance
	// role) is used.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// DownloadPartSize is the bytes asked for in each ranged GET when a
	// blob is copied to a file; 0 means 8 MiB, as the SDK's downloader
	// and azcopy use. A server that reads a whole object to answer any
	// range of it (moto's, for one) is better asked for a few large
	// ranges.
	DownloadPartSize int64
}

// NewS3 returns a BlobStore in an S3-compatible bucket. It makes no
// request: a missing bucket or bad credentials show up, named, at the first
// operation.
func NewS3(ctx context.Context, cfg S3Config) (*ObjectStore, error) {
	if cfg.Bucket == "" {
		return nil, wharf.Errorf(wharf.EINVALID, "datastore %s: no bucket name", cfg.Datastore).WithField("bucket")
	}
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, wharf.Errorf(wharf.EINVALID, "datastore %s: endpoint_url %q is not an http(s) URL", cfg.Datastore, cfg.Endpoint).WithField("endpoint_url")
		}
	}
	if (cfg.AccessKeyID == "") != (cfg.SecretAccessKey == "") {
		return nil, wharf.Errorf(wharf.EINVALID, "datastore %s: give both an access key id and a secret access key, or neither", cfg.Datastore).WithField("credentials")
	}
	// Every read is checked against its SHA-256 digest, which the SDK's
	// own CRC checksums would only duplicate (and some S3-compatible
	// servers get wrong for copied objects).
	loads := []func(*config.LoadOptions) error{
		config.WithRetryMaxAttempts(retryAttempts),
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if cfg.Region != "" {
		loads = append(loads, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKeyID != "" {
		loads = append(loads, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, loads...)
	if err != nil {
		return nil, fmt.Errorf("datastore %s: %w", cfg.Datastore, err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
	})
	uploader := manager.NewUploader(client, func(u *manager.Uploader) {
		u.PartSize = partSize
		u.Concurrency = partConcurrency
	})
	api := &s3API{c: client, up: uploader, datastore: cfg.Datastore, bucket: cfg.Bucket}
	if cfg.DownloadPartSize < 0 {
		return nil, wharf.Errorf(wharf.EINVALID, "datastore %s: download part size %d is negative", cfg.Datastore, cfg.DownloadPartSize)
	}
	return &ObjectStore{api: api, prefix: cleanPrefix(cfg.Prefix), rangeSize: cfg.DownloadPartSize}, nil
}

// s3API is objectAPI over an S3 bucket.
type s3API struct {
	c         *s3.Client
	up        *manager.Uploader
	datastore string
	bucket    string
}

func (a *s3API) putSmall(ctx context.Context, key string, content []byte) error {
	_, err := a.c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &a.bucket, Key: &key, Body: bytes.NewReader(content), ContentLength: aws.Int64(int64(len(content))),
	})
	return a.describe(err, "write "+key)
}

func (a *s3API) putStream(ctx context.Context, key string, r io.Reader) error {
	_, err := a.up.Upload(ctx, &s3.PutObjectInput{Bucket: &a.bucket, Key: &key, Body: r})
	return a.describe(err, "write "+key)
}

func (a *s3API) putFile(ctx context.Context, key string, f *os.File) error {
	_, err := a.up.Upload(ctx, &s3.PutObjectInput{Bucket: &a.bucket, Key: &key, Body: f})
	return a.describe(err, "write "+key)
}

func (a *s3API) getRange(ctx context.Context, key string, off, count int64) (io.ReadCloser, int64, error) {
	resp, err := a.c.GetObject(ctx, &s3.GetObjectInput{
		Bucket: &a.bucket, Key: &key, Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+count-1)),
	})
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusRequestedRangeNotSatisfiable {
		return nil, 0, errShortObject
	}
	if err != nil {
		return nil, 0, a.describe(err, "read "+key)
	}
	return resp.Body, aws.ToInt64(resp.ContentLength), nil
}

// copyIsCheap: S3 copies an object's bytes.
func (a *s3API) copyIsCheap() bool { return false }

// copy copies on the server side: in one request up to S3's 5 GiB limit,
// in parts beyond it.
func (a *s3API) copy(ctx context.Context, src, dst string, size int64) error {
	source := a.bucket + "/" + url.PathEscape(src)
	if size <= s3MaxCopy {
		_, err := a.c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &a.bucket, Key: &dst, CopySource: &source})
		return a.describe(err, "copy to "+dst)
	}
	up, err := a.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &a.bucket, Key: &dst})
	if err != nil {
		return a.describe(err, "copy to "+dst)
	}
	var parts []types.CompletedPart
	for off, n := int64(0), int32(1); off < size; off, n = off+s3CopyPart, n+1 {
		end := min(off+s3CopyPart, size) - 1
		part, err := a.c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
			Bucket: &a.bucket, Key: &dst, UploadId: up.UploadId, PartNumber: aws.Int32(n),
			CopySource: &source, CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", off, end)),
		})
		if err != nil {
			_, _ = a.c.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: &a.bucket, Key: &dst, UploadId: up.UploadId})
			return a.describe(err, "copy to "+dst)
		}
		parts = append(parts, types.CompletedPart{ETag: part.CopyPartResult.ETag, PartNumber: aws.Int32(n)})
	}
	_, err = a.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &a.bucket, Key: &dst, UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	return a.describe(err, "copy to "+dst)
}

func (a *s3API) get(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	resp, err := a.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &a.bucket, Key: &key})
	if err != nil {
		return nil, 0, a.describe(err, "read "+key)
	}
	return resp.Body, aws.ToInt64(resp.ContentLength), nil
}

func (a *s3API) head(ctx context.Context, key string) (int64, error) {
	resp, err := a.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &a.bucket, Key: &key})
	if err != nil {
		return 0, a.describe(err, "look up "+key)
	}
	return aws.ToInt64(resp.ContentLength), nil
}

// delete looks the object up first: S3 reports success for deleting a key
// that does not exist, and the BlobStore contract says ENOTFOUND.
func (a *s3API) delete(ctx context.Context, key string) error {
	if _, err := a.head(ctx, key); err != nil {
		return err
	}
	_, err := a.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &a.bucket, Key: &key})
	return a.describe(err, "delete "+key)
}

// check looks the bucket up, which needs the bucket and credentials that
// may use it.
func (a *s3API) check(ctx context.Context) error {
	_, err := a.c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &a.bucket})
	if err := a.describe(err, "check the bucket"); !errors.Is(err, errNoObject) {
		return err
	}
	return storageError(a.datastore, "check the bucket", wharf.ENOTFOUND, fmt.Errorf("bucket %q does not exist: create it, or fix bucket", a.bucket))
}

func (a *s3API) abortUploads(ctx context.Context, prefix string, cutoff time.Time) (int, error) {
	aborted := 0
	in := &s3.ListMultipartUploadsInput{Bucket: &a.bucket, Prefix: &prefix}
	for {
		page, err := a.c.ListMultipartUploads(ctx, in)
		if err != nil {
			return aborted, a.describe(err, "list the uploads under "+prefix)
		}
		for _, up := range page.Uploads {
			if up.Initiated == nil || !up.Initiated.Before(cutoff) {
				continue
			}
			if stale, err := a.uploadIdle(ctx, up, cutoff); err != nil || !stale {
				if err != nil {
					return aborted, err
				}
				continue
			}
			_, err := a.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &a.bucket, Key: up.Key, UploadId: up.UploadId})
			var ae smithy.APIError
			if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload" {
				continue // another server cancelled it first
			}
			if err != nil {
				return aborted, a.describe(err, "cancel the upload of "+aws.ToString(up.Key))
			}
			aborted++
		}
		if !aws.ToBool(page.IsTruncated) {
			return aborted, nil
		}
		in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
	}
}

// uploadIdle reports whether no part of an upload arrived after cutoff: a
// long upload started before it is still alive while its parts keep
// coming. (Some S3-compatible servers, moto among them, also report a fixed
// date as every upload's start, which this keeps from mattering.)
func (a *s3API) uploadIdle(ctx context.Context, up types.MultipartUpload, cutoff time.Time) (bool, error) {
	pager := s3.NewListPartsPaginator(a.c, &s3.ListPartsInput{Bucket: &a.bucket, Key: up.Key, UploadId: up.UploadId})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload" {
			return false, nil // completed or cancelled meanwhile
		}
		if err != nil {
			return false, a.describe(err, "list the parts of "+aws.ToString(up.Key))
		}
		for _, p := range page.Parts {
			if p.LastModified != nil && !p.LastModified.Before(cutoff) {
				return false, nil
			}
		}
	}
	return true, nil
}

// describe turns an SDK error into errNoObject for a missing key, or an
// error that names the datastore and what to check.
func (a *s3API) describe(err error, what string) error {
	if !needsDescribing(err) {
		return err
	}
	code := ""
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	status := 0
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	switch {
	case code == "NoSuchBucket":
		return storageError(a.datastore, what, wharf.ENOTFOUND, fmt.Errorf("bucket %q does not exist: create it, or fix bucket", a.bucket))
	case code == "NoSuchKey" || code == "NotFound" || status == http.StatusNotFound:
		if strings.HasPrefix(what, "look up ") || strings.HasPrefix(what, "read ") || strings.HasPrefix(what, "delete ") || what == "check the bucket" {
			return errNoObject
		}
	case code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" || code == "AccessDenied" ||
		code == "InvalidToken" || code == "ExpiredToken" || status == http.StatusForbidden || status == http.StatusUnauthorized:
		if code == "" {
			code = fmt.Sprintf("HTTP %d", status)
		}
		return storageError(a.datastore, what, wharf.EFORBIDDEN, fmt.Errorf("access denied: check the access key, secret key and the bucket's policy (%s)", code))
	case code == "SlowDown" || code == "Throttling" || code == "ThrottlingException" || code == "RequestLimitExceeded" ||
		status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests:
		return storageError(a.datastore, what, wharf.EUNAVAILABLE, fmt.Errorf("the service is throttling requests and still was after %d tries: retry later or spread the load", retryAttempts))
	}
	return storageError(a.datastore, what, wharf.EUNAVAILABLE, err)
}
