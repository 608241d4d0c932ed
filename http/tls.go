package http

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"
)

// CertificateFiles serves the certificate and key in two PEM files and
// reloads them when either file changes, so a renewed certificate (certbot,
// cert-manager, an ACME client's hook) takes effect without a restart.
// A pair that fails to load leaves the previous one in service.
type CertificateFiles struct {
	CertFile, KeyFile string
	// OnError reports a changed pair that could not be loaded.
	OnError func(error)

	mu        sync.Mutex
	cert      *tls.Certificate
	certStamp fileStamp
	keyStamp  fileStamp
}

// fileStamp is what tells a rewritten file from the one loaded.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (fileStamp, error) {
	st, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{mod: st.ModTime(), size: st.Size()}, nil
}

// LoadCertificateFiles loads the pair once, so that a wrong path or a key
// that does not match its certificate stops the server at start.
func LoadCertificateFiles(certFile, keyFile string) (*CertificateFiles, error) {
	c := &CertificateFiles{CertFile: certFile, KeyFile: keyFile}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *CertificateFiles) reload() error {
	cs, err := stampOf(c.CertFile)
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	ks, err := stampOf(c.KeyFile)
	if err != nil {
		return fmt.Errorf("TLS key: %w", err)
	}
	if c.cert != nil && cs == c.certStamp && ks == c.keyStamp {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		// Not retried, nor reported again, until a file changes: a
		// renewal that writes the certificate before the key passes
		// through here once.
		c.certStamp, c.keyStamp = cs, ks
		return fmt.Errorf("TLS certificate %s with key %s: %w", c.CertFile, c.KeyFile, err)
	}
	c.cert, c.certStamp, c.keyStamp = &cert, cs, ks
	return nil
}

// GetCertificate is tls.Config.GetCertificate: the current pair, reloaded
// first if its files changed since it was loaded.
func (c *CertificateFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.reload(); err != nil && c.OnError != nil {
		c.OnError(err)
	}
	return c.cert, nil
}

// TLSConfig is the server's TLS configuration: TLS 1.2 or later, the
// certificate from c, HTTP/1.1 only, so that per-connection limits and
// per-request body deadlines work as they do without TLS.
func (c *CertificateFiles) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: c.GetCertificate,
		NextProtos:     []string{"http/1.1"},
	}
}

// CABundleEnv names the PEM file of extra certificate authorities the CLI
// trusts, for a server whose certificate a private CA signed.
const CABundleEnv = "WHARF_CA_BUNDLE"

// TransportTrusting returns a copy of base that trusts the system's
// certificate authorities and those in the PEM file caFile.
func TransportTrusting(base *http.Transport, caFile string) (*http.Transport, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", CABundleEnv, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: %s holds no PEM certificate", CABundleEnv, caFile)
	}
	t := base.Clone()
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{}
	}
	t.TLSClientConfig.RootCAs = pool
	return t, nil
}

// certificateHint explains a failed verification of the server's
// certificate in the terms of what the user can change.
func certificateHint(err error) string {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		return "; the server's certificate is signed by an authority this machine does not trust: set " + CABundleEnv + " to the CA's PEM file"
	case errors.As(err, &host):
		return "; the server's certificate does not name the host in WHARF_URL: use a name the certificate holds"
	case errors.As(err, &invalid):
		return "; the server's certificate is not valid (expired, or not for serving TLS)"
	}
	return ""
}
