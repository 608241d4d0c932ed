package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/aws/aws-sdk-go-v2/aws"
	awscredentials "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/wharfml/wharf/internal/storagetest"
)

// quickstartOutputs runs `wharf quickstart` against a fresh server process
// started with flags and returns the sha256 of every file the run left:
// the batch endpoint's outputs (by their path below named-outputs, since
// job names differ from run to run) and the registered model's files.
func quickstartOutputs(t *testing.T, flags ...string) map[string]string {
	t.Helper()
	root := t.TempDir()
	dataDir := filepath.Join(root, "server")
	_, base := startProcess(t, dataDir, "", flags...)
	wharf := cliAgainst(t, dataDir, base)
	example := filepath.Join(root, "taxi")
	copyTree(t, filepath.Join(repoRoot(t), "examples", "taxi"), example)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"quickstart", "--url", base, "--example", example, "--rows", "5000"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("quickstart: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	dl := filepath.Join(root, "model")
	wharf("ml", "model", "download", "--name", "taxi-model", "--version", "1", "--download-path", dl, "-w", "mlw-taxi-0001dev")
	sums := map[string]string{}
	hashTree := func(dir, label string, name func(rel string) string) {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if d.Name() == "summary.json" {
				b = withoutTimings(t, b)
			}
			rel, _ := filepath.Rel(dir, p)
			sum := sha256.Sum256(b)
			sums[label+name(filepath.ToSlash(rel))] = hex.EncodeToString(sum[:])
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	hashTree(filepath.Join(example, "outputs"), "outputs/", func(rel string) string {
		_, below, _ := strings.Cut(rel, "/") // drop the job's name
		return below
	})
	hashTree(dl, "model/", func(rel string) string { return rel })
	if len(sums) < 3 {
		t.Fatalf("quickstart left %d files: %v", len(sums), sums)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "artifacts")); len(flags) > 0 && err == nil {
		t.Errorf("the server kept an artifact folder in its data dir despite %v", flags)
	}
	return sums
}

// withoutTimings drops a batch summary's start time and duration, which
// differ from run to run whatever the store.
func withoutTimings(t *testing.T, summary []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(summary, &m); err != nil {
		t.Fatalf("summary.json: %v", err)
	}
	delete(m, "started")
	delete(m, "seconds")
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestQuickstartOnObjectStorage: the taxi quickstart with Wharf's store of
// files, models and outputs in an Azure Blob container (Azurite) and,
// separately, in an S3 bucket (moto) gives outputs byte-identical to the
// run on a local folder, and the content is in the container and bucket.
func TestQuickstartOnObjectStorage(t *testing.T) {
	azurite, moto := storagetest.StartAzurite(t), storagetest.StartMoto(t)
	ctx := context.Background()

	cred, err := azblob.NewSharedKeyCredential(storagetest.AzuriteAccount, storagetest.AzuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	az, err := azblob.NewClientWithSharedKeyCredential(azurite, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := az.CreateContainer(ctx, "wharf", nil); err != nil {
		t.Fatal(err)
	}
	s3c := s3.New(s3.Options{Region: storagetest.MotoRegion, BaseEndpoint: aws.String(moto), UsePathStyle: true,
		Credentials: awscredentials.NewStaticCredentialsProvider(storagetest.MotoAccessKey, storagetest.MotoSecretKey, "")})
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("wharf")}); err != nil {
		t.Fatal(err)
	}

	local := quickstartOutputs(t)

	t.Setenv("AZURE_STORAGE_KEY", storagetest.AzuriteKey)
	onAzure := quickstartOutputs(t, "--artifacts", "azblob://"+storagetest.AzuriteAccount+"/wharf/store?endpoint="+azurite)
	t.Setenv("AWS_ACCESS_KEY_ID", storagetest.MotoAccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", storagetest.MotoSecretKey)
	onS3 := quickstartOutputs(t, "--artifacts", "s3://wharf/store?path_style=true&region="+storagetest.MotoRegion+"&endpoint="+moto)

	for name, got := range map[string]map[string]string{"Azure Blob": onAzure, "S3": onS3} {
		for f, want := range local {
			if got[f] != want {
				t.Errorf("%s: %s has sha256 %q, the local run's %s", name, f, got[f], want)
			}
		}
		if len(got) != len(local) {
			t.Errorf("%s: %d files, the local run %d", name, len(got), len(local))
		}
	}

	blobs := 0
	pager := az.NewListBlobsFlatPager("wharf", &azblob.ListBlobsFlatOptions{Prefix: aws.String("store/sha256/")})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		blobs += len(page.Segment.BlobItems)
	}
	objects, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("wharf"), Prefix: aws.String("store/sha256/")})
	if err != nil {
		t.Fatal(err)
	}
	if blobs < len(local) || len(objects.Contents) < len(local) {
		t.Errorf("%d blobs in the container and %d objects in the bucket; want each to hold at least the %d outputs", blobs, len(objects.Contents), len(local))
	}
}

// TestServerRefusesAnUnreachableArtifactStore: a wrong key or a missing
// bucket stops the server at start, naming the store and the cause.
func TestServerRefusesAnUnreachableArtifactStore(t *testing.T) {
	azurite, moto := storagetest.StartAzurite(t), storagetest.StartMoto(t)
	t.Setenv("AZURE_STORAGE_KEY", "AAAA"+storagetest.AzuriteKey[4:])
	t.Setenv("AWS_ACCESS_KEY_ID", storagetest.MotoAccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", storagetest.MotoSecretKey)
	for url, says := range map[string]string{
		"azblob://" + storagetest.AzuriteAccount + "/wharf?endpoint=" + azurite:              "access denied",
		"s3://nosuch?path_style=true&region=" + storagetest.MotoRegion + "&endpoint=" + moto: `bucket "nosuch" does not exist`,
		"ftp://host/x": `scheme "ftp" is not one of file, azblob, s3`,
	} {
		o := serverOptions{dataDir: t.TempDir(), addr: "127.0.0.1:0", tokenTTL: 3600e9, logLevel: "error", artifacts: url}
		m, err := startServer(context.Background(), o, &bytes.Buffer{})
		if err == nil {
			m.Close()
			t.Errorf("--artifacts %s: the server started", url)
			continue
		}
		if !strings.Contains(err.Error(), says) || !strings.Contains(err.Error(), "--artifacts") {
			t.Errorf("--artifacts %s: %v; want it to say %q", url, err, says)
		}
	}
}
