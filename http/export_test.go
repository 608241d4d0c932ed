package http

import (
	"net/http"
	"sync/atomic"
	"testing"
)

// CountSecretVerifications counts the argon2id verifications of client
// secrets made until the test ends.
func CountSecretVerifications(t testing.TB) *atomic.Int64 {
	var n atomic.Int64
	verify := verifySecret
	verifySecret = func(hash, secret string) (bool, error) {
		n.Add(1)
		return verify(hash, secret)
	}
	t.Cleanup(func() { verifySecret = verify })
	return &n
}

// DownsampleM4 is downsampleM4, for its tests.
var DownsampleM4 = downsampleM4

// RouteForTest registers h on s as a route guarded by action, with the
// request pipeline (authentication, authorization, audit) of every route.
func RouteForTest(s *Server, pattern, action string, h http.HandlerFunc) {
	s.route(pattern, action, h)
}
