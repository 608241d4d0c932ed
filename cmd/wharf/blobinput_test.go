package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// Azurite's well-known development account, documented by Microsoft.
const (
	azuriteAccount = "devstoreaccount1"
	azuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// startAzurite runs Azurite's blob service on a free loopback port and
// returns its account endpoint, http://127.0.0.1:PORT/devstoreaccount1.
func startAzurite(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("WHARF_TEST_AZURITE")
	if bin == "" {
		missing(t, "WHARF_TEST_AZURITE not set; ./scripts/test installs Azurite")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--blobHost", "127.0.0.1", "--blobPort", fmt.Sprint(port),
		"--silent", "--skipApiVersionCheck", "--loose", "--inMemoryPersistence")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	endpoint := fmt.Sprintf("http://127.0.0.1:%d/%s", port, azuriteAccount)
	for deadline := time.Now().Add(60 * time.Second); ; {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return endpoint
		}
		select {
		case <-exited:
			t.Fatalf("Azurite exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("Azurite did not listen on %d: %s", port, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

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
