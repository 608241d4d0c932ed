package wharf

import (
	"context"
	"sync"
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

// PendingAudit is a request's audit record that the store may write in
// the transaction of the request's write, so that one commit makes the
// write and its record durable together where two would otherwise. The
// request pipeline puts one in a request's context; a handler arms it
// (ArmAudit) just before the write that decides its answer, with the
// status it answers when that write commits. The next transaction the
// store commits under that context then holds the record. Unarmed, or
// when no transaction wrote it, the pipeline records the request after
// the handler as always.
type PendingAudit struct {
	mu      sync.Mutex
	event   AuditEvent
	armed   bool
	claimed bool
	written bool
}

type pendingAuditKey struct{}

// NewContextWithPendingAudit returns ctx carrying p, whose record is e
// (its Status and Outcome are set when it is armed).
func NewContextWithPendingAudit(ctx context.Context, e *AuditEvent) (context.Context, *PendingAudit) {
	p := &PendingAudit{event: *e}
	return context.WithValue(ctx, pendingAuditKey{}, p), p
}

// ArmAudit has the next transaction committed under ctx write the
// request's audit record, as succeeded with status. It returns ctx, and
// does nothing where ctx carries no pending record.
func ArmAudit(ctx context.Context, status int) context.Context {
	if p, _ := ctx.Value(pendingAuditKey{}).(*PendingAudit); p != nil {
		p.mu.Lock()
		p.event.Status, p.event.Outcome, p.armed = status, AuditSucceeded, true
		p.mu.Unlock()
	}
	return ctx
}

// ClaimPendingAudit returns the armed record of ctx for a transaction
// about to commit to write, or nil: none, not armed, or already written
// or claimed. The store calls done with whether the transaction holding
// the record committed; a record not committed can be claimed again.
func ClaimPendingAudit(ctx context.Context) (e *AuditEvent, done func(committed bool)) {
	p, _ := ctx.Value(pendingAuditKey{}).(*PendingAudit)
	if p == nil {
		return nil, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.armed || p.claimed || p.written {
		return nil, nil
	}
	p.claimed = true
	e = new(AuditEvent)
	*e = p.event
	return e, func(committed bool) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.claimed = false
		if committed {
			p.written, p.event.ID, p.event.Time = true, e.ID, e.Time
		}
	}
}

// Written returns the record as a transaction wrote it, or nil when none
// did.
func (p *PendingAudit) Written() *AuditEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.written {
		return nil
	}
	e := p.event
	return &e
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
