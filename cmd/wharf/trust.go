package main

import (
	"net/http"
	"os"

	wharfhttp "github.com/wharfml/wharf/http"
)

// systemTransport is net/http's own default transport, kept so that each
// command line decides afresh whether WHARF_CA_BUNDLE applies.
var systemTransport = http.DefaultTransport.(*http.Transport)

// trustCABundle makes every HTTPS call of this command (API, token
// requests, uploads) trust the CAs in $WHARF_CA_BUNDLE besides the
// system's.
func trustCABundle() error {
	http.DefaultTransport = systemTransport
	f := os.Getenv(wharfhttp.CABundleEnv)
	if f == "" {
		return nil
	}
	t, err := wharfhttp.TransportTrusting(systemTransport, f)
	if err != nil {
		return err
	}
	http.DefaultTransport = t
	return nil
}
