package wharf

import (
	"context"
	"time"
)

// Audit outcomes.
const (
	AuditSucceeded = "succeeded"
	AuditFailed    = "failed"
	AuditDenied    = "denied"
)

// AuditEvent records one mutating call: who, what, when, and how it ended.
type AuditEvent struct {
	ID            int64     `json:"id"`
	Time          time.Time `json:"time"`
	PrincipalID   string    `json:"principalId"`
	PrincipalName string    `json:"principalName"`
	Action        string    `json:"action"`
	Method        string    `json:"method"`
	Path          string    `json:"path"`
	Scope         string    `json:"scope"`
	Status        int       `json:"status"`
	Outcome       string    `json:"outcome"`
	RequestID     string    `json:"requestId"`
}

// AuditFilter narrows ListAuditEvents.
type AuditFilter struct {
	PrincipalID string
	// Scope keeps the events of one scope ("/workspaces/ws"): the scope
	// their call was authorized at.
	Scope string
	Since time.Time
	// Limit caps the result; 0 means 100.
	Limit int
}

// AuditService stores the audit log. It is append-only: there is no update
// or delete.
type AuditService interface {
	RecordAuditEvent(ctx context.Context, e *AuditEvent) error
	// ListAuditEvents returns events newest first.
	ListAuditEvents(ctx context.Context, f AuditFilter) ([]*AuditEvent, error)
}

// SettingService keeps server-wide settings such as the tenant id.
type SettingService interface {
	// Setting returns the value of key and whether it is set.
	Setting(ctx context.Context, key string) (string, bool, error)
	// InitSetting sets key to value unless it is already set, and returns
	// the value in force. Concurrent first starts therefore agree.
	InitSetting(ctx context.Context, key, value string) (string, error)
}

// Store is the whole metadata store, implemented once over SQL for SQLite
// and PostgreSQL.
type Store interface {
	WorkspaceService
	DatastoreService
	ComputeService
	PrincipalService
	UserService
	FederatedCredentialService
	RoleAssignmentService
	SecretService
	AuditService
	SettingService
	TrackingService
	TraceService
	RegistryService
	ArtifactService
	AssetService
	JobService
	ScheduleService
	MonitorService
	DatastorePathService
	DatastoreObjectService
	OnlineEndpointService
	BatchEndpointService
	BlobRefService
	StorageBlobService
	// Ping reports whether the store can serve requests (readiness).
	Ping(ctx context.Context) error
	Close() error
}
