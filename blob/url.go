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

// ForDatastore opens the container or bucket of an azure_blob or s3
// datastore with its credentials, keeping Wharf's blobs below prefix.
// Azure's endpoint is either its storage suffix (core.windows.net: the
// account is https://ACCOUNT.blob.core.windows.net) or a whole account URL
// (an emulator's, http://127.0.0.1:10000/devstoreaccount1).
func ForDatastore(ctx context.Context, d *wharf.Datastore, c *wharf.DatastoreCredentials, prefix string) (*ObjectStore, error) {
	if c == nil {
		c = &wharf.DatastoreCredentials{}
	}
	name := d.Workspace + "/" + d.Name
	switch d.Type {
	case wharf.DatastoreAzureBlob:
		account := d.Endpoint
		if !strings.Contains(account, "://") {
			protocol, suffix := d.Protocol, d.Endpoint
			if protocol == "" {
				protocol = "https"
			}
			if suffix == "" {
				suffix = "core.windows.net"
			}
			account = protocol + "://" + d.AccountName + ".blob." + suffix
		}
		return NewAzure(AzureConfig{Datastore: name, AccountURL: account, Account: d.AccountName, Container: d.ContainerName,
			Prefix: prefix, AccountKey: c.AccountKey, SASToken: c.SASToken})
	case wharf.DatastoreS3:
		return NewS3(ctx, S3Config{Datastore: name, Endpoint: d.Endpoint, Region: d.Region, Bucket: d.Bucket, Prefix: prefix,
			PathStyle: d.PathStyle, AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey})
	}
	return nil, wharf.Errorf(wharf.EINVALID, "datastore %s is of type %s, not in object storage", name, d.Type)
}

// CheckDatastore reports whether an object-storage datastore's container
// or bucket exists and its credentials may use it, with an error that
// names the datastore and what to fix.
func CheckDatastore(ctx context.Context, d *wharf.Datastore, c *wharf.DatastoreCredentials) error {
	s, err := ForDatastore(ctx, d, c, "")
	if err != nil {
		return err
	}
	return s.Check(ctx)
}
