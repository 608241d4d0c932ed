package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/wharfml/wharf/internal/storagetest"
)

const (
	azuriteAccount = storagetest.AzuriteAccount
	azuriteKey     = storagetest.AzuriteKey
)

// startAzurite runs Azurite's blob service for the rest of the test and
// returns its account endpoint.
func startAzurite(t *testing.T) string { return storagetest.StartAzurite(t) }

// TestFolderInputFromBlobStorage: a uri_folder input at a wasbs:// URL
// of a public container is listed and downloaded when the step runs, its
// blobs keeping their paths below the folder; a uri_file written at the
// job over a component's uri_folder input gives the folder that holds the
// file. Azurite stands in for the storage account, reached through the
// server's --azure-blob-endpoint.
func TestFolderInputFromBlobStorage(t *testing.T) {
	endpoint := startAzurite(t)
	ctx := context.Background()
	cred, err := azblob.NewSharedKeyCredential(azuriteAccount, azuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := azblob.NewClientWithSharedKeyCredential(endpoint+"/", cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	access := container.PublicAccessTypeContainer
	if _, err := svc.CreateContainer(ctx, "datasets", &container.CreateOptions{Access: &access}); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"iris/part-1.csv": "a\n1\n", "iris/more/part-2.csv": "a\n2\n", "iris.csv": "x\n9\n", "other/no.csv": "no\n"} {
		if _, err := svc.UploadBuffer(ctx, "datasets", name, []byte(body), nil); err != nil {
			t.Fatal(err)
		}
	}

	e := newCLIEnvWith(t, func(o *serverOptions) { o.blobEndpoints = []string{azuriteAccount + "=" + endpoint} })
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "dev")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "dev")
	writeFile(t, dir, "component.yml", `name: list_folder
type: command
inputs:
  data: {type: uri_folder}
outputs:
  out: {type: uri_folder}
command: cd ${{inputs.data}} && find . -type f | sort > ${{outputs.out}}/files.txt && cat $(find . -type f | sort) > ${{outputs.out}}/all.txt
environment: {image: python:3.11}
`)
	job := writeFile(t, dir, "pipeline.yml", `type: pipeline
settings: {default_compute: azureml:cpu-cluster}
jobs:
  folder:
    component: ./component.yml
    inputs:
      data: {type: uri_folder, path: wasbs://datasets@devstoreaccount1.blob.core.windows.net/iris/}
  file:
    component: ./component.yml
    inputs:
      data: {type: uri_file, path: wasbs://datasets@devstoreaccount1.blob.core.windows.net/iris.csv}
`)
	name := lastLine(e.ok("ml", "job", "create", "--file", job, "-w", "dev", "--query", "name", "-o", "tsv"))
	if got := e.waitJob("dev", name); got != "Completed" {
		t.Fatalf("pipeline: %s\n%s", got, e.ok("ml", "job", "show", "-n", name, "-w", "dev"))
	}
	_, steps := e.jobSteps("dev", name)
	for step, want := range map[string][2]string{
		"folder": {"./more/part-2.csv\n./part-1.csv\n", "a\n2\na\n1\n"},
		"file":   {"./iris.csv\n", "x\n9\n"},
	} {
		dl := filepath.Join(dir, "dl-"+step)
		e.ok("ml", "job", "download", "-n", steps[step].Name, "--output-name", "out", "--download-path", dl, "-w", "dev")
		for i, file := range []string{"files.txt", "all.txt"} {
			if b, err := os.ReadFile(filepath.Join(dl, "named-outputs", "out", file)); err != nil || string(b) != want[i] {
				t.Errorf("%s: %s = %q %v, want %q", step, file, b, err, want[i])
			}
		}
	}

	// A folder with nothing in it fails the step when it runs, naming the URL.
	empty := writeFile(t, dir, "empty.yml", `command: ls ${{inputs.data}}
environment: {image: python:3.11}
compute: azureml:cpu-cluster
inputs:
  data: {type: uri_folder, path: wasbs://datasets@devstoreaccount1.blob.core.windows.net/nothing-here/}
`)
	name = lastLine(e.ok("ml", "job", "create", "--file", empty, "-w", "dev", "--query", "name", "-o", "tsv"))
	if got := e.waitJob("dev", name); got != "Failed" {
		t.Fatalf("empty folder: %s", got)
	}
	if msg := e.ok("ml", "job", "show", "-n", name, "-w", "dev", "--query", "error", "-o", "tsv"); !strings.Contains(msg, "nothing-here") || !strings.Contains(msg, "no blobs below") {
		t.Errorf("empty folder error: %q", msg)
	}
}
