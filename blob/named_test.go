package blob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/blob"
	"github.com/wharfml/wharf/internal/storagetest"
	"github.com/wharfml/wharf/snapshot"
	"github.com/wharfml/wharf/sqlite"
	"github.com/wharfml/wharf/storetest"
)

// countingBlobs is Wharf's local content store, counting the Puts that
// reach it: how a test sees whether an object was downloaded again.
type countingBlobs struct {
	wharf.BlobStore
	puts atomic.Int64
}

func (c *countingBlobs) Put(ctx context.Context, r io.Reader) (string, int64, error) {
	c.puts.Add(1)
	return c.BlobStore.Put(ctx, r)
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// containerUnderTest is a datastore on an emulator, with a plain-SDK
// writer standing for the other tools that use its container or bucket.
type containerUnderTest struct {
	datastore *wharf.Datastore
	creds     wharf.DatastoreCredentials
	put       func(t *testing.T, key, body string)
	get       func(t *testing.T, key string) string
}

// TestContainerReadsAndWritesByPath: a Container reads the objects any
// tool put below a path (not a sibling sharing its prefix, nor folder
// markers) into the content store, reads one object as a file, reads an
// object again only once it changed, and writes a folder's files under a
// path where other tools read them, without reading them back after.
func TestContainerReadsAndWritesByPath(t *testing.T) {
	azurite, moto := storagetest.StartAzurite(t), storagetest.StartMoto(t)
	cases := map[string]func(t *testing.T) containerUnderTest{
		"azure_blob": func(t *testing.T) containerUnderTest {
			c, name := newContainer(t, azurite)
			return containerUnderTest{
				datastore: &wharf.Datastore{Name: "lake", Type: wharf.DatastoreAzureBlob, AccountName: storagetest.AzuriteAccount,
					ContainerName: name, Endpoint: azurite, Credentials: wharf.CredentialsAccountKey},
				creds: wharf.DatastoreCredentials{AccountKey: storagetest.AzuriteKey},
				put: func(t *testing.T, key, body string) {
					if _, err := c.NewBlockBlobClient(key).Upload(context.Background(), streaming.NopCloser(strings.NewReader(body)), nil); err != nil {
						t.Fatal(err)
					}
				},
				get: func(t *testing.T, key string) string {
					resp, err := c.NewBlobClient(key).DownloadStream(context.Background(), nil)
					return string(storagetest.ReadBody(t, resp.Body, err))
				},
			}
		},
		"s3": func(t *testing.T) containerUnderTest {
			c, name := newBucket(t, moto)
			return containerUnderTest{
				datastore: &wharf.Datastore{Name: "lake", Type: wharf.DatastoreS3, Bucket: name, Endpoint: moto, Region: storagetest.MotoRegion,
					PathStyle: true, Credentials: wharf.CredentialsAccessKey},
				creds: wharf.DatastoreCredentials{AccessKeyID: storagetest.MotoAccessKey, SecretAccessKey: storagetest.MotoSecretKey},
				put: func(t *testing.T, key, body string) {
					if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &name, Key: &key, Body: strings.NewReader(body)}); err != nil {
						t.Fatal(err)
					}
				},
				get: func(t *testing.T, key string) string {
					resp, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &name, Key: aws.String(key)})
					var body io.ReadCloser
					if err == nil {
						body = resp.Body
					}
					return string(storagetest.ReadBody(t, body, err))
				},
			}
		},
	}
	for typ, setup := range cases {
		t.Run(typ, func(t *testing.T) {
			ctx := context.Background()
			u := setup(t)
			db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "wharf.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			db.Sealer = storetest.NewSealer(t)
			if _, err := db.PutWorkspace(ctx, &wharf.Workspace{Name: "ws"}); err != nil {
				t.Fatal(err)
			}
			u.datastore.Workspace = "ws"
			if _, err := db.PutDatastore(ctx, u.datastore); err != nil {
				t.Fatal(err)
			}
			creds, _ := json.Marshal(u.creds)
			if _, err := db.SetSecret(ctx, wharf.WorkspaceScope("ws"), wharf.DatastoreCredentialSecret("lake"), creds, "application/json"); err != nil {
				t.Fatal(err)
			}
			fs, err := blob.NewFS(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			blobs := &countingBlobs{BlobStore: fs}
			c, ok, err := blob.OpenContainer(ctx, db, blobs, u.datastore)
			if err != nil || !ok {
				t.Fatalf("open: %v %v", ok, err)
			}

			u.put(t, "raw/a.csv", "a,1\n")
			u.put(t, "raw/sub/b.csv", "b,2\n")
			u.put(t, "raw/sub/", "")
			u.put(t, "raw2/c.csv", "not below raw/\n")
			read := func(p string) (string, bool) {
				t.Helper()
				files, isFile, err := c.Read(ctx, p)
				if err != nil {
					t.Fatalf("read %s: %v", p, err)
				}
				var b strings.Builder
				for _, f := range files {
					fmt.Fprintf(&b, "%s %s %d;", f.Path, f.Digest, f.Size)
				}
				return b.String(), isFile
			}
			want := fmt.Sprintf("a.csv %s 4;sub/b.csv %s 4;", sha("a,1\n"), sha("b,2\n"))
			if got, isFile := read("raw"); got != want || isFile {
				t.Errorf("raw: %q (file %v), want %q", got, isFile, want)
			}
			if n := blobs.puts.Load(); n != 2 {
				t.Errorf("the first read stored %d objects, want 2", n)
			}
			if got, isFile := read("raw/a.csv"); got != fmt.Sprintf("a.csv %s 4;", sha("a,1\n")) || !isFile {
				t.Errorf("raw/a.csv: %q (file %v)", got, isFile)
			}
			read("raw/")
			if n := blobs.puts.Load(); n != 2 {
				t.Errorf("reading unchanged objects again stored %d in all, want still 2", n)
			}
			u.put(t, "raw/a.csv", "a,changed\n")
			want = fmt.Sprintf("a.csv %s 10;sub/b.csv %s 4;", sha("a,changed\n"), sha("b,2\n"))
			if got, _ := read("raw"); got != want {
				t.Errorf("raw after a change: %q, want %q", got, want)
			}
			if n := blobs.puts.Load(); n != 3 {
				t.Errorf("after one object changed the reads stored %d in all, want 3", n)
			}
			if got, _ := read("nothing/here"); got != "" {
				t.Errorf("an empty path read %q", got)
			}

			// A folder written under a path is there for other tools,
			// and reading it back downloads nothing.
			var files []snapshot.File
			for p, body := range map[string]string{"x.txt": "x", "deep/y.txt": "yy"} {
				d, n, err := fs.Put(ctx, bytes.NewReader([]byte(body)))
				if err != nil {
					t.Fatal(err)
				}
				files = append(files, snapshot.File{Path: p, Mode: snapshot.ModeFile, Digest: d, Size: n})
			}
			m, err := snapshot.FromStored(ctx, files, fs)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Write(ctx, "out/run1", m.Digest, true); err != nil {
				t.Fatal(err)
			}
			if err := c.Write(ctx, "out/one.txt", files[0].Digest, false); err != nil {
				t.Fatal(err)
			}
			for key, body := range map[string]string{"out/run1/x.txt": "x", "out/run1/deep/y.txt": "yy"} {
				if got := u.get(t, key); got != body {
					t.Errorf("%s holds %q, want %q", key, got, body)
				}
			}
			if got := u.get(t, "out/one.txt"); got != "x" && got != "yy" {
				t.Errorf("out/one.txt holds %q", got)
			}
			before := blobs.puts.Load()
			if got, _ := read("out/run1"); got != fmt.Sprintf("deep/y.txt %s 2;x.txt %s 1;", sha("yy"), sha("x")) {
				t.Errorf("out/run1 read back: %q", got)
			}
			if n := blobs.puts.Load(); n != before {
				t.Errorf("reading what Wharf wrote stored %d objects, want none", n-before)
			}
		})
	}
}
