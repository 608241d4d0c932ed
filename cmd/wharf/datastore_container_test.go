package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/internal/storagetest"
)

// otherTool reads and writes a container or bucket with the plain SDK, as
// any tool beside Wharf does.
type otherTool struct {
	put  func(key, body string)
	list func(prefix string) map[string]string
	// versions lists the ETag of every object below prefix.
	versions func(prefix string) map[string]string
}

// toolsFor gives the plain-SDK access to the container and the bucket
// called name in the emulators.
func toolsFor(t *testing.T, es emulators, name string) map[string]otherTool {
	ctx := context.Background()
	return map[string]otherTool{
		"azure_blob": {
			put: func(key, body string) {
				t.Helper()
				if _, err := es.az.UploadStream(ctx, name, key, strings.NewReader(body), nil); err != nil {
					t.Fatal(err)
				}
			},
			versions: func(prefix string) map[string]string {
				t.Helper()
				out := map[string]string{}
				pager := es.az.NewListBlobsFlatPager(name, &azblob.ListBlobsFlatOptions{Prefix: aws.String(prefix)})
				for pager.More() {
					page, err := pager.NextPage(ctx)
					if err != nil {
						t.Fatal(err)
					}
					for _, b := range page.Segment.BlobItems {
						out[*b.Name] = string(*b.Properties.ETag) + " " + b.Properties.LastModified.String()
					}
				}
				return out
			},
			list: func(prefix string) map[string]string {
				t.Helper()
				return storagetest.ListAzure(t, es.az, name, prefix)
			},
		},
		"s3": {
			put: func(key, body string) {
				t.Helper()
				if _, err := es.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(name), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
					t.Fatal(err)
				}
			},
			versions: func(prefix string) map[string]string {
				t.Helper()
				out := map[string]string{}
				list, err := es.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(name), Prefix: aws.String(prefix)})
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range list.Contents {
					out[*o.Key] = *o.ETag + " " + o.LastModified.String()
				}
				return out
			},
			list: func(prefix string) map[string]string {
				t.Helper()
				return storagetest.ListS3(t, es.s3, name, prefix)
			},
		},
	}
}

// datastoreBody is the REST API's datastore for a container or bucket
// called name in the emulators.
func datastoreBody(es emulators, typ, name string) map[string]any {
	if typ == wharf.DatastoreS3 {
		return map[string]any{"type": typ, "bucket": name, "endpoint": es.moto, "region": storagetest.MotoRegion,
			"path_style": true, "credentials": map[string]string{"access_key_id": storagetest.MotoAccessKey, "secret_access_key": storagetest.MotoSecretKey}}
	}
	return map[string]any{"type": typ, "account_name": storagetest.AzuriteAccount, "container_name": name,
		"endpoint": es.azurite, "credentials": map[string]string{"account_key": storagetest.AzuriteKey}}
}

// TestDatastorePathsAreTheContainer: with the workspace's default datastore
// an Azure Blob container (Azurite) and, separately, an S3 bucket (moto),
// files another tool put there are what a job's uri_folder and uri_file
// inputs and a data asset on the path read; a file changed there makes the next run
// read it anew instead of reusing the earlier one, while the data asset
// keeps the bytes it was created on; a job's output without a path, and a
// data asset made from a local folder, land in the container for other
// tools to read.
func TestDatastorePathsAreTheContainer(t *testing.T) {
	es := startObjectStorage(t, "lake")
	tools := toolsFor(t, es, "lake")
	e := newCLIEnv(t)
	dir := t.TempDir()
	for _, typ := range []string{wharf.DatastoreAzureBlob, wharf.DatastoreS3} {
		tool := tools[typ]
		ws := strings.ReplaceAll(typ, "_", "")
		// Azure's datastore YAML redefines the default datastore as the
		// container, which stays the default.
		containerWorkspace(t, e, es, dir, ws, typ, "lake")
		raw := ws + "/raw/2026-12/"
		tool.put(raw+"a.csv", "a,1\n")
		tool.put(raw+"sub/b.csv", "b,2\n")
		tool.put(ws+"/raw/2026-12-old.csv", "not below the folder\n")

		job := writeFile(t, dir, ws+"-job.yml", `command: cat ${{inputs.in}}/a.csv ${{inputs.in}}/sub/b.csv > ${{outputs.out}}/both.txt && ls -R ${{inputs.in}} > ${{outputs.out}}/listing.txt
environment: {image: python:3.11}
compute: azureml:cpu-cluster
inputs:
  in:
    type: uri_folder
    path: azureml://datastores/workspaceblobstore/paths/`+raw+`
outputs:
  out: {type: uri_folder}
`)
		// run submits the job and returns its name, where it was reused
		// from, and its both.txt.
		run := func(file string) (string, string, string) {
			t.Helper()
			name := lastLine(e.ok("ml", "job", "create", "--file", file, "-w", ws, "--query", "name", "-o", "tsv"))
			if got := e.waitJob(ws, name); got != "Completed" {
				t.Fatalf("%s: job %s: %s", typ, name, got)
			}
			reused := strings.TrimSpace(e.ok("ml", "job", "show", "-n", name, "-w", ws, "--query", "reused_from", "-o", "tsv"))
			dl := filepath.Join(dir, ws+"-"+name)
			e.ok("ml", "job", "download", "-n", name, "--output-name", "out", "--download-path", dl, "-w", ws)
			b, err := os.ReadFile(filepath.Join(dl, "named-outputs", "out", "both.txt"))
			if err != nil {
				t.Fatal(err)
			}
			return name, reused, string(b)
		}
		first, _, got := run(job)
		if got != "a,1\nb,2\n" {
			t.Errorf("%s: the job read %q from the files another tool put in the container", typ, got)
		}
		// The output, given no path, lands in the default datastore's
		// container where Azure ML puts it.
		outKey := "azureml/" + first + "/out/both.txt"
		if got := tool.list("azureml/" + first + "/"); got[outKey] != "a,1\nb,2\n" {
			t.Errorf("%s: the container holds %v under azureml/%s/, want %s", typ, got, first, outKey)
		}

		// One object of the container is a uri_file.
		file := writeFile(t, dir, ws+"-file.yml", `command: cp ${{inputs.f}} ${{outputs.out}}/both.txt
environment: {image: python:3.11}
compute: azureml:cpu-cluster
inputs:
  f:
    type: uri_file
    path: azureml://datastores/workspaceblobstore/paths/`+raw+`sub/b.csv
outputs:
  out: {type: uri_folder}
`)
		if _, _, got := run(file); got != "b,2\n" {
			t.Errorf("%s: the uri_file input read %q", typ, got)
		}

		e.ok("ml", "data", "create", "--name", "raw", "--version", "1", "--type", "uri_folder",
			"--path", "azureml://datastores/workspaceblobstore/paths/"+raw, "-w", ws)
		jobText, err := os.ReadFile(job)
		if err != nil {
			t.Fatal(err)
		}
		asset := writeFile(t, dir, ws+"-asset.yml", strings.Replace(string(jobText),
			"path: azureml://datastores/workspaceblobstore/paths/"+raw, "path: azureml:raw:1", 1))
		if _, reused, got := run(asset); got != "a,1\nb,2\n" || reused != first {
			t.Errorf("%s: the job on the data asset read %q, reused from %q; want the same bytes, so %s's result", typ, got, reused, first)
		}

		tool.put(raw+"a.csv", "a,changed\n")
		if _, reused, got := run(job); got != "a,changed\nb,2\n" || reused != "" {
			t.Errorf("%s: after the file changed in the container the job read %q, reused from %q; want the new bytes, read anew", typ, got, reused)
		}
		if _, reused, got := run(asset); got != "a,1\nb,2\n" || reused != first {
			t.Errorf("%s: after the change the data asset read %q, reused from %q; want the bytes it was created on", typ, got, reused)
		}

		// A data asset from a local folder is uploaded into the container
		// under LocalUpload/, as Azure ML's CLI puts it.
		local := filepath.Join(dir, ws+"-local")
		if err := os.MkdirAll(filepath.Join(local, "part"), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, local, "x.csv", "x,9\n")
		writeFile(t, filepath.Join(local, "part"), "y.csv", "y,8\n")
		e.ok("ml", "data", "create", "--name", "uploaded", "--version", "1", "--type", "uri_folder", "--path", local, "-w", ws)
		var uploaded []string
		for key, body := range tool.list("LocalUpload/") {
			uploaded = append(uploaded, strings.SplitN(key, "/", 3)[2]+"="+body)
		}
		sort.Strings(uploaded)
		want := []string{filepath.Base(local) + "/part/y.csv=y,8\n", filepath.Base(local) + "/x.csv=x,9\n"}
		if fmt.Sprint(uploaded) != fmt.Sprint(want) {
			t.Errorf("%s: the container holds %q under LocalUpload/<hash>/, want %q", typ, uploaded, want)
		}
	}
}

// TestDatastorePathErrorsNameTheDatastore: a job reading a path in a
// datastore whose container was deleted, or whose stored key the account
// no longer takes, is refused naming the datastore and the path, and so is
// a data asset on such a path.
func TestDatastorePathErrorsNameTheDatastore(t *testing.T) {
	ctx := context.Background()
	es := startObjectStorage(t, "lake")
	if _, err := es.az.CreateContainer(ctx, "gone", nil); err != nil {
		t.Fatal(err)
	}
	e := newCLIEnv(t)
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "dev")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "dev")
	if _, err := es.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("gone")}); err != nil {
		t.Fatal(err)
	}
	for name, at := range map[string]struct{ typ, container string }{
		"goneds": {wharf.DatastoreAzureBlob, "gone"}, "gones3": {wharf.DatastoreS3, "gone"}, "rotated": {wharf.DatastoreAzureBlob, "lake"},
	} {
		if err := e.ownerAPI().Do(ctx, "PUT", "/api/v1/workspaces/dev/datastores/"+name, datastoreBody(es, at.typ, at.container), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := es.az.DeleteContainer(ctx, "gone", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := es.s3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("gone")}); err != nil {
		t.Fatal(err)
	}
	// The account's key was rotated since the datastore was saved: the
	// stored credential is the old one. No emulator call makes Azurite
	// change its key, so the test changes the stored one.
	stale := `{"account_key":"AAAA` + storagetest.AzuriteKey[4:] + `"}`
	if _, err := e.srv.DB.SetSecret(ctx, "/workspaces/dev", "datastore-rotated-credentials", []byte(stale), "application/json"); err != nil {
		t.Fatal(err)
	}
	for ds, says := range map[string]string{
		"goneds":  `datastore dev/goneds: list raw/x: container "gone" does not exist`,
		"gones3":  `datastore dev/gones3: list raw/x: bucket "gone" does not exist`,
		"rotated": "datastore dev/rotated: list raw/x: access denied",
	} {
		job := writeFile(t, dir, ds+".yml", `command: ls ${{inputs.in}}
environment: {image: python:3.11}
compute: azureml:cpu-cluster
inputs:
  in:
    type: uri_folder
    path: azureml://datastores/`+ds+`/paths/raw/x/
`)
		_, stderr, code := e.wharf("ml", "job", "create", "--file", job, "-w", "dev")
		if code == 0 || !strings.Contains(stderr, says) || !strings.Contains(stderr, job+":") {
			t.Errorf("%s: job create exited %d: %s; want it refused naming %s and saying %q", ds, code, stderr, job, says)
		}
		_, stderr, code = e.wharf("ml", "data", "create", "--name", "raw-"+ds, "--version", "1", "--type", "uri_folder",
			"--path", "azureml://datastores/"+ds+"/paths/raw/x/", "-w", "dev")
		if code == 0 || !strings.Contains(stderr, says) {
			t.Errorf("%s: data create exited %d: %s; want it refused saying %q", ds, code, stderr, says)
		}
	}
}

// TestDataCollectorFilesLandInTheContainer: with the default datastore a
// Blob container, an online deployment's collected requests are filed in
// the container under Azure's modelDataCollector/ path, for other tools
// that read it.
func TestDataCollectorFilesLandInTheContainer(t *testing.T) {
	es := startObjectStorage(t, "lake")
	f := newEndpointFixture(t, "key")
	dir := t.TempDir()
	f.e.ok("ml", "datastore", "create", "-w", "mlw", "--file", writeFile(t, dir, "ds.yml", "name: workspaceblobstore\ntype: azure_blob\naccount_name: "+
		storagetest.AzuriteAccount+"\ncontainer_name: lake\nendpoint: "+es.azurite+"\ncredentials:\n  account_key: "+storagetest.AzuriteKey+"\n"))
	collectThree(t, f, "model_inputs")
	key := "modelDataCollector/taxi/blue/model_inputs/" + time.Now().UTC().Format("2006/01/02/15") + "/" + f.e.srv.router.Instance + ".jsonl"
	list := toolsFor(t, es, "lake")[wharf.DatastoreAzureBlob].list
	var lines []string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if body, ok := list("modelDataCollector/")[key]; ok {
			if lines = strings.Split(strings.TrimSpace(body), "\n"); len(lines) == 3 {
				break
			}
		}
	}
	if len(lines) != 3 || !strings.Contains(lines[2], `"deployment":"blue"`) {
		t.Errorf("the container holds %d lines at %s: %q", len(lines), key, lines)
	}
}
