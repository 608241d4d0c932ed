package blob

import (
	"bytes"
	"context"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

var _ namedAPI = (*s3API)(nil)

// eachObject calls fn with every object whose key starts with prefix, as
// the listing gives it.
func (a *s3API) eachObject(ctx context.Context, prefix string, fn func(obj types.Object) error) error {
	pager := s3.NewListObjectsV2Paginator(a.c, &s3.ListObjectsV2Input{Bucket: &a.bucket, Prefix: &prefix})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return a.describe(err, "list "+prefix)
		}
		for _, obj := range page.Contents {
			if obj.Key == nil {
				continue
			}
			if err := fn(obj); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *s3API) list(ctx context.Context, prefix string, fn func(key string, modified time.Time) error) error {
	return a.eachObject(ctx, prefix, func(obj types.Object) error {
		if obj.LastModified == nil {
			return nil
		}
		return fn(*obj.Key, *obj.LastModified)
	})
}

func (a *s3API) listVersions(ctx context.Context, prefix string, fn func(key, etag string, size int64) error) error {
	return a.eachObject(ctx, prefix, func(obj types.Object) error {
		if obj.ETag == nil {
			return nil
		}
		return fn(*obj.Key, unquoteETag(*obj.ETag), aws.ToInt64(obj.Size))
	})
}

func (a *s3API) getVersion(ctx context.Context, key string) (io.ReadCloser, string, int64, error) {
	resp, err := a.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &a.bucket, Key: &key})
	if err != nil {
		return nil, "", 0, a.describe(err, "read "+key)
	}
	return resp.Body, unquoteETag(aws.ToString(resp.ETag)), aws.ToInt64(resp.ContentLength), nil
}

func (a *s3API) putVersion(ctx context.Context, key string, r io.Reader, size int64) (string, error) {
	if size <= partSize {
		content, err := io.ReadAll(io.LimitReader(r, partSize+1))
		if err != nil {
			return "", err
		}
		resp, err := a.c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &a.bucket, Key: &key, Body: bytes.NewReader(content), ContentLength: aws.Int64(int64(len(content))),
		})
		if err != nil {
			return "", a.describe(err, "write "+key)
		}
		return unquoteETag(aws.ToString(resp.ETag)), nil
	}
	// A multipart upload becomes the object only when it completes: a
	// reader sees the old object until then.
	resp, err := a.up.Upload(ctx, &s3.PutObjectInput{Bucket: &a.bucket, Key: &key, Body: r})
	if err != nil {
		return "", a.describe(err, "write "+key)
	}
	return unquoteETag(aws.ToString(resp.ETag)), nil
}
