package wharf

import (
	"context"
	"sort"
	"strings"
	"time"
)

// Actions. Every API route declares the one action it performs; roles grant
// actions by pattern, where '*' matches any run of characters (slashes
// included), as in Azure role definitions.
const (
	ActionWorkspaceRead   = "workspaces/read"
	ActionWorkspaceWrite  = "workspaces/write"
	ActionWorkspaceDelete = "workspaces/delete"

	ActionComputeRead   = "workspaces/computes/read"
	ActionComputeWrite  = "workspaces/computes/write"
	ActionComputeDelete = "workspaces/computes/delete"

	ActionDatastoreRead   = "workspaces/datastores/read"
	ActionDatastoreWrite  = "workspaces/datastores/write"
	ActionDatastoreDelete = "workspaces/datastores/delete"

	// ActionSecretRead lists secret names and versions, never values.
	ActionSecretRead   = "workspaces/secrets/read"
	ActionSecretWrite  = "workspaces/secrets/write"
	ActionSecretDelete = "workspaces/secrets/delete"
	// ActionSecretValue reads secret values; it is an action, not a read,
	// so that Reader and Data Scientist do not get it.
	ActionSecretValue = "workspaces/listSecrets/action"

	ActionRoleAssignmentRead   = "authorization/roleAssignments/read"
	ActionRoleAssignmentWrite  = "authorization/roleAssignments/write"
	ActionRoleAssignmentDelete = "authorization/roleAssignments/delete"
	ActionRoleDefinitionRead   = "authorization/roleDefinitions/read"

	ActionPrincipalRead   = "authorization/servicePrincipals/read"
	ActionPrincipalWrite  = "authorization/servicePrincipals/write"
	ActionPrincipalDelete = "authorization/servicePrincipals/delete"

	// Users: people who sign in. Managing them is an access change, so
	// Contributor's NotActions leave it to Owners.
	ActionUserRead   = "authorization/users/read"
	ActionUserWrite  = "authorization/users/write"
	ActionUserDelete = "authorization/users/delete"

	// Federated identity credentials: who may log in as a principal
	// without a secret, so changing them is an access change (Owner only).
	ActionFederatedCredentialRead   = "authorization/servicePrincipals/federatedIdentityCredentials/read"
	ActionFederatedCredentialWrite  = "authorization/servicePrincipals/federatedIdentityCredentials/write"
	ActionFederatedCredentialDelete = "authorization/servicePrincipals/federatedIdentityCredentials/delete"

	ActionAuditRead = "audit/read"

	// MLflow tracking: experiments, runs and their metrics. Searches are
	// reads even when sent as POST.
	ActionExperimentRead   = "workspaces/experiments/read"
	ActionExperimentWrite  = "workspaces/experiments/write"
	ActionExperimentDelete = "workspaces/experiments/delete"

	// The model registry, MLflow 3 logged models included.
	ActionModelRead   = "workspaces/models/read"
	ActionModelWrite  = "workspaces/models/write"
	ActionModelDelete = "workspaces/models/delete"

	ActionArtifactRead   = "workspaces/artifacts/read"
	ActionArtifactWrite  = "workspaces/artifacts/write"
	ActionArtifactDelete = "workspaces/artifacts/delete"

	// Versioned assets that jobs consume: data, environments, components.
	ActionDataRead          = "workspaces/data/read"
	ActionDataWrite         = "workspaces/data/write"
	ActionDataDelete        = "workspaces/data/delete"
	ActionEnvironmentRead   = "workspaces/environments/read"
	ActionEnvironmentWrite  = "workspaces/environments/write"
	ActionEnvironmentDelete = "workspaces/environments/delete"
	ActionComponentRead     = "workspaces/components/read"
	ActionComponentWrite    = "workspaces/components/write"
	ActionComponentDelete   = "workspaces/components/delete"

	// Jobs (command and pipeline) and the schedules that submit them;
	// cancelling is an action of its own so that it can be granted apart.
	ActionJobRead        = "workspaces/jobs/read"
	ActionJobWrite       = "workspaces/jobs/write"
	ActionJobCancel      = "workspaces/jobs/cancel/action"
	ActionScheduleRead   = "workspaces/schedules/read"
	ActionScheduleWrite  = "workspaces/schedules/write"
	ActionScheduleDelete = "workspaces/schedules/delete"

	// Online endpoints and their deployments. Reading an endpoint's keys
	// and scoring with a token are actions of their own, as in Azure ML.
	ActionOnlineEndpointRead   = "workspaces/onlineEndpoints/read"
	ActionOnlineEndpointWrite  = "workspaces/onlineEndpoints/write"
	ActionOnlineEndpointDelete = "workspaces/onlineEndpoints/delete"
	ActionOnlineEndpointKeys   = "workspaces/onlineEndpoints/listKeys/action"
	ActionOnlineEndpointScore  = "workspaces/onlineEndpoints/score/action"

	// Batch endpoints; invoking one is a job submission (ActionJobWrite).
	ActionBatchEndpointRead   = "workspaces/batchEndpoints/read"
	ActionBatchEndpointWrite  = "workspaces/batchEndpoints/write"
	ActionBatchEndpointDelete = "workspaces/batchEndpoints/delete"
)

// Built-in role names.
const (
	RoleOwner           = "Owner"
	RoleContributor     = "Contributor"
	RoleReader          = "Reader"
	RoleDataScientist   = "Data Scientist"
	RoleComputeOperator = "Compute Operator"
)

// RoleDefinition is a named set of allowed and excluded action patterns.
type RoleDefinition struct {
	Name        string   `json:"roleName"`
	Description string   `json:"description"`
	Actions     []string `json:"actions"`
	NotActions  []string `json:"notActions"`
}

// Permits reports whether the role grants action: some Actions pattern
// matches and no NotActions pattern does.
func (r *RoleDefinition) Permits(action string) bool {
	allowed := false
	for _, p := range r.Actions {
		if matchAction(p, action) {
			allowed = true
			break
		}
	}
	if !allowed {
		return false
	}
	for _, p := range r.NotActions {
		if matchAction(p, action) {
			return false
		}
	}
	return true
}

// matchAction matches an action against a pattern in which '*' stands for
// any run of characters. Comparison ignores case, as Azure's does.
func matchAction(pattern, action string) bool {
	p, a := strings.ToLower(pattern), strings.ToLower(action)
	parts := strings.Split(p, "*")
	if len(parts) == 1 {
		return p == a
	}
	if !strings.HasPrefix(a, parts[0]) {
		return false
	}
	a = a[len(parts[0]):]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(a, mid)
		if i < 0 {
			return false
		}
		a = a[i+len(mid):]
	}
	return strings.HasSuffix(a, parts[len(parts)-1])
}

// builtinRoles follow the semantics of the Azure built-in roles of the same
// names: Contributor manages everything but access; Data Scientist works
// inside a workspace but cannot create or delete compute, change or delete
// the workspace, or read secret values; Compute Operator manages compute only.
var builtinRoles = []*RoleDefinition{
	{
		Name:        RoleOwner,
		Description: "Full access to all resources, including the right to assign roles.",
		Actions:     []string{"*"},
	},
	{
		Name:        RoleContributor,
		Description: "Manage all resources, but not access to them.",
		Actions:     []string{"*"},
		NotActions:  []string{"authorization/*/write", "authorization/*/delete"},
	},
	{
		Name:        RoleReader,
		Description: "View all resources, but make no changes.",
		Actions:     []string{"*/read"},
	},
	{
		Name:        RoleDataScientist,
		Description: "Run jobs and manage assets, models and endpoints in a workspace; cannot manage compute, the workspace itself, or access.",
		Actions:     []string{"workspaces/read", "workspaces/*/read", "workspaces/*/write", "workspaces/*/delete", "workspaces/*/action"},
		NotActions: []string{
			ActionWorkspaceWrite, ActionWorkspaceDelete,
			ActionComputeWrite, ActionComputeDelete,
			ActionSecretValue,
		},
	},
	{
		Name:        RoleComputeOperator,
		Description: "Create, manage, delete and access compute in a workspace.",
		Actions:     []string{"workspaces/computes/*"},
	},
}

// BuiltinRoles returns the built-in role definitions.
func BuiltinRoles() []*RoleDefinition {
	out := make([]*RoleDefinition, len(builtinRoles))
	copy(out, builtinRoles)
	return out
}

// FindRole returns the built-in role with that name, compared without regard
// to case, spaces or dashes (`data-scientist`, `DataScientist`), since CI
// scripts spell them every way.
func FindRole(name string) (*RoleDefinition, error) {
	key := roleKey(name)
	for _, r := range builtinRoles {
		if roleKey(r.Name) == key {
			return r, nil
		}
	}
	names := make([]string, len(builtinRoles))
	for i, r := range builtinRoles {
		names[i] = r.Name
	}
	sort.Strings(names)
	return nil, Errorf(EINVALID, "role %q does not exist (built-in roles: %s)", name, strings.Join(names, ", ")).WithField("role")
}

func roleKey(s string) string {
	s = strings.ToLower(s)
	return strings.NewReplacer(" ", "", "-", "", "_", "").Replace(s)
}

// NormalizeScope validates a scope and returns its canonical form: "/" or
// "/workspaces/NAME".
func NormalizeScope(scope string) (string, error) {
	s := strings.TrimRight(strings.TrimSpace(scope), "/")
	if s == "" {
		return ServerScope, nil
	}
	parts := strings.Split(strings.TrimPrefix(s, "/"), "/")
	if len(parts) == 2 && strings.EqualFold(parts[0], "workspaces") {
		if err := ValidateName("scope", parts[1]); err != nil {
			return "", err
		}
		return WorkspaceScope(parts[1]), nil
	}
	return "", Errorf(EINVALID, "scope %q is not valid (use \"/\" or \"/workspaces/NAME\")", scope).WithField("scope")
}

// ScopeContains reports whether a grant at scope applies to resource scope
// target: grants are inherited downward.
func ScopeContains(scope, target string) bool {
	if scope == ServerScope {
		return true
	}
	return target == scope || strings.HasPrefix(target, scope+"/")
}

// RoleAssignment grants a role to a principal at a scope.
type RoleAssignment struct {
	ID            string `json:"id"`
	PrincipalID   string `json:"principalId"`
	PrincipalName string `json:"principalName"`
	// PrincipalType is PrincipalTypeServicePrincipal or PrincipalTypeUser.
	PrincipalType string    `json:"principalType"`
	RoleName      string    `json:"roleDefinitionName"`
	Scope         string    `json:"scope"`
	CreatedAt     time.Time `json:"createdOn"`
}

// Authorize reports whether any of the assignments grants action at scope.
// Assignments are a union: one role's NotActions never block another role's
// grant. No assignment means no access.
func Authorize(assignments []*RoleAssignment, action, scope string) bool {
	for _, a := range assignments {
		if !ScopeContains(a.Scope, scope) {
			continue
		}
		role, err := FindRole(a.RoleName)
		if err != nil {
			continue
		}
		if role.Permits(action) {
			return true
		}
	}
	return false
}

// JobActions are all a job's token can ever do, whatever its submitter may:
// track its runs through MLflow, read and write artifacts, read the
// workspace's assets, and register models, as a register step does. No
// deletes, no jobs, secrets, endpoints, compute, principals or role
// assignments, and nothing outside the job's workspace.
var JobActions = []string{
	ActionWorkspaceRead,
	ActionExperimentRead, ActionExperimentWrite,
	ActionModelRead, ActionModelWrite,
	ActionArtifactRead, ActionArtifactWrite,
	ActionDataRead, ActionEnvironmentRead, ActionComponentRead,
}

// AuthorizeCaller is Authorize for a caller: a job's token is further
// limited to JobActions inside its own workspace, so that code running in
// a job — a component someone else wrote, a compromised dependency —
// never holds more of its submitter's rights than the job needs.
func AuthorizeCaller(c *Caller, assignments []*RoleAssignment, action, scope string) bool {
	if c != nil && c.Job != "" {
		if scope == ServerScope || !ScopeContains(WorkspaceScope(c.JobWorkspace), scope) {
			return false
		}
		allowed := false
		for _, a := range JobActions {
			if strings.EqualFold(a, action) {
				allowed = true
				break
			}
		}
		if !allowed {
			return false
		}
	}
	return Authorize(assignments, action, scope)
}

// RoleAssignmentFilter narrows ListRoleAssignments; empty fields match all.
type RoleAssignmentFilter struct {
	PrincipalID string
	Scope       string
	RoleName    string
}

// RoleAssignmentService manages role assignments.
type RoleAssignmentService interface {
	// CreateRoleAssignment returns ECONFLICT when the principal already
	// holds that role at that scope, ENOTFOUND when the principal is unknown.
	CreateRoleAssignment(ctx context.Context, a *RoleAssignment) error
	ListRoleAssignments(ctx context.Context, f RoleAssignmentFilter) ([]*RoleAssignment, error)
	DeleteRoleAssignment(ctx context.Context, id string) error
	// FindCallerGrants returns the principal whose id, a service
	// principal's app id or a user's object id, is id, as a caller, with
	// the role assignments that name it, read together in one statement:
	// the request pipeline's lookup of a token's principal. ENOTFOUND
	// when no principal has that id.
	FindCallerGrants(ctx context.Context, id string) (*CallerGrants, error)
}

// CallerGrants is a principal as a caller, with its role assignments as
// they were when read.
type CallerGrants struct {
	Caller      *Caller
	Assignments []*RoleAssignment
}
