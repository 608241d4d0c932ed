package blob

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/blob/blobtest"
	"github.com/wharfml/wharf/internal/storagetest"
)

// rangeHook sees each range request a download makes, on a real
// service, and may hold it back or change what it answers: the faults
// these tests need (an order the network rarely produces, a connection
// that drops, a byte damaged in transit) cannot be caused on an emulator
// at a chosen range otherwise.
type rangeHook func(ctx context.Context, off, count int64, body io.ReadCloser, length int64, err error) (io.ReadCloser, int64, error)

// hookedAPI is a real objectAPI whose range reads pass through a hook,
// which runs before the request is made (with a nil body) and after.
type hookedAPI struct {
	objectAPI
	before func(ctx context.Context, off, count int64)
	after  rangeHook
}

func (h *hookedAPI) getRange(ctx context.Context, key string, off, count int64) (io.ReadCloser, int64, error) {
	if h.before != nil {
		h.before(ctx, off, count)
	}
	body, length, err := h.objectAPI.getRange(ctx, key, off, count)
	if h.after != nil {
		return h.after(ctx, off, count, body, length, err)
	}
	return body, length, err
}

// faultStores opens a fresh store on each emulator.
func faultStores(t *testing.T) map[string]func(t *testing.T) *ObjectStore {
	azure := storagetest.StartAzurite(t)
	moto := storagetest.StartMoto(t)
	n := 0
	return map[string]func(t *testing.T) *ObjectStore{
		"azure": func(t *testing.T) *ObjectStore {
			n++
			name := "faults" + strings.Repeat("x", n)
			cred, err := azblob.NewSharedKeyCredential(storagetest.AzuriteAccount, storagetest.AzuriteKey)
			if err != nil {
				t.Fatal(err)
			}
			c, err := azblob.NewClientWithSharedKeyCredential(azure, cred, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.CreateContainer(context.Background(), name, nil); err != nil {
				t.Fatal(err)
			}
			s, err := NewAzure(AzureConfig{Datastore: "test", AccountURL: azure, Account: storagetest.AzuriteAccount,
				Container: name, AccountKey: storagetest.AzuriteKey})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"s3": func(t *testing.T) *ObjectStore {
			n++
			name := "faults" + strings.Repeat("x", n)
			c := s3.New(s3.Options{Region: storagetest.MotoRegion, BaseEndpoint: aws.String(moto), UsePathStyle: true,
				Credentials: credentials.NewStaticCredentialsProvider(storagetest.MotoAccessKey, storagetest.MotoSecretKey, "")})
			if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &name}); err != nil {
				t.Fatal(err)
			}
			s, err := NewS3(context.Background(), S3Config{Datastore: "test", Endpoint: moto, Region: storagetest.MotoRegion,
				Bucket: name, PathStyle: true, AccessKeyID: storagetest.MotoAccessKey, SecretAccessKey: storagetest.MotoSecretKey})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
}

// faultBlobSize spans five whole ranges and part of a sixth.
const faultBlobSize = 5*partSize + 12345

// TestCopyFileFaults downloads a blob of several ranges from Azurite and
// moto while ranges land out of order, drop, come back damaged or short,
// or the download is cancelled: the file is kept only when it is exactly
// the blob, and nothing is left at the destination otherwise.
func TestCopyFileFaults(t *testing.T) {
	stores := faultStores(t)
	content, err := io.ReadAll(blobtest.StreamOf(7, faultBlobSize))
	if err != nil {
		t.Fatal(err)
	}
	for backend, open := range stores {
		t.Run(backend, func(t *testing.T) {
			s := open(t)
			real := s.api
			digest, _, err := s.Put(context.Background(), bytes.NewReader(content))
			if err != nil {
				t.Fatal(err)
			}
			copyWith := func(t *testing.T, ctx context.Context, api *hookedAPI) (string, error) {
				t.Helper()
				api.objectAPI = real
				s.api = api
				t.Cleanup(func() { s.api = real })
				path := filepath.Join(t.TempDir(), "copy")
				return path, s.CopyFile(ctx, digest, path, 0o600)
			}

			t.Run("RangesOutOfOrder", func(t *testing.T) {
				// The first range waits until the three after it
				// have been read whole, so the hash starts only
				// once most of the file has landed ahead of it.
				var mu sync.Mutex
				var order []int64
				ahead := make(chan struct{}, 3)
				path, err := copyWith(t, context.Background(), &hookedAPI{
					before: func(ctx context.Context, off, _ int64) {
						if off == 0 {
							for range 3 {
								<-ahead
							}
						}
					},
					after: func(_ context.Context, off, _ int64, body io.ReadCloser, length int64, err error) (io.ReadCloser, int64, error) {
						if err != nil {
							return body, length, err
						}
						return &onEOF{ReadCloser: body, f: func() {
							mu.Lock()
							order = append(order, off)
							mu.Unlock()
							if off >= partSize && off <= 3*partSize {
								ahead <- struct{}{}
							}
						}}, length, nil
					},
				})
				if err != nil {
					t.Fatalf("CopyFile: %v", err)
				}
				got, err := os.ReadFile(path)
				if err != nil || !bytes.Equal(got, content) {
					t.Fatalf("copied file differs from the blob (%d bytes, %v)", len(got), err)
				}
				if len(order) != 6 || order[0] == 0 || indexOf(order, 0) < 3 {
					t.Errorf("ranges completed in the order %v: the first should have come after at least three others", order)
				}
			})

			t.Run("RangesNotAlignedToChunks", func(t *testing.T) {
				// Ranges of an odd size cut the chunks that the hash
				// reads from memory at odd offsets.
				s.rangeSize = 3<<20 + 7
				t.Cleanup(func() { s.rangeSize = 0 })
				path, err := copyWith(t, context.Background(), &hookedAPI{})
				if err != nil {
					t.Fatalf("CopyFile: %v", err)
				}
				if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, content) {
					t.Fatalf("copied file differs from the blob (%d bytes, %v)", len(got), err)
				}
			})

			t.Run("DamagedRange", func(t *testing.T) {
				path, err := copyWith(t, context.Background(), &hookedAPI{
					after: func(_ context.Context, off, _ int64, body io.ReadCloser, length int64, err error) (io.ReadCloser, int64, error) {
						if off == 2*partSize && err == nil {
							return &flipByte{ReadCloser: body, at: 1000}, length, nil
						}
						return body, length, err
					},
				})
				assertCorrupt(t, err, digest)
				blobtest.AssertNoFile(t, path)
			})

			t.Run("ShortObject", func(t *testing.T) {
				// The last range answers one byte short, as an object
				// cut after its size was looked up would.
				path, err := copyWith(t, context.Background(), &hookedAPI{
					after: func(_ context.Context, off, count int64, body io.ReadCloser, length int64, err error) (io.ReadCloser, int64, error) {
						if off == 5*partSize && err == nil {
							return struct {
								io.Reader
								io.Closer
							}{io.LimitReader(body, count-1), body}, length - 1, nil
						}
						return body, length, err
					},
				})
				assertCorrupt(t, err, digest)
				blobtest.AssertNoFile(t, path)
			})

			t.Run("DroppedConnectionResumes", func(t *testing.T) {
				var mu sync.Mutex
				var requests []int64
				dropped := false
				path, err := copyWith(t, context.Background(), &hookedAPI{
					after: func(_ context.Context, off, _ int64, body io.ReadCloser, length int64, err error) (io.ReadCloser, int64, error) {
						mu.Lock()
						defer mu.Unlock()
						requests = append(requests, off)
						if off == partSize && !dropped && err == nil {
							dropped = true
							return &dropAfter{ReadCloser: body, left: 300_000}, length, nil
						}
						return body, length, err
					},
				})
				if err != nil {
					t.Fatalf("CopyFile with a dropped connection: %v", err)
				}
				if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, content) {
					t.Fatalf("copied file differs from the blob (%d bytes, %v)", len(got), err)
				}
				if indexOf(requests, partSize+300_000) < 0 {
					t.Errorf("range requests %v: the dropped range should have been asked for again from byte %d", requests, partSize+300_000)
				}
			})

			t.Run("CanceledMidway", func(t *testing.T) {
				// Cancelled once the second range has landed whole, so
				// that part of the file has been written.
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				path, err := copyWith(t, ctx, &hookedAPI{
					after: func(_ context.Context, off, _ int64, body io.ReadCloser, length int64, err error) (io.ReadCloser, int64, error) {
						if off == partSize && err == nil {
							return &onEOF{ReadCloser: body, f: cancel}, length, nil
						}
						return body, length, err
					},
				})
				if !errors.Is(err, context.Canceled) {
					t.Errorf("CopyFile cancelled midway: %v, want context.Canceled", err)
				}
				blobtest.AssertNoFile(t, path)
			})
		})
	}
}

func assertCorrupt(t *testing.T, err error, digest string) {
	t.Helper()
	if wharf.ErrorCode(err) != wharf.EINTERNAL || !strings.Contains(err.Error(), "corrupt") || !strings.Contains(err.Error(), digest) {
		t.Errorf("CopyFile: %v, want EINTERNAL saying %s is corrupt", err, digest)
	}
}

func indexOf(xs []int64, x int64) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

// onEOF calls f once, when its body has been read to the end.
type onEOF struct {
	io.ReadCloser
	f    func()
	once sync.Once
}

func (r *onEOF) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err == io.EOF {
		r.once.Do(r.f)
	}
	return n, err
}

func (r *onEOF) Close() error {
	// A reader that stops exactly at the range's end never sees io.EOF.
	r.once.Do(r.f)
	return r.ReadCloser.Close()
}

// flipByte changes one byte of its body, at offset at.
type flipByte struct {
	io.ReadCloser
	at, read int64
}

func (r *flipByte) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if r.at >= r.read && r.at < r.read+int64(n) {
		p[r.at-r.read] ^= 0x01
	}
	r.read += int64(n)
	return n, err
}

// dropAfter ends its body with io.ErrUnexpectedEOF after left bytes, as a
// connection that drops does.
type dropAfter struct {
	io.ReadCloser
	left int64
}

func (r *dropAfter) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.ReadCloser.Read(p)
	r.left -= int64(n)
	return n, err
}
