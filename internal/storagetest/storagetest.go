// Package storagetest starts the object-storage emulators that Wharf's
// tests run against: Azurite for Azure Blob Storage and moto's server for
// S3. Both are real servers speaking the services' wire protocols on
// loopback, so the SDK clients under test are exercised end to end.
//
// scripts/test installs both into .tools/ and points WHARF_TEST_AZURITE and
// WHARF_TEST_MOTO at them; without them a test is skipped on a developer
// machine and fails under CI, which must have every prerequisite.
package storagetest

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Azurite's well-known development account and key, documented by
// Microsoft; they grant access to the emulator and to nothing else.
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Credentials moto accepts; it checks their form, not their value.
const (
	MotoAccessKey = "testing"
	MotoSecretKey = "testing"
	MotoRegion    = "us-east-1"
)

// Missing skips a test whose prerequisite this machine lacks, and fails it
// under CI, whose machines have every prerequisite: a test CI skips would
// pass there without checking anything.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// StartAzurite runs Azurite's blob service on a free loopback port for the
// rest of the test and returns its account endpoint,
// http://127.0.0.1:PORT/devstoreaccount1.
func StartAzurite(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("WHARF_TEST_AZURITE")
	if bin == "" {
		Missing(t, "WHARF_TEST_AZURITE not set; ./scripts/test installs Azurite")
	}
	port := freePort(t)
	start(t, "Azurite", port, bin, "--blobHost", "127.0.0.1", "--blobPort", fmt.Sprint(port),
		"--silent", "--skipApiVersionCheck", "--loose", "--inMemoryPersistence")
	return fmt.Sprintf("http://127.0.0.1:%d/%s", port, AzuriteAccount)
}

// StartMoto runs moto's S3 server on a free loopback port for the rest of
// the test and returns its endpoint URL, http://127.0.0.1:PORT.
func StartMoto(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("WHARF_TEST_MOTO")
	if bin == "" {
		Missing(t, "WHARF_TEST_MOTO not set; ./scripts/test installs moto's server")
	}
	port := freePort(t)
	start(t, "moto", port, bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// freePort returns a loopback port nothing listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs an emulator until the test ends and waits until it accepts
// connections on port.
func start(t testing.TB, name string, port int, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	for deadline := time.Now().Add(60 * time.Second); ; {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("%s exited: %s", name, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen on %d: %s", name, port, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ReadBody reads a downloaded object's body whole, failing the test if the
// download (err) or the reading failed.
func ReadBody(t testing.TB, body io.ReadCloser, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
