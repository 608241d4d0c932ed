package blob

import (
	"context"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/wharfml/wharf"
)

// Open opens the blob store a URL names:
//
//	file:///var/lib/wharf/artifacts                 a local folder
//	azblob://ACCOUNT/CONTAINER[/PREFIX][?endpoint=URL]
//	s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=true]
//
// Credentials never go in the URL, which is shown in logs and process
// lists: an azblob:// store reads AZURE_STORAGE_KEY or
// AZURE_STORAGE_SAS_TOKEN (neither: anonymous, for a public container),
// the variables the az CLI reads; an s3:// store takes the AWS SDK's
// default chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, shared
// files, an instance role). endpoint points either at an emulator or a
// private endpoint; without it Azure's or AWS's public one is used.
// datastore names the store in errors.
func Open(ctx context.Context, raw, datastore string) (wharf.BlobStore, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, wharf.Errorf(wharf.EINVALID, "blob store URL %q: %v", raw, err)
	}
	q := u.Query()
	endpoint := q.Get("endpoint")
	prefix := strings.Trim(u.Path, "/")
	switch u.Scheme {
	case "file":
		if (u.Host != "" && u.Host != "localhost") || u.Path == "" {
			return nil, wharf.Errorf(wharf.EINVALID, "blob store URL %q: a file:// URL names a local folder, file:///path", raw)
		}
		return NewFS(u.Path)
	case "azblob":
		container, rest, _ := strings.Cut(prefix, "/")
		if u.Host == "" || container == "" {
			return nil, wharf.Errorf(wharf.EINVALID, "blob store URL %q: want azblob://ACCOUNT/CONTAINER[/PREFIX]", raw)
		}
		if endpoint == "" {
			endpoint = AzureAccountURL(u.Host, "")
		}
		return NewAzure(AzureConfig{
			Datastore: datastore, AccountURL: endpoint, Account: u.Host, Container: container, Prefix: rest,
			AccountKey: os.Getenv("AZURE_STORAGE_KEY"), SASToken: os.Getenv("AZURE_STORAGE_SAS_TOKEN"),
		})
	case "s3":
		if u.Host == "" {
			return nil, wharf.Errorf(wharf.EINVALID, "blob store URL %q: want s3://BUCKET[/PREFIX]", raw)
		}
		pathStyle := false
		if v := q.Get("path_style"); v != "" {
			if pathStyle, err = strconv.ParseBool(v); err != nil {
				return nil, wharf.Errorf(wharf.EINVALID, "blob store URL %q: path_style %q is not true or false", raw, v)
			}
		}
		return NewS3(ctx, S3Config{
			Datastore: datastore, Endpoint: endpoint, Region: q.Get("region"), Bucket: u.Host, Prefix: prefix, PathStyle: pathStyle,
		})
	}
	return nil, wharf.Errorf(wharf.EINVALID, "blob store URL %q: scheme %q is not one of file, azblob, s3", raw, u.Scheme)
}
