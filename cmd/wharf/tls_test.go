package main

import (
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharfml/wharf/internal/testcert"
)

// TestServerOverTLS starts the server with a certificate of a private CA:
// it advertises an https URL, the CLI works when WHARF_CA_BUNDLE names the
// CA and fails with a certificate error that says what to do when it does
// not, plain HTTP and TLS before 1.2 are refused.
func TestServerOverTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, dir, "team")
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	ca.Issue(t, certFile, keyFile)
	e := newCLIEnvWith(t, func(o *serverOptions) { o.tlsCert, o.tlsKey = certFile, keyFile })
	t.Cleanup(func() { http.DefaultTransport = systemTransport })
	if !strings.HasPrefix(e.srv.HTTP.URL, "https://") {
		t.Fatalf("server advertises %s", e.srv.HTTP.URL)
	}

	t.Setenv("WHARF_CA_BUNDLE", "")
	_, errs, code := e.wharf("account", "show")
	if code == 0 || !strings.Contains(errs, "certificate signed by unknown authority") || !strings.Contains(errs, "WHARF_CA_BUNDLE") {
		t.Fatalf("without the CA: exit %d, %s", code, errs)
	}

	t.Setenv("WHARF_CA_BUNDLE", ca.File)
	if id := e.ok("account", "show", "--query", "tenantId", "-o", "tsv"); strings.TrimSpace(id) == "" {
		t.Fatal("account show printed no tenant")
	}
	e.ok("ml", "workspace", "create", "--name", "tls-ws")

	notPEM := writeFile(t, dir, "not.pem", "hello")
	t.Setenv("WHARF_CA_BUNDLE", notPEM)
	if _, errs, code := e.wharf("account", "show"); code == 0 || !strings.Contains(errs, "WHARF_CA_BUNDLE") || !strings.Contains(errs, "not.pem") {
		t.Fatalf("a bundle without certificates: exit %d, %s", code, errs)
	}

	addr := strings.TrimPrefix(e.srv.HTTP.URL, "https://")
	resp, err := (&http.Client{Transport: &http.Transport{}}).Get("http://" + addr + "/readyz")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP to the TLS port: %s %s", resp.Status, body)
		}
	}

	// The CA's pool alone, so nothing but the server's TLS settings decide.
	if c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS11}); err == nil {
		c.Close()
		t.Fatal("a TLS 1.1 handshake succeeded")
	}
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS 1.2: %v", err)
	}
	c.Close()
}

// TestServerTLSFlagsAreChecked refuses half a pair and an http:// URL for
// an HTTPS server before anything starts.
func TestServerTLSFlagsAreChecked(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("WHARF_CONFIG_DIR", filepath.Join(dir, "cli"))
	for _, args := range [][]string{
		{"server", "--data-dir", filepath.Join(dir, "d1"), "--tls-cert", filepath.Join(dir, "c.pem")},
		{"server", "--data-dir", filepath.Join(dir, "d2"), "--tls-cert", "c.pem", "--tls-key", "k.pem", "--url", "http://wharf.example"},
	} {
		var out, errb strings.Builder
		if code := run(t.Context(), args, strings.NewReader(""), &out, &errb); code != exitUsage {
			t.Errorf("wharf %s: exit %d, %s", strings.Join(args, " "), code, errb.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "d1", "wharf.db")); err == nil {
		t.Error("a refused server created its database")
	}
}
