package wharf

import (
	"context"
	"encoding/json"
	"strings"
	"time"
)

// OnlineEndpointKeyPrefix starts the names of the secrets that hold online
// endpoints' keys. Those secrets are the server's own: the secrets API
// refuses to write or delete them, since the router caches keys and a
// value written there would both bypass key regeneration and be a key
// nobody was told about.
const OnlineEndpointKeyPrefix = "online-endpoint-"

// OnlineEndpointKeySecret is the name of the secret, in the endpoint's
// workspace scope, that holds its primary or secondary key.
func OnlineEndpointKeySecret(endpoint, kind string) string {
	return OnlineEndpointKeyPrefix + endpoint + "-" + kind
}

// IsReservedSecretName reports whether a secret name belongs to the server
// (see OnlineEndpointKeyPrefix). Names are compared without regard to
// case, as Key Vault compares them.
func IsReservedSecretName(name string) bool {
	return len(name) >= len(OnlineEndpointKeyPrefix) &&
		strings.EqualFold(name[:len(OnlineEndpointKeyPrefix)], OnlineEndpointKeyPrefix)
}

// Online endpoint authentication modes.
const (
	AuthModeKey      = "key"
	AuthModeAMLToken = "aml_token"
)

// OnlineEndpoint is a real-time scoring endpoint: a stable URL and
// credentials in front of deployments, with the traffic split between them.
type OnlineEndpoint struct {
	Workspace   string            `json:"-"`
	Name        string            `json:"name"`
	AuthMode    string            `json:"auth_mode"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags"`
	// Traffic maps deployment names to percentages that sum to 0 or 100.
	Traffic map[string]int `json:"traffic"`
	// MirrorTraffic copies a percentage of live requests to a deployment
	// whose answers are discarded.
	MirrorTraffic     map[string]int `json:"mirror_traffic"`
	ProvisioningState string         `json:"provisioning_state"`
	CreatedAt         time.Time      `json:"created_at"`
	UpdatedAt         time.Time      `json:"updated_at"`
}

// OnlineDeployment is one model version served behind an endpoint.
type OnlineDeployment struct {
	Workspace string `json:"-"`
	Endpoint  string `json:"endpoint_name"`
	Name      string `json:"name"`
	// Model is the registered model version served ("name:version").
	Model string `json:"model"`
	// Spec is the rest of the definition as the az ml CLI v2 schema has
	// it: code_configuration, environment, instance_count,
	// request_settings, probes, environment_variables, data_collector and
	// the keys Wharf records without acting on.
	Spec              json.RawMessage `json:"spec"`
	ProvisioningState string          `json:"provisioning_state"`
	CreatedAt         time.Time       `json:"created_at"`
	UpdatedAt         time.Time       `json:"updated_at"`
}

// OnlineEndpointService stores online endpoints and their deployments.
type OnlineEndpointService interface {
	// PutOnlineEndpoint creates or replaces an endpoint.
	PutOnlineEndpoint(ctx context.Context, e *OnlineEndpoint) (created bool, err error)
	FindOnlineEndpoint(ctx context.Context, workspace, name string) (*OnlineEndpoint, error)
	ListOnlineEndpoints(ctx context.Context, workspace string) ([]*OnlineEndpoint, error)
	// DeleteOnlineEndpoint removes an endpoint with its deployments.
	DeleteOnlineEndpoint(ctx context.Context, workspace, name string) error
	PutOnlineDeployment(ctx context.Context, d *OnlineDeployment) (created bool, err error)
	FindOnlineDeployment(ctx context.Context, workspace, endpoint, name string) (*OnlineDeployment, error)
	ListOnlineDeployments(ctx context.Context, workspace, endpoint string) ([]*OnlineDeployment, error)
	// DeleteOnlineDeployment refuses to remove a deployment that still
	// takes live or mirrored traffic.
	DeleteOnlineDeployment(ctx context.Context, workspace, endpoint, name string) error
}

// Validate normalizes an endpoint and checks its traffic rules: live
// traffic sums to 0 or 100, mirrored traffic goes to one deployment at
// most 50% of the time, and a deployment does not take both.
func (e *OnlineEndpoint) Validate() error {
	if err := ValidateName("name", e.Name); err != nil {
		return err
	}
	switch e.AuthMode {
	case "":
		e.AuthMode = AuthModeKey
	case AuthModeKey, AuthModeAMLToken:
	default:
		return Errorf(EINVALID, "auth_mode %q is not supported (allowed: key, aml_token)", e.AuthMode).WithField("auth_mode")
	}
	if e.Traffic == nil {
		e.Traffic = map[string]int{}
	}
	if e.MirrorTraffic == nil {
		e.MirrorTraffic = map[string]int{}
	}
	if e.Tags == nil {
		e.Tags = map[string]string{}
	}
	sum := 0
	for d, p := range e.Traffic {
		if p < 0 || p > 100 {
			return Errorf(EINVALID, "traffic for %s is %d%%; use 0 to 100", d, p).WithField("traffic")
		}
		sum += p
	}
	if sum != 0 && sum != 100 {
		return Errorf(EINVALID, "traffic adds up to %d%%; it must add up to 0 or 100", sum).WithField("traffic")
	}
	if len(e.MirrorTraffic) > 1 {
		return Errorf(EINVALID, "mirror_traffic may name one deployment, not %d", len(e.MirrorTraffic)).WithField("mirror_traffic")
	}
	for d, p := range e.MirrorTraffic {
		if p < 0 || p > 50 {
			return Errorf(EINVALID, "mirror_traffic for %s is %d%%; use 0 to 50", d, p).WithField("mirror_traffic")
		}
		if p > 0 && e.Traffic[d] > 0 {
			return Errorf(EINVALID, "deployment %s takes live traffic, so it cannot also be the mirror target", d).WithField("mirror_traffic")
		}
	}
	return nil
}

// BatchEndpoint scores datasets as jobs; its default deployment serves an
// invocation that names none.
type BatchEndpoint struct {
	Workspace         string            `json:"-"`
	Name              string            `json:"name"`
	Description       string            `json:"description,omitempty"`
	Tags              map[string]string `json:"tags"`
	DefaultDeployment string            `json:"default_deployment,omitempty"`
	CreatedAt         time.Time         `json:"created_at"`
	UpdatedAt         time.Time         `json:"updated_at"`
}

// BatchDeployment is a model and the settings a batch job scores with.
type BatchDeployment struct {
	Workspace string `json:"-"`
	Endpoint  string `json:"endpoint_name"`
	Name      string `json:"name"`
	// Type is "pipeline" for a deployment that runs a pipeline (Spec
	// then holds its pipeline job), empty for one that scores a model.
	Type string `json:"type,omitempty"`
	// Model is the registered model version ("name:version").
	Model string `json:"model"`
	// Spec holds compute, resources, mini_batch_size, output_action,
	// retry_settings and the other az ml batch deployment settings.
	Spec      json.RawMessage `json:"spec"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// BatchEndpointService stores batch endpoints and deployments.
type BatchEndpointService interface {
	PutBatchEndpoint(ctx context.Context, e *BatchEndpoint) (created bool, err error)
	FindBatchEndpoint(ctx context.Context, workspace, name string) (*BatchEndpoint, error)
	ListBatchEndpoints(ctx context.Context, workspace string) ([]*BatchEndpoint, error)
	DeleteBatchEndpoint(ctx context.Context, workspace, name string) error
	PutBatchDeployment(ctx context.Context, d *BatchDeployment) (created bool, err error)
	FindBatchDeployment(ctx context.Context, workspace, endpoint, name string) (*BatchDeployment, error)
	ListBatchDeployments(ctx context.Context, workspace, endpoint string) ([]*BatchDeployment, error)
	DeleteBatchDeployment(ctx context.Context, workspace, endpoint, name string) error
}
