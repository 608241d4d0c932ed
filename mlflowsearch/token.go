package mlflowsearch

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
)

// PageToken is the JSON payload inside a page token. Clients treat tokens as
// opaque; JSON (rather than a bare number) leaves room to add fields later
// without breaking tokens already handed out.
type PageToken struct {
	Offset int `json:"offset"`
}

// EncodeToken returns the page token that resumes a search at offset, which
// must not be negative (DecodeToken rejects such tokens). It uses
// unpadded base64url so the token can be put in a URL query unescaped.
func EncodeToken(offset int) string {
	b, _ := json.Marshal(PageToken{Offset: offset}) // cannot fail for an int
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeToken returns the offset carried by a token from EncodeToken. The
// empty token means the first page (offset 0). Tokens are client input, so
// anything malformed, negative or with unexpected content is an *Error.
func DecodeToken(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	// Accept padded and standard-alphabet variants too: some clients and
	// proxies re-encode tokens, and the payload is validated below anyway.
	trimmed := strings.TrimRight(s, "=")
	raw, err := base64.RawURLEncoding.DecodeString(trimmed)
	if err != nil {
		raw, err = base64.RawStdEncoding.DecodeString(trimmed)
	}
	if err != nil {
		return 0, errorf("Invalid page token, could not base64-decode")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var tok *PageToken
	if err := dec.Decode(&tok); err != nil || tok == nil || dec.More() {
		return 0, errorf("Invalid page token, decoded value=%q", raw)
	}
	if tok.Offset < 0 {
		return 0, errorf("Invalid page token, offset %d is negative", tok.Offset)
	}
	return tok.Offset, nil
}
