// Package auth implements the credentials behind Wharf's OAuth2
// client-credentials grant: client secrets stored as argon2id hashes, and
// short-lived ES256 access tokens signed with a rotating key ring whose
// public half is published as a JWKS.
//
// Nothing in this package ever puts a secret, token or private key into an
// error message, so callers may log errors as they are.
package auth
