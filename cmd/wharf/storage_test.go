package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/wharfml/wharf"
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

// emulators are Azurite and moto, started for one test, with a client of
// each.
type emulators struct {
	azurite, moto string
	az            *azblob.Client
	s3            *s3.Client
}

// startObjectStorage starts Azurite and moto and makes a container and a
// bucket called name in them.
func startObjectStorage(t *testing.T, name string) emulators {
	t.Helper()
	ctx := context.Background()
	es := emulators{azurite: storagetest.StartAzurite(t), moto: storagetest.StartMoto(t)}
	es.az = storagetest.AzureClient(t, es.azurite)
	if _, err := es.az.CreateContainer(ctx, name, nil); err != nil {
		t.Fatal(err)
	}
	es.s3 = storagetest.S3Client(es.moto)
	if _, err := es.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	return es
}

// TestQuickstartOnObjectStorage: the taxi quickstart with Wharf's store of
// files, models and outputs in an Azure Blob container (Azurite) and,
// separately, in an S3 bucket (moto) gives outputs byte-identical to the
// run on a local folder, and the content is in the container and bucket.
func TestQuickstartOnObjectStorage(t *testing.T) {
	ctx := context.Background()
	es := startObjectStorage(t, "wharf")
	azurite, moto, az, s3c := es.azurite, es.moto, es.az, es.s3

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

// TestDatastoreOnObjectStorage: `datastore create` takes Azure's azure_blob
// YAML (account key, SAS token) and an s3 one, checks the container or
// bucket and the credential against the service before saving, keeps the
// credential in the workspace's secret store and never shows it; a wrong
// key or a missing bucket is refused naming the datastore.
func TestDatastoreOnObjectStorage(t *testing.T) {
	ctx := context.Background()
	es := startObjectStorage(t, "data")
	azurite, moto, az := es.azurite, es.moto, es.az
	sasURL, err := az.ServiceClient().NewContainerClient("data").GetSASURL(sas.ContainerPermissions{Read: true, Write: true, Delete: true, List: true, Create: true},
		time.Now().Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, sasToken, _ := strings.Cut(sasURL, "?")

	e := newCLIEnv(t)
	e.ok("ml", "workspace", "create", "-n", "dev")
	dir := t.TempDir()
	files := map[string]string{
		"key.yml": "name: blobkey\ntype: azure_blob\naccount_name: " + storagetest.AzuriteAccount + "\ncontainer_name: data\nendpoint: " + azurite +
			"\nprotocol: http\ncredentials:\n  account_key: " + storagetest.AzuriteKey + "\n",
		"sas.yml": "name: blobsas\ntype: azure_blob\naccount_name: " + storagetest.AzuriteAccount + "\ncontainer_name: data\nendpoint: " + azurite +
			"\ncredentials:\n  sas_token: \"" + sasToken + "\"\n",
		"s3.yml": "name: lake\ntype: s3\nbucket: data\nendpoint_url: " + moto + "\nregion: " + storagetest.MotoRegion +
			"\npath_style: true\ncredentials:\n  access_key_id: " + storagetest.MotoAccessKey + "\n  secret_access_key: " + storagetest.MotoSecretKey + "\n",
		"badkey.yml": "name: badkey\ntype: azure_blob\naccount_name: " + storagetest.AzuriteAccount + "\ncontainer_name: data\nendpoint: " + azurite +
			"\ncredentials:\n  account_key: AAAA" + storagetest.AzuriteKey[4:] + "\n",
		"nobucket.yml": "name: nobucket\ntype: s3\nbucket: nosuch\nendpoint_url: " + moto + "\nregion: " + storagetest.MotoRegion +
			"\npath_style: true\ncredentials:\n  access_key_id: a\n  secret_access_key: b\n",
		"mixed.yml": "name: mixed\ntype: azure_blob\naccount_name: a\ncontainer_name: data\ncredentials:\n  account_key: k\n  sas_token: s\n",
	}
	for name, body := range files {
		writeFile(t, dir, name, body)
	}
	for file, kind := range map[string]string{"key.yml": "account_key", "sas.yml": "sas_token", "s3.yml": "access_key"} {
		out := e.ok("ml", "datastore", "create", "--file", filepath.Join(dir, file), "-w", "dev")
		for _, secret := range []string{storagetest.AzuriteKey, sasToken, storagetest.MotoSecretKey, "sig="} {
			if strings.Contains(out, secret) {
				t.Errorf("create %s printed a credential: %s", file, out)
			}
		}
		var d map[string]any
		if err := json.Unmarshal([]byte(out), &d); err != nil || d["credentials"] != kind {
			t.Errorf("create %s: credentials %v, want %s (%v)", file, d["credentials"], kind, err)
		}
	}
	show := e.ok("ml", "datastore", "show", "-n", "blobkey", "-w", "dev")
	if strings.Contains(show, storagetest.AzuriteKey) || !strings.Contains(show, `"account_key"`) {
		t.Errorf("show: %s", show)
	}
	// The key is in the workspace's secret store.
	sec, err := e.srv.DB.GetSecret(ctx, "/workspaces/dev", "datastore-blobkey-credentials", "")
	if err != nil || !strings.Contains(string(sec.Value), storagetest.AzuriteKey) {
		t.Errorf("secret store: %v", err)
	}
	// An update without credentials keeps them; the check still passes.
	writeFile(t, dir, "key2.yml", strings.Split(files["key.yml"], "credentials:")[0]+"description: updated\n")
	if out := e.ok("ml", "datastore", "create", "--file", filepath.Join(dir, "key2.yml"), "-w", "dev"); !strings.Contains(out, `"account_key"`) {
		t.Errorf("update without credentials: %s", out)
	}

	for file, says := range map[string]string{
		"badkey.yml":   "datastore dev/badkey: check the container: access denied",
		"nobucket.yml": `datastore dev/nobucket: check the bucket: bucket "nosuch" does not exist`,
		"mixed.yml":    "credentials give account_key and sas_token: give one",
	} {
		_, stderr, code := e.wharf("ml", "datastore", "create", "--file", filepath.Join(dir, file), "-w", "dev")
		if code == 0 || !strings.Contains(stderr, says) {
			t.Errorf("create %s: exit %d, %s; want it refused saying %q", file, code, stderr, says)
		}
	}
	if _, _, code := e.wharf("ml", "datastore", "show", "-n", "badkey", "-w", "dev"); code == 0 {
		t.Error("a refused datastore was saved")
	}

	// infra apply makes the workspace's default datastore a Blob container,
	// the key taken from the environment, and a second apply changes
	// nothing.
	cfg := writeFile(t, dir, "infra.yml", "variables:\n  namespace: lake\n  postfix: \"01\"\n  environment: dev\n"+
		"  enable_aml_computecluster: false\n  storage_account: "+storagetest.AzuriteAccount+"\n  datastore_type: azure_blob\n"+
		"  datastore_container: data\n  datastore_endpoint: "+azurite+"\n")
	t.Setenv("AZURE_STORAGE_KEY", storagetest.AzuriteKey)
	e.ok("infra", "apply", "--file", cfg)
	if out := e.ok("infra", "apply", "--file", cfg); strings.TrimSpace(out) != "no changes" {
		t.Errorf("second apply: %s", out)
	}
	got := e.ok("ml", "datastore", "show", "-n", "workspaceblobstore", "-w", "mlw-lake-01dev", "--query", "[type, container_name, credentials, is_default]", "-o", "tsv")
	if strings.Fields(got)[0] != "azure_blob" || !strings.Contains(got, "data") || !strings.Contains(got, "account_key") || !strings.Contains(got, "true") {
		t.Errorf("default datastore after infra apply: %q", got)
	}

	if err := e.ownerAPI().Do(ctx, "DELETE", "/api/v1/workspaces/dev/datastores/blobkey", nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.DB.GetSecret(ctx, "/workspaces/dev", "datastore-blobkey-credentials", ""); !wharf.IsNotFound(err) {
		t.Errorf("the credential outlived its datastore: %v", err)
	}
}

// TestOutputToDatastorePathLandsInTheContainer: a job output given an
// explicit path in an azure_blob or s3 datastore lands under that path in
// the datastore's own container or bucket, where Azure ML puts it, as other
// tools listing it see; a second job reads the path as its input.
func TestOutputToDatastorePathLandsInTheContainer(t *testing.T) {
	ctx := context.Background()
	es := startObjectStorage(t, "lake")
	e := newCLIEnv(t)
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "dev")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "dev")
	writeFile(t, dir, "blob.yml", "name: blobds\ntype: azure_blob\naccount_name: "+storagetest.AzuriteAccount+"\ncontainer_name: lake\nendpoint: "+es.azurite+
		"\ncredentials:\n  account_key: "+storagetest.AzuriteKey+"\n")
	writeFile(t, dir, "s3.yml", "name: s3ds\ntype: s3\nbucket: lake\nendpoint_url: "+es.moto+"\nregion: "+storagetest.MotoRegion+
		"\npath_style: true\ncredentials:\n  access_key_id: "+storagetest.MotoAccessKey+"\n  secret_access_key: "+storagetest.MotoSecretKey+"\n")
	for _, f := range []string{"blob.yml", "s3.yml"} {
		e.ok("ml", "datastore", "create", "--file", filepath.Join(dir, f), "-w", "dev")
	}
	listed := map[string]func() map[string]string{
		"blobds": func() map[string]string {
			out := map[string]string{}
			pager := es.az.NewListBlobsFlatPager("lake", &azblob.ListBlobsFlatOptions{Prefix: aws.String("out/")})
			for pager.More() {
				page, err := pager.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, b := range page.Segment.BlobItems {
					resp, err := es.az.DownloadStream(ctx, "lake", *b.Name, nil)
					out[*b.Name] = string(storagetest.ReadBody(t, resp.Body, err))
				}
			}
			return out
		},
		"s3ds": func() map[string]string {
			out := map[string]string{}
			list, err := es.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("lake"), Prefix: aws.String("out/")})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range list.Contents {
				resp, err := es.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("lake"), Key: o.Key})
				var body io.ReadCloser
				if err == nil {
					body = resp.Body
				}
				out[*o.Key] = string(storagetest.ReadBody(t, body, err))
			}
			return out
		},
	}
	// The same job writes to the Blob datastore, then to the S3 one,
	// where it is reused: its outputs land at the second path too.
	for _, ds := range []string{"blobds", "s3ds"} {
		list := listed[ds]
		uri := "azureml://datastores/" + ds + "/paths/out/x/"
		write := writeFile(t, dir, ds+"-write.yml", `command: echo one > ${{outputs.out}}/a.txt && mkdir ${{outputs.out}}/sub && echo two > ${{outputs.out}}/sub/b.txt
environment: {image: python:3.11}
compute: azureml:cpu-cluster
outputs:
  out:
    type: uri_folder
    path: `+uri+`
`)
		name := lastLine(e.ok("ml", "job", "create", "--file", write, "-w", "dev", "--query", "name", "-o", "tsv"))
		if got := e.waitJob("dev", name); got != "Completed" {
			t.Fatalf("%s: writing job: %s", ds, got)
		}
		want := map[string]string{"out/x/a.txt": "one\n", "out/x/sub/b.txt": "two\n"}
		if got := list(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("the %s container lists %v under out/, want %v", ds, got, want)
		}

		read := writeFile(t, dir, ds+"-read.yml", `command: cat ${{inputs.in}}/a.txt ${{inputs.in}}/sub/b.txt > ${{outputs.out}}/both.txt
environment: {image: python:3.11}
compute: azureml:cpu-cluster
inputs:
  in:
    type: uri_folder
    path: `+uri+`
outputs:
  out: {type: uri_folder}
`)
		name = lastLine(e.ok("ml", "job", "create", "--file", read, "-w", "dev", "--query", "name", "-o", "tsv"))
		if got := e.waitJob("dev", name); got != "Completed" {
			t.Fatalf("%s: reading job: %s", ds, got)
		}
		dl := filepath.Join(dir, ds+"-dl")
		e.ok("ml", "job", "download", "-n", name, "--output-name", "out", "--download-path", dl, "-w", "dev")
		if b, err := os.ReadFile(filepath.Join(dl, "named-outputs", "out", "both.txt")); err != nil || string(b) != "one\ntwo\n" {
			t.Errorf("%s: the reading job's output: %q %v", ds, b, err)
		}
	}
}
