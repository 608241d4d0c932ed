package http_test

import (
	"context"
	"net/url"
	"testing"

	wharfhttp "github.com/wharfml/wharf/http"
)

// TestTokenClientIDIsTheAppID: the store finds principals by display name
// and object id too, but the token endpoint takes only the app id.
func TestTokenClientIDIsTheAppID(t *testing.T) {
	f := newFixture(t)
	owner := bootstrapOwner(t, f)
	sp, err := f.db.FindServicePrincipal(context.Background(), owner.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	tokenURL := f.http.URL + "/" + testTenant + "/oauth2/v2.0/token"
	for _, id := range []string{sp.DisplayName, sp.ObjectID} {
		resp, body := postForm(t, tokenURL, url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {owner.ClientSecret}})
		if resp.StatusCode != 401 || body["error"] != "invalid_client" {
			t.Errorf("client_id %q (not the app id): got %d %v, want 401 invalid_client", id, resp.StatusCode, body)
		}
	}
	if resp, body := postForm(t, tokenURL, url.Values{"grant_type": {"client_credentials"}, "client_id": {sp.AppID}, "client_secret": {owner.ClientSecret}}); resp.StatusCode != 200 {
		t.Fatalf("client_id = app id: got %d %v", resp.StatusCode, body)
	}
}

// TestTokenRefusalsCostOneVerification: every refused client, known or
// not, costs one argon2id verification, so the answer's timing does not
// tell which client ids exist.
func TestTokenRefusalsCostOneVerification(t *testing.T) {
	f := newFixture(t)
	owner := bootstrapOwner(t, f)
	sp, err := f.db.FindServicePrincipal(context.Background(), owner.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	verifications := wharfhttp.CountSecretVerifications(t)
	tokenURL := f.http.URL + "/oauth2/v2.0/token"
	for name, form := range map[string][2]string{
		"unknown client id":       {"00000000-0000-4000-8000-00000000dead", owner.ClientSecret},
		"display name as id":      {sp.DisplayName, owner.ClientSecret},
		"wrong secret":            {owner.ClientID, owner.ClientSecret[:len(owner.ClientSecret)-1] + "x"},
		"secret of no credential": {owner.ClientID, "zz" + owner.ClientSecret[2:]},
	} {
		verifications.Store(0)
		resp, body := postForm(t, tokenURL, url.Values{"grant_type": {"client_credentials"}, "client_id": {form[0]}, "client_secret": {form[1]}})
		if resp.StatusCode != 401 || body["error"] != "invalid_client" {
			t.Errorf("%s: got %d %v, want 401 invalid_client", name, resp.StatusCode, body)
		}
		if n := verifications.Load(); n != 1 {
			t.Errorf("%s: %d secret verifications, want 1", name, n)
		}
	}
}
