package blob_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/blob"
	"github.com/wharfml/wharf/blob/blobtest"
	"github.com/wharfml/wharf/internal/storagetest"
)

// Object stores upload in 8 MiB parts: the large blob is several of them,
// and Put may hold a few at a time, plus the SDK's own buffers.
const (
	objectLargeSize   = 40 << 20
	objectStreamSize  = 256 << 20
	objectMaxPutAlloc = 96 << 20
)

var containerSeq atomic.Int64

// newContainer creates a fresh container in Azurite for one test.
func newContainer(t *testing.T, endpoint string) (*container.Client, string) {
	t.Helper()
	cred, err := azblob.NewSharedKeyCredential(storagetest.AzuriteAccount, storagetest.AzuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("wharf-c%d", containerSeq.Add(1))
	c, err := container.NewClientWithSharedKeyCredential(endpoint+"/"+name, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return c, name
}

// azureObjects lists a container's blobs below prefix, split into blobs
// and temporaries.
func azureObjects(t *testing.T, c *container.Client, prefix string) (blobs, temps []string) {
	t.Helper()
	pager := c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix})
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range page.Segment.BlobItems {
			blobs, temps = sortObject(blobs, temps, strings.TrimPrefix(*b.Name, prefix))
		}
	}
	return blobs, temps
}

// sortObject files an object's name (below the store's prefix) as a blob's
// digest or a temporary.
func sortObject(blobs, temps []string, name string) ([]string, []string) {
	if sum, ok := strings.CutPrefix(name, "sha256/"); ok {
		return append(blobs, "sha256:"+sum), temps
	}
	return blobs, append(temps, name)
}

// TestAzureConformance runs the BlobStore suite on Azure Blob Storage
// (Azurite), below a prefix so that the store shares its container.
func TestAzureConformance(t *testing.T) {
	endpoint := storagetest.StartAzurite(t)
	blobtest.Run(t, func(t *testing.T) blobtest.Backend {
		c, name := newContainer(t, endpoint)
		s, err := blob.NewAzure(blob.AzureConfig{Datastore: "test", AccountURL: endpoint, Account: storagetest.AzuriteAccount,
			Container: name, Prefix: "wharf", AccountKey: storagetest.AzuriteKey})
		if err != nil {
			t.Fatal(err)
		}
		return blobtest.Backend{
			Store: s,
			Rewrite: func(t *testing.T, digest string, edit func([]byte) []byte) {
				key := "wharf/sha256/" + strings.TrimPrefix(digest, "sha256:")
				resp, err := c.NewBlobClient(key).DownloadStream(context.Background(), nil)
				b := storagetest.ReadBody(t, resp.Body, err)
				if _, err := c.NewBlockBlobClient(key).Upload(context.Background(), streaming.NopCloser(bytes.NewReader(edit(b))), nil); err != nil {
					t.Fatal(err)
				}
			},
			Objects:     func(t *testing.T) ([]string, []string) { return azureObjects(t, c, "wharf/") },
			LargeSize:   objectLargeSize,
			StreamSize:  objectStreamSize,
			MaxPutAlloc: objectMaxPutAlloc,
		}
	})
}

// newBucket creates a fresh bucket in moto for one test.
func newBucket(t *testing.T, endpoint string) (*s3.Client, string) {
	t.Helper()
	c := s3.New(s3.Options{
		Region: storagetest.MotoRegion, BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(storagetest.MotoAccessKey, storagetest.MotoSecretKey, ""),
	})
	name := fmt.Sprintf("wharf-b%d", containerSeq.Add(1))
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatal(err)
	}
	return c, name
}

func newS3Store(t *testing.T, endpoint, bucket, accessKey string) *blob.ObjectStore {
	t.Helper()
	s, err := blob.NewS3(context.Background(), blob.S3Config{Datastore: "test", Endpoint: endpoint, Region: storagetest.MotoRegion,
		Bucket: bucket, PathStyle: true, AccessKeyID: accessKey, SecretAccessKey: storagetest.MotoSecretKey})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestS3Conformance runs the BlobStore suite on S3 (moto's server), at the
// root of the bucket.
func TestS3Conformance(t *testing.T) {
	endpoint := storagetest.StartMoto(t)
	blobtest.Run(t, func(t *testing.T) blobtest.Backend {
		c, bucket := newBucket(t, endpoint)
		return blobtest.Backend{
			Store: newS3Store(t, endpoint, bucket, storagetest.MotoAccessKey),
			Rewrite: func(t *testing.T, digest string, edit func([]byte) []byte) {
				key := "sha256/" + strings.TrimPrefix(digest, "sha256:")
				resp, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
				var body io.ReadCloser
				if err == nil {
					body = resp.Body
				}
				b := storagetest.ReadBody(t, body, err)
				if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(edit(b))}); err != nil {
					t.Fatal(err)
				}
			},
			Objects: func(t *testing.T) (blobs, temps []string) {
				out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket})
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range out.Contents {
					blobs, temps = sortObject(blobs, temps, *o.Key)
				}
				return blobs, temps
			},
			LargeSize:   objectLargeSize,
			StreamSize:  objectStreamSize,
			MaxPutAlloc: objectMaxPutAlloc,
		}
	})
}

// TestObjectStoreErrorsNameTheDatastore: a missing container or bucket and
// bad credentials fail with errors that name the datastore and say what to
// check, with codes a client can act on.
func TestObjectStoreErrorsNameTheDatastore(t *testing.T) {
	ctx := context.Background()
	azurite, moto := storagetest.StartAzurite(t), storagetest.StartMoto(t)
	_, ctr := newContainer(t, azurite)
	_, bucket := newBucket(t, moto)
	azure := func(container, key string) *blob.ObjectStore {
		s, err := blob.NewAzure(blob.AzureConfig{Datastore: "lake", AccountURL: azurite, Account: storagetest.AzuriteAccount,
			Container: container, AccountKey: key})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	wrongKey := "AAAA" + storagetest.AzuriteKey[4:]
	for _, tc := range []struct {
		name  string
		store *blob.ObjectStore
		code  string
		says  string
	}{
		{"azure missing container", azure("nosuch", storagetest.AzuriteKey), wharf.ENOTFOUND, `container "nosuch" does not exist`},
		{"azure wrong key", azure(ctr, wrongKey), wharf.EFORBIDDEN, "access denied"},
		{"s3 missing bucket", newS3Store(t, moto, "nosuch", storagetest.MotoAccessKey), wharf.ENOTFOUND, `bucket "nosuch" does not exist`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, size := range []int64{10, objectLargeSize} {
				_, _, err := tc.store.Put(ctx, blobtest.StreamOf(1, size))
				if wharf.ErrorCode(err) != tc.code || !strings.Contains(err.Error(), "datastore lake") && !strings.Contains(err.Error(), "datastore test") ||
					!strings.Contains(err.Error(), tc.says) {
					t.Errorf("Put of %d bytes: %v; want code %s, naming the datastore, saying %q", size, err, tc.code, tc.says)
				}
			}
			if err := tc.store.Check(ctx); wharf.ErrorCode(err) != tc.code || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("Check: %v; want code %s, saying %q", err, tc.code, tc.says)
			}
		})
	}
	for _, good := range []*blob.ObjectStore{azure(ctr, storagetest.AzuriteKey), newS3Store(t, moto, bucket, storagetest.MotoAccessKey)} {
		if err := good.Check(ctx); err != nil {
			t.Errorf("Check of a reachable store: %v", err)
		}
	}
}

// TestSweepStagedKeepsFreshUploads: what a crashed server staged under
// tmp/ (and, on S3, a multipart upload it never completed) is deleted once
// older than the cutoff, while a staged object or an upload started after
// the cutoff, which may belong to a Put still running, and the blobs
// themselves stay. The services stamp objects to the second, so the
// cutoff lies more than a second after the old ones and before the fresh.
func TestSweepStagedKeepsFreshUploads(t *testing.T) {
	ctx := context.Background()
	azurite, moto := storagetest.StartAzurite(t), storagetest.StartMoto(t)
	type backend struct {
		name  string
		store *blob.ObjectStore
		stage func(t *testing.T, key string)
		// startUpload begins a multipart upload and sends one part,
		// as a Put does before it dies; nil where parts are not kept.
		startUpload func(t *testing.T, key string)
		uploads     func(t *testing.T) []string
		objects     func(t *testing.T) (blobs, temps []string)
	}
	azc, ctr := newContainer(t, azurite)
	azureStore, err := blob.NewAzure(blob.AzureConfig{Datastore: "test", AccountURL: azurite, Account: storagetest.AzuriteAccount,
		Container: ctr, Prefix: "wharf", AccountKey: storagetest.AzuriteKey})
	if err != nil {
		t.Fatal(err)
	}
	s3c, bucket := newBucket(t, moto)
	part := bytes.Repeat([]byte("p"), 5<<20)
	backends := []backend{{
		name: "azure", store: azureStore,
		stage: func(t *testing.T, key string) {
			if _, err := azc.NewBlockBlobClient("wharf/"+key).Upload(ctx, streaming.NopCloser(strings.NewReader("staged")), nil); err != nil {
				t.Fatal(err)
			}
		},
		objects: func(t *testing.T) ([]string, []string) { return azureObjects(t, azc, "wharf/") },
	}, {
		name: "s3", store: newS3Store(t, moto, bucket, storagetest.MotoAccessKey),
		stage: func(t *testing.T, key string) {
			if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(key), Body: strings.NewReader("staged")}); err != nil {
				t.Fatal(err)
			}
		},
		startUpload: func(t *testing.T, key string) {
			up, err := s3c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String(key)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s3c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: aws.String(key), UploadId: up.UploadId,
				PartNumber: aws.Int32(1), Body: bytes.NewReader(part)}); err != nil {
				t.Fatal(err)
			}
		},
		uploads: func(t *testing.T) (keys []string) {
			out, err := s3c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &bucket})
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range out.Uploads {
				keys = append(keys, *u.Key)
			}
			sort.Strings(keys)
			return keys
		},
		objects: func(t *testing.T) (blobs, temps []string) {
			out, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range out.Contents {
				blobs, temps = sortObject(blobs, temps, *o.Key)
			}
			return blobs, temps
		},
	}}

	oldBlob := "sha256/" + strings.Repeat("a", 64)
	freshBlob := "sha256/" + strings.Repeat("b", 64)
	digests := map[string]string{}
	for _, b := range backends {
		d, _, err := b.store.Put(ctx, strings.NewReader("a stored blob"))
		if err != nil {
			t.Fatal(err)
		}
		digests[b.name] = d
		b.stage(t, "tmp/old")
		if b.startUpload != nil {
			b.startUpload(t, "tmp/old-upload")
			b.startUpload(t, oldBlob)
		}
	}
	time.Sleep(1100 * time.Millisecond)
	cutoff := time.Now()
	time.Sleep(1100 * time.Millisecond)
	for _, b := range backends {
		b.stage(t, "tmp/fresh")
		if b.startUpload != nil {
			b.startUpload(t, freshBlob)
		}
	}

	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			want := 1
			if b.startUpload != nil {
				want = 3
			}
			n, err := b.store.SweepStaged(ctx, cutoff)
			if err != nil || n != want {
				t.Fatalf("SweepStaged: %d removed, %v; want %d", n, err, want)
			}
			blobs, temps := b.objects(t)
			if fmt.Sprint(blobs) != fmt.Sprint([]string{digests[b.name]}) || fmt.Sprint(temps) != "[tmp/fresh]" {
				t.Errorf("after the sweep: blobs %v, staged %v; want %s and only tmp/fresh", blobs, temps, digests[b.name])
			}
			if b.uploads != nil {
				if got := b.uploads(t); fmt.Sprint(got) != fmt.Sprint([]string{freshBlob}) {
					t.Errorf("uploads left: %v, want only the fresh one to %s", got, freshBlob)
				}
			}
			// Nothing older is left: a second sweep, as another server's
			// would be, finds nothing.
			if n, err := b.store.SweepStaged(ctx, cutoff); err != nil || n != 0 {
				t.Errorf("second sweep: %d removed, %v", n, err)
			}
		})
	}
}
