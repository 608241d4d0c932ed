// Package wharf holds Wharf's domain: the resources a data-science team
// manages (workspaces, datastores, compute clusters, service principals, role
// assignments, secrets, audit events) and the service interfaces through which
// the rest of the program reaches them.
//
// The package depends on nothing but the standard library. Each dependency
// lives in its own subpackage (sqlite, postgres, http, ...) and implements or
// consumes the interfaces declared here, so storage engines and transports can
// be swapped without touching the domain.
package wharf

import (
	"context"
	"regexp"
)

// ServerScope is the root scope: a role assigned here applies to every
// workspace on the server.
const ServerScope = "/"

// WorkspaceScope returns the authorization scope of a workspace. Resources
// inside a workspace share its scope: Azure ML's roles are granted at the
// workspace, not per resource, and Wharf keeps that model.
func WorkspaceScope(workspace string) string {
	return "/workspaces/" + workspace
}

// nameRE is the rule for resource names: Azure ML's names are 3-255 characters
// of letters, digits, '-' and '_' starting with a letter or digit; Wharf keeps
// names shorter so they fit file paths and URLs comfortably.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)

// ValidateName reports an EINVALID error naming field when name is not a valid
// resource name.
func ValidateName(field, name string) error {
	if name == "" {
		return Errorf(EINVALID, "%s is required", field).WithField(field)
	}
	if !nameRE.MatchString(name) {
		return Errorf(EINVALID, "%s %q is not a valid name: use 1-63 letters, digits, '-' or '_', starting with a letter or digit", field, name).WithField(field)
	}
	return nil
}

// assetNameRE is the rule for asset names (data, environments,
// components): Azure allows '.' in them (sklearn-1.5), which resource
// names do not have.
var assetNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$`)

// ValidateAssetName reports an EINVALID error naming field when name is
// not a valid asset name.
func ValidateAssetName(field, name string) error {
	if name == "" {
		return Errorf(EINVALID, "%s is required", field).WithField(field)
	}
	if !assetNameRE.MatchString(name) {
		return Errorf(EINVALID, "%s %q is not a valid asset name: use 1-255 letters, digits, '.', '-' or '_', starting with a letter or digit", field, name).WithField(field)
	}
	return nil
}

// ValidateAssetVersion checks a version string given to an asset, as
// Azure ML accepts them ("3", "1.0.0", "2024-05-01_rc1").
func ValidateAssetVersion(field, version string) error {
	if !assetNameRE.MatchString(version) {
		return Errorf(EINVALID, "%s %q is not a valid version: use 1-255 letters, digits, '.', '-' or '_', starting with a letter or digit", field, version).WithField(field)
	}
	return nil
}

// Caller is the authenticated principal behind a request.
type Caller struct {
	// PrincipalID is the service principal's application (client) id, or
	// the user's object id: what role assignments name.
	PrincipalID string
	// User is set when the caller is a user rather than a service
	// principal; DisplayName is then the user principal name.
	User bool
	// DisplayName is the principal's display name, for audit lines.
	DisplayName string
	// Job is set when the request comes from a job's processes with the
	// token the job was given: the caller then acts for PrincipalID (who
	// submitted the job) only within JobWorkspace and only with
	// JobActions (see AuthorizeCaller).
	Job string
	// JobWorkspace is the workspace of Job.
	JobWorkspace string
}

// AuditName is how the audit log names the caller: the principal's
// display name, or "job J on behalf of NAME" for a job's token.
func (c *Caller) AuditName() string {
	if c.Job != "" {
		return "job " + c.Job + " on behalf of " + c.DisplayName
	}
	return c.DisplayName
}

type callerKey struct{}

// NewContextWithCaller returns ctx carrying the caller.
func NewContextWithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFromContext returns the caller carried by ctx, or nil.
func CallerFromContext(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}
