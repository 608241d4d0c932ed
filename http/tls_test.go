package http_test

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/internal/testcert"
)

// TestCertificateFilesReloadWhenChanged replaces the served pair with one
// from another CA, then with a broken one: the new pair is served at the
// next handshake, the broken one is reported once and the last good pair
// stays in service.
func TestCertificateFilesReloadWhenChanged(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first, second := testcert.NewCA(t, dir, "first"), testcert.NewCA(t, dir, "second")
	first.Issue(t, certFile, keyFile)
	files, err := wharfhttp.LoadCertificateFiles(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var reported []error
	files.OnError = func(err error) { reported = append(reported, err) }
	issuer := func() string {
		t.Helper()
		c, err := files.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.Issuer.CommonName
	}
	if got := issuer(); got != "first" {
		t.Fatalf("served a certificate of %q", got)
	}
	// Renewed in place; a later modification time, as any rewrite has.
	second.Issue(t, certFile, keyFile)
	later := time.Now().Add(time.Minute)
	for _, f := range []string{certFile, keyFile} {
		if err := os.Chtimes(f, later, later); err != nil {
			t.Fatal(err)
		}
	}
	if got := issuer(); got != "second" {
		t.Fatalf("after renewal, served a certificate of %q", got)
	}
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := issuer(); got != "second" {
		t.Fatalf("after a broken renewal, served a certificate of %q", got)
	}
	_ = issuer()
	if len(reported) != 1 {
		t.Fatalf("broken pair reported %d times: %v", len(reported), errors.Join(reported...))
	}
}

// TestLoadCertificateFilesRefusesAMismatchedKey checks that a key of
// another certificate stops the server at start, naming both files.
func TestLoadCertificateFilesRefusesAMismatchedKey(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, dir, "ca")
	ca.Issue(t, filepath.Join(dir, "a.pem"), filepath.Join(dir, "a.key"))
	ca.Issue(t, filepath.Join(dir, "b.pem"), filepath.Join(dir, "b.key"))
	_, err := wharfhttp.LoadCertificateFiles(filepath.Join(dir, "a.pem"), filepath.Join(dir, "b.key"))
	if err == nil {
		t.Fatal("a key of another certificate was accepted")
	}
	for _, want := range []string{"a.pem", "b.key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if _, err := wharfhttp.LoadCertificateFiles(filepath.Join(dir, "missing.pem"), filepath.Join(dir, "a.key")); err == nil {
		t.Fatal("a missing certificate file was accepted")
	}
}
