package arm

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wharfml/wharf"
)

// sasKeySecret names the server's key for shared access signatures in the
// secret store (sealed, server scope), so every server over one database
// signs and checks with the same key.
const sasKeySecret = "storage-sas-key"

// sasVersion is the service version Wharf's signatures claim (sv).
const sasVersion = "2025-01-05"

// sas is a shared access signature as Wharf issues it: Azure's query
// parameters, since azure-storage-blob passes on only those, with the
// meaning Azure gives them. A signature grants Permissions (Azure's
// letters: r read, a add, c create, w write, l list) on a container
// (sr=c) or on the folder of a container that its first Depth path
// segments name (sr=d, sdd), until Expiry, to whoever holds it; ObjectID
// (skoid) is the principal it was issued to, recorded as the uploader.
type sas struct {
	Permissions string
	Expiry      time.Time
	// Resource is what it covers: "<container>" or "<container>/<folder>".
	Resource string
	ObjectID string
}

// resourceType is sr: a container or a folder of one.
func (s sas) resourceType() (sr string, depth int) {
	_, folder, ok := strings.Cut(s.Resource, "/")
	if !ok {
		return "c", 0
	}
	return "d", strings.Count(folder, "/") + 1
}

// stringToSign is what the signature covers, every field of the token.
func (s sas) stringToSign() string {
	sr, depth := s.resourceType()
	return strings.Join([]string{s.Permissions, s.Expiry.UTC().Format(time.RFC3339), "/blob/" + s.Resource,
		s.ObjectID, "https", sasVersion, sr, strconv.Itoa(depth)}, "\n")
}

// sasKeys signs and checks signatures with the server's keys.
type sasKeys struct {
	store wharf.SecretService
	mu    sync.Mutex
	keys  [][]byte // newest first
	// loaded is when the keys were last read: a signature no key
	// matches reads them again only after reloadAfter, so that forged
	// signatures cannot make every request a read of the store.
	loaded time.Time
}

// reloadAfter is how long keys are trusted to be all there are.
const reloadAfter = 10 * time.Second

// load reads the keys, making the first when there is none. Two servers
// making one at once each sign with their own, and each checks against
// both once it has read them again (see verify).
func (k *sasKeys) load(ctx context.Context) error {
	versions, err := k.store.ListSecretVersions(ctx, wharf.ServerScope, sasKeySecret)
	if err != nil && !wharf.IsNotFound(err) {
		return err
	}
	if len(versions) == 0 {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return err
		}
		if _, err := k.store.SetSecret(ctx, wharf.ServerScope, sasKeySecret, key, "application/octet-stream"); err != nil {
			return err
		}
		k.keys, k.loaded = [][]byte{key}, time.Now()
		return nil
	}
	keys := make([][]byte, 0, len(versions))
	for _, v := range versions {
		sec, err := k.store.GetSecret(ctx, wharf.ServerScope, sasKeySecret, v.Version)
		if err != nil {
			return err
		}
		keys = append(keys, sec.Value)
	}
	k.keys, k.loaded = keys, time.Now()
	return nil
}

func mac(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// sign returns the query string of a token for s.
func (k *sasKeys) sign(ctx context.Context, s sas) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.keys) == 0 {
		if err := k.load(ctx); err != nil {
			return "", err
		}
	}
	sr, depth := s.resourceType()
	q := url.Values{
		"sv": {sasVersion}, "sr": {sr}, "sp": {s.Permissions}, "se": {s.Expiry.UTC().Format(time.RFC3339)},
		"spr": {"https"}, "skoid": {s.ObjectID},
		"sig": {base64.StdEncoding.EncodeToString(mac(k.keys[0], s.stringToSign()))},
	}
	if sr == "d" {
		q.Set("sdd", strconv.Itoa(depth))
	}
	return q.Encode(), nil
}

// errSAS is how a request with a missing, altered, expired or too narrow
// signature is refused, as Azure Storage refuses it.
func errSAS(format string, args ...any) error {
	return wharf.Errorf(wharf.EFORBIDDEN, "AuthenticationFailed: "+format, args...)
}

// verify checks the token in q for a request that needs permission perm
// on path (container, then the blob's path, "/"-separated), at now, and
// returns it.
func (k *sasKeys) verify(ctx context.Context, q url.Values, path, perm string, now time.Time) (sas, error) {
	sig, err := base64.StdEncoding.DecodeString(q.Get("sig"))
	if err != nil || len(sig) == 0 {
		return sas{}, errSAS("the request carries no valid shared access signature (sig)")
	}
	expiry, err := time.Parse(time.RFC3339, q.Get("se"))
	if err != nil {
		return sas{}, errSAS("the signature has no valid expiry (se)")
	}
	s := sas{Permissions: q.Get("sp"), Expiry: expiry, ObjectID: q.Get("skoid")}
	segs := strings.Split(path, "/")
	switch q.Get("sr") {
	case "c":
		s.Resource = segs[0]
	case "d":
		depth, err := strconv.Atoi(q.Get("sdd"))
		if err != nil || depth < 1 || depth >= len(segs) {
			return sas{}, errSAS("the signature's folder (sdd) does not hold %s", path)
		}
		s.Resource = strings.Join(segs[:depth+1], "/")
	default:
		return sas{}, errSAS("the signature's resource type (sr) is not c or d")
	}
	if q.Get("sv") != sasVersion || q.Get("spr") != "https" || !k.matches(ctx, s.stringToSign(), sig) {
		return sas{}, errSAS("the signature does not match the request")
	}
	if !now.Before(expiry) {
		return sas{}, errSAS("the signature expired at %s", expiry.UTC().Format(time.RFC3339))
	}
	if !strings.Contains(s.Permissions, perm) {
		return sas{}, wharf.Errorf(wharf.EFORBIDDEN, "AuthorizationPermissionMismatch: the signature grants %q, this request needs %q", s.Permissions, perm)
	}
	return s, nil
}

// matches reports whether sig signs msg with any of the keys, reading
// them again once when none does and they were read a while ago: another
// server may have made one.
func (k *sasKeys) matches(ctx context.Context, msg string, sig []byte) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	for attempt := 0; attempt < 2; attempt++ {
		if attempt == 1 && time.Since(k.loaded) < reloadAfter {
			return false
		}
		if attempt == 1 || len(k.keys) == 0 {
			if err := k.load(ctx); err != nil {
				return false
			}
		}
		for _, key := range k.keys {
			if hmac.Equal(mac(key, msg), sig) {
				return true
			}
		}
	}
	return false
}
