// Command storeload measures upload and download throughput of Wharf's
// blob store in an object store (blob.ObjectStore: Put of a file, as a job's
// outputs are stored, and CopyFile, as a job's inputs are staged, both
// checking the sha256) against the plain SDK
// doing the same transfers azcopy-style (parallel blocks or parts straight
// from and to a file), on the same emulator in the same run:
//
//	go run ./bench/storeload -backend azure -endpoint http://127.0.0.1:10000/devstoreaccount1 -dir /tmp/x
//	go run ./bench/storeload -backend s3 -endpoint http://127.0.0.1:5000 -dir /tmp/x
//
// Two workloads: one large file (-size bytes) and many small ones (-files of
// -small bytes, -concurrency at a time). Each side writes into a container or
// bucket of its own; every download is checked against what was uploaded.
// It prints one JSON line per measurement: backend, workload, side, op,
// bytes, files, seconds, MB/s, and the same, for a person, on stderr.
// -download-part sets the range size of both sides' large download from
// S3, for servers such as moto's that read a whole object to serve any
// range of it. -workloads and -ops measure only some of the cells: a
// download not measured is not made, an upload not measured is still made,
// unreported, when a download measured needs what it stores.
package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/wharfml/wharf/blob"
	"github.com/wharfml/wharf/internal/storagetest"
)

// Transfer settings both sides share, so that the comparison is of the
// code paths and not of tuning.
const (
	partSize    = 8 << 20
	concurrency = 4
)

// peer is the plain SDK's side: named objects uploaded from and downloaded
// to files or memory.
type peer interface {
	uploadFile(ctx context.Context, key, path string) error
	downloadFile(ctx context.Context, key, path string) error
	put(ctx context.Context, key string, b []byte) error
	get(ctx context.Context, key string) ([]byte, error)
	delete(ctx context.Context, key string) error
}

// options are one run's settings.
type options struct {
	backend, endpoint, dir, tag string
	sdkFirst                    bool
	size                        int64
	files, small, conc          int
	// downloadPart is the size of the ranges both sides ask for when
	// they download the large file from S3; 0 means partSize.
	downloadPart int64
	// workloads ("large", "small") and ops ("upload", "download") are
	// the cells measured.
	workloads, ops []string
}

// measures reports whether the cell of workload and op is one to measure.
func (o options) measures(workload, op string) bool {
	return slices.Contains(o.workloads, workload) && slices.Contains(o.ops, op)
}

func main() {
	backend := flag.String("backend", "azure", "azure or s3")
	endpoint := flag.String("endpoint", "", "the emulator's URL (Azure: the account's)")
	dir := flag.String("dir", os.TempDir(), "folder for the large file and its downloads")
	size := flag.Int64("size", 1<<30, "bytes of the large file")
	files := flag.Int("files", 10000, "number of small files")
	small := flag.Int("small", 4<<10, "bytes of each small file")
	conc := flag.Int("concurrency", 16, "small files in flight at once")
	sdkFirst := flag.Bool("sdk-first", false, "run the SDK's side of each measurement before Wharf's")
	tag := flag.String("tag", "1", "suffix of this run's container or bucket names, so that runs can share an emulator")
	downloadPart := flag.Int64("download-part", 0, "S3 only: bytes per ranged GET of the large download, on both sides (0: the 8 MiB part size); moto reads the whole object to serve any range of it")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file, each sample labelled with its side, workload and op (go tool pprof -tagfocus side=wharf)")
	traceOut := flag.String("trace", "", "write an execution trace of the run to this file, each measurement a region named after its side, workload and op (go tool trace)")
	workloads := flag.String("workloads", "large small", "the workloads to measure, of large and small")
	ops := flag.String("ops", "upload download", "the operations to measure, of upload and download")
	flag.Parse()
	o := options{backend: *backend, endpoint: *endpoint, dir: *dir, tag: *tag, sdkFirst: *sdkFirst,
		size: *size, files: *files, small: *small, conc: *conc, downloadPart: *downloadPart,
		workloads: names("workloads", *workloads, "large", "small"), ops: names("ops", *ops, "upload", "download")}
	ctx := context.Background()
	err := profiled(*cpuProfile, *traceOut, func() error { return run(ctx, o) })
	if err != nil {
		fmt.Fprintln(os.Stderr, "storeload:", err)
		os.Exit(1)
	}
}

// names splits the value of -flag into words, each of which must be one of
// known, and exits naming the first that is not.
func names(flag, value string, known ...string) []string {
	words := strings.Fields(value)
	for _, w := range words {
		if !slices.Contains(known, w) {
			fmt.Fprintf(os.Stderr, "storeload: -%s: %q is not one of %s\n", flag, w, strings.Join(known, ", "))
			os.Exit(2)
		}
	}
	return words
}

// profiled runs f under a CPU profile written to cpuPath and an execution
// trace written to tracePath, each left out when its path is empty.
func profiled(cpuPath, tracePath string, f func() error) error {
	for _, p := range []struct {
		path  string
		start func(io.Writer) error
		stop  func()
	}{{cpuPath, pprof.StartCPUProfile, pprof.StopCPUProfile}, {tracePath, trace.Start, trace.Stop}} {
		if p.path == "" {
			continue
		}
		out, err := os.Create(p.path)
		if err != nil {
			return err
		}
		defer out.Close()
		if err := p.start(out); err != nil {
			return err
		}
		defer p.stop()
	}
	return f()
}

func run(ctx context.Context, o options) error {
	backend, dir, sdkFirst, size, files, small, conc := o.backend, o.dir, o.sdkFirst, o.size, o.files, o.small, o.conc
	store, sdk, err := open(ctx, o)
	if err != nil {
		return err
	}
	// pair times both sides of one measurement, in the order asked for,
	// and prints a line for each. An upload not measured is made all the
	// same, for the download after it, unless that is not measured either;
	// a download not measured is not made.
	pair := func(workload, op string, bytes int64, n int, wharfSide, sdkSide func() error) error {
		if !o.measures(workload, op) {
			if op == "download" || !o.measures(workload, "download") {
				return nil
			}
			for _, side := range []func() error{wharfSide, sdkSide} {
				if err := side(); err != nil {
					return fmt.Errorf("%s upload: %w", workload, err)
				}
			}
			return nil
		}
		sides := []struct {
			name string
			f    func() error
		}{{"wharf", wharfSide}, {"sdk", sdkSide}}
		if sdkFirst {
			sides[0], sides[1] = sides[1], sides[0]
		}
		for _, side := range sides {
			t0 := time.Now()
			var err error
			pprof.Do(ctx, pprof.Labels("side", side.name, "workload", workload, "op", op), func(ctx context.Context) {
				trace.WithRegion(ctx, side.name+" "+workload+" "+op, func() { err = side.f() })
			})
			if err != nil {
				return fmt.Errorf("%s %s %s: %w", side.name, workload, op, err)
			}
			d := time.Since(t0)
			mbps := float64(bytes) / d.Seconds() / 1e6
			line, _ := json.Marshal(map[string]any{"backend": backend, "rep": o.tag, "workload": workload, "side": side.name, "op": op,
				"bytes": bytes, "files": n, "seconds": d.Seconds(), "mbps": mbps})
			fmt.Println(string(line))
			fmt.Fprintf(os.Stderr, "    %s run %s: %s %s, %s: %.1f MB/s (%.1f s)\n", backend, o.tag, workload, op, side.name, mbps, d.Seconds())
		}
		return nil
	}

	// One large file.
	large := func() error {
		src := filepath.Join(dir, "large")
		want, err := writeRandom(src, size)
		if err != nil {
			return err
		}
		defer os.Remove(src)
		var digest string
		err = pair("large", "upload", size, 1, func() error {
			f, err := os.Open(src)
			if err != nil {
				return err
			}
			defer f.Close()
			digest, _, err = store.Put(ctx, f)
			return err
		}, func() error { return sdk.uploadFile(ctx, "large", src) })
		if err != nil {
			return err
		}
		// Wharf's side is what staging a job's input does: ranges in
		// parallel into the file, hashed as the part complete from its
		// start grows.
		dst, dstSDK := filepath.Join(dir, "large.wharf"), filepath.Join(dir, "large.sdk")
		err = pair("large", "download", size, 1,
			func() error { return store.CopyFile(ctx, digest, dst, 0o600) },
			func() error { return sdk.downloadFile(ctx, "large", dstSDK) })
		if err != nil {
			return err
		}
		if o.measures("large", "download") {
			for _, p := range []string{dst, dstSDK} {
				if got, err := hashFile(p); err != nil || got != want {
					return fmt.Errorf("%s: sha256 %s (%v), uploaded %s", p, got, err, want)
				}
				os.Remove(p)
			}
		}
		// The next run's large file goes to new containers or buckets in
		// the same emulator: this one's need not stay.
		if err := store.Delete(ctx, digest); err != nil {
			return err
		}
		return sdk.delete(ctx, "large")
	}
	if slices.Contains(o.workloads, "large") {
		if err := large(); err != nil {
			return err
		}
	}
	if !slices.Contains(o.workloads, "small") {
		return nil
	}

	// Many small files, conc at a time on both sides.
	contents := make([][]byte, files)
	for i := range contents {
		contents[i] = randomBytes(uint64(i), small)
	}
	digests := make([]string, files)
	total := int64(files) * int64(small)
	err = pair("small", "upload", total, files, func() error {
		return parallel(files, conc, func(i int) (err error) {
			digests[i], _, err = store.Put(ctx, bytes.NewReader(contents[i]))
			return err
		})
	}, func() error {
		return parallel(files, conc, func(i int) error { return sdk.put(ctx, fmt.Sprintf("small/%d", i), contents[i]) })
	})
	if err != nil {
		return err
	}
	same := func(i int, b []byte, err error) error {
		if err == nil && !bytes.Equal(b, contents[i]) {
			err = fmt.Errorf("file %d differs", i)
		}
		return err
	}
	return pair("small", "download", total, files, func() error {
		return parallel(files, conc, func(i int) error {
			rc, _, err := store.Open(ctx, digests[i])
			if err != nil {
				return err
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			return same(i, b, err)
		})
	}, func() error {
		return parallel(files, conc, func(i int) error {
			b, err := sdk.get(ctx, fmt.Sprintf("small/%d", i))
			return same(i, b, err)
		})
	})
}

// open makes the two containers or buckets and the clients over them.
func open(ctx context.Context, o options) (*blob.ObjectStore, peer, error) {
	endpoint := o.endpoint
	mine, theirs := "wharf-"+o.tag, "sdk-"+o.tag
	if o.backend != "s3" && o.downloadPart != 0 {
		return nil, nil, fmt.Errorf("-download-part is for S3 only")
	}
	switch o.backend {
	case "azure":
		cred, err := azblob.NewSharedKeyCredential(storagetest.AzuriteAccount, storagetest.AzuriteKey)
		if err != nil {
			return nil, nil, err
		}
		c, err := azblob.NewClientWithSharedKeyCredential(endpoint, cred, nil)
		if err != nil {
			return nil, nil, err
		}
		for _, name := range []string{mine, theirs} {
			if _, err := c.CreateContainer(ctx, name, nil); err != nil {
				return nil, nil, err
			}
		}
		s, err := blob.NewAzure(blob.AzureConfig{Datastore: "bench", AccountURL: endpoint, Account: storagetest.AzuriteAccount,
			Container: mine, AccountKey: storagetest.AzuriteKey})
		return s, &azurePeer{c: c, container: theirs}, err
	case "s3":
		c := s3.New(s3.Options{Region: storagetest.MotoRegion, BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
			Credentials:                credentials.NewStaticCredentialsProvider(storagetest.MotoAccessKey, storagetest.MotoSecretKey, ""),
			RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
			ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		})
		for _, name := range []string{mine, theirs} {
			if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
				return nil, nil, err
			}
		}
		s, err := blob.NewS3(ctx, blob.S3Config{Datastore: "bench", Endpoint: endpoint, Region: storagetest.MotoRegion, Bucket: mine,
			PathStyle: true, AccessKeyID: storagetest.MotoAccessKey, SecretAccessKey: storagetest.MotoSecretKey, DownloadPartSize: o.downloadPart})
		return s, &s3Peer{c: c, bucket: theirs, downloadPart: cmp.Or(o.downloadPart, partSize)}, err
	}
	return nil, nil, fmt.Errorf("backend %q: want azure or s3", o.backend)
}

type azurePeer struct {
	c         *azblob.Client
	container string
}

func (p *azurePeer) uploadFile(ctx context.Context, key, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = p.c.UploadFile(ctx, p.container, key, f, &azblob.UploadFileOptions{BlockSize: partSize, Concurrency: concurrency})
	return err
}

func (p *azurePeer) downloadFile(ctx context.Context, key, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = p.c.DownloadFile(ctx, p.container, key, f, &azblob.DownloadFileOptions{BlockSize: partSize, Concurrency: concurrency})
	return err
}

func (p *azurePeer) delete(ctx context.Context, key string) error {
	_, err := p.c.DeleteBlob(ctx, p.container, key, nil)
	return err
}

func (p *azurePeer) put(ctx context.Context, key string, b []byte) error {
	_, err := p.c.UploadStream(ctx, p.container, key, streaming.NopCloser(bytes.NewReader(b)), nil)
	return err
}

func (p *azurePeer) get(ctx context.Context, key string) ([]byte, error) {
	resp, err := p.c.DownloadStream(ctx, p.container, key, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

type s3Peer struct {
	c            *s3.Client
	bucket       string
	downloadPart int64
}

func (p *s3Peer) uploadFile(ctx context.Context, key, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	up := manager.NewUploader(p.c, func(u *manager.Uploader) { u.PartSize, u.Concurrency = partSize, concurrency })
	_, err = up.Upload(ctx, &s3.PutObjectInput{Bucket: &p.bucket, Key: &key, Body: f})
	return err
}

func (p *s3Peer) downloadFile(ctx context.Context, key, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	down := manager.NewDownloader(p.c, func(d *manager.Downloader) { d.PartSize, d.Concurrency = p.downloadPart, concurrency })
	_, err = down.Download(ctx, f, &s3.GetObjectInput{Bucket: &p.bucket, Key: &key})
	return err
}

func (p *s3Peer) delete(ctx context.Context, key string) error {
	_, err := p.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &p.bucket, Key: &key})
	return err
}

func (p *s3Peer) put(ctx context.Context, key string, b []byte) error {
	_, err := p.c.PutObject(ctx, &s3.PutObjectInput{Bucket: &p.bucket, Key: &key, Body: bytes.NewReader(b)})
	return err
}

func (p *s3Peer) get(ctx context.Context, key string) ([]byte, error) {
	resp, err := p.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &p.bucket, Key: &key})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// parallel runs f for 0..n-1, conc at a time, and returns the first error.
func parallel(n, conc int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	next := make(chan int)
	for range conc {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// writeRandom writes size pseudo-random bytes to path and returns their
// sha256.
func writeRandom(path string, size int64) (string, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var seed [32]byte
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(rand.NewChaCha8(seed), size)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), f.Close()
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
