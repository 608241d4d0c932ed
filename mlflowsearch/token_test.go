package mlflowsearch

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestTokenRoundTrip(t *testing.T) {
	for _, off := range []int{0, 1, 100, 1 << 40} {
		tok := EncodeToken(off)
		if strings.ContainsAny(tok, "+/=") {
			t.Errorf("EncodeToken(%d) = %q is not unpadded base64url", off, tok)
		}
		got, err := DecodeToken(tok)
		if err != nil || got != off {
			t.Errorf("DecodeToken(EncodeToken(%d)) = %d, %v", off, got, err)
		}
	}
	if got, err := DecodeToken(""); got != 0 || err != nil {
		t.Errorf(`DecodeToken("") = %d, %v; want 0, nil`, got, err)
	}
	// Padded and standard-alphabet re-encodings of the same payload.
	for _, tok := range []string{
		base64.URLEncoding.EncodeToString([]byte(`{"offset":7}`)),
		base64.StdEncoding.EncodeToString([]byte(`{"offset":7}`)),
	} {
		if got, err := DecodeToken(tok); got != 7 || err != nil {
			t.Errorf("DecodeToken(%q) = %d, %v; want 7", tok, got, err)
		}
	}
}

func TestDecodeTokenRejectsGarbage(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	tests := []struct{ tok, want string }{
		{"!!!", "could not base64-decode"},
		{"a b", "could not base64-decode"},
		{enc("not json"), "Invalid page token, decoded value="},
		{enc(`{"offset":"10"}`), "Invalid page token"},
		{enc(`{"offset":1.5}`), "Invalid page token"},
		{enc(`{"offset":99999999999999999999999}`), "Invalid page token"},
		{enc(`{"offset":-3}`), "negative"},
		{enc(`{"offset":1,"x":2}`), "Invalid page token"},
		{enc(`{"offset":1}{}`), "Invalid page token"},
		{enc(`null`), "Invalid page token"},
		{enc(`[1]`), "Invalid page token"},
		{enc(" "), "Invalid page token"},
	}
	for _, tt := range tests {
		got, err := DecodeToken(tt.tok)
		if err == nil {
			t.Errorf("DecodeToken(%q) = %d, want error", tt.tok, got)
			continue
		}
		var se *Error
		if !errors.As(err, &se) || !strings.Contains(se.Msg, tt.want) {
			t.Errorf("DecodeToken(%q) error %q, want *Error containing %q", tt.tok, err, tt.want)
		}
	}
}
