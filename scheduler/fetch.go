package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// Limits on downloading a data input given as a URL: the whole download,
// headers to last byte, and the size of the file.
var (
	FetchTimeout  = 30 * time.Minute
	FetchMaxBytes = int64(10 << 30) // 10 GiB
)

var fetchClient = &http.Client{}

// urlInputs names the first input, in order, that is read from a URL, or
// is "" when there is none.
func urlInputs(spec *StepSpec) string {
	for _, k := range sortedKeys(spec.Inputs) {
		if spec.Inputs[k].URL != "" {
			return k
		}
	}
	return ""
}

// fetchInput downloads a uri_file input from rawURL into dir, as fileName
// (the input's name when that is empty), and returns the file's path. The
// error names the URL and why it could not be read: the HTTP status, or
// the network's error.
func fetchInput(ctx context.Context, rawURL, dir, fileName, name string) (string, error) {
	if fileName == "" {
		fileName = name
	}
	ctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", fmt.Errorf("downloading %s: %w", rawURL, err)
	}
	resp, err := fetchClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("downloading %s: %w", rawURL, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("downloading %s: HTTP %s", rawURL, resp.Status)
	}
	if resp.ContentLength > FetchMaxBytes {
		return "", fmt.Errorf("downloading %s: %d bytes is more than the %d allowed", rawURL, resp.ContentLength, FetchMaxBytes)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	p := filepath.Join(dir, fileName)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return "", err
	}
	n, err := io.Copy(f, io.LimitReader(resp.Body, FetchMaxBytes+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		err = fmt.Errorf("downloading %s: %w", rawURL, unwrapURLError(err))
	case n > FetchMaxBytes:
		err = fmt.Errorf("downloading %s: more than the %d bytes allowed", rawURL, FetchMaxBytes)
	case resp.ContentLength >= 0 && n != resp.ContentLength:
		err = fmt.Errorf("downloading %s: got %d of %d bytes", rawURL, n, resp.ContentLength)
	}
	if err != nil {
		_ = os.Remove(p)
		return "", err
	}
	return p, nil
}

// unwrapURLError drops net/http's "Get <url>:" prefix, since the message
// names the URL already.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
