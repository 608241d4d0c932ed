package wharf

import "context"

// Trace states use the names of MLflow's TraceInfoV3 State, which the
// mlflow client sends and expects.
const (
	TraceStateUnspecified = "STATE_UNSPECIFIED"
	TraceStateOK          = "OK"
	TraceStateError       = "ERROR"
	TraceStateInProgress  = "IN_PROGRESS"
)

// TraceArtifactLocationTag is the trace tag holding the artifact URI under
// which the client stores the trace's spans (traces.json) and
// attachments; the store sets it when a trace is created, as MLflow's does.
const TraceArtifactLocationTag = "mlflow.artifactLocation"

// Trace is the record of one traced request (an MLflow TraceInfo): what
// the client reports when the request ends. Its spans are not here: the
// client uploads them as an artifact under TraceArtifactLocationTag.
// Trace ids are chosen by the client and unique within a workspace.
type Trace struct {
	Workspace       string
	ID              string // "tr-<32 hex>" from the 3.x client, 32 hex from the v2 API
	ExperimentID    string
	ClientRequestID string
	RequestTime     int64 // ms since the epoch
	// ExecutionTime is the duration in ms; -1 while it is unknown (a
	// trace started with the v2 API and not yet ended).
	ExecutionTime   int64
	State           string
	RequestPreview  string
	ResponsePreview string
	// Metadata is MLflow's trace_metadata (request_metadata in the v2
	// API): facts about the request, such as mlflow.sourceRun.
	Metadata    map[string]string
	Tags        map[string]string
	Assessments []*Assessment
}

// Assessment is a judgement about a trace, feedback or an expectation.
// Document is the assessment as MLflow's JSON form spells it, ids and
// times included: its value is any JSON value the client chose, which the
// server keeps as given and never interprets.
type Assessment struct {
	Workspace      string
	TraceID        string
	ID             string // "a-<32 hex>"
	Name           string
	CreateTime     int64 // ms since the epoch
	LastUpdateTime int64
	Document       []byte
}

// TraceDeletion selects the traces of an experiment to delete: those
// named by IDs, or else those that started at or before MaxTimestamp,
// oldest first, at most MaxTraces of them (0 for no limit).
type TraceDeletion struct {
	ExperimentID string
	IDs          []string
	MaxTimestamp int64
	MaxTraces    int
}

// TraceService is MLflow's trace store, per workspace.
type TraceService interface {
	// CreateTrace records a trace and sets its artifact location tag,
	// below its experiment's artifact location. The experiment must be
	// active. Creating a trace that exists again updates it and merges
	// its tags, metadata and assessments, as a client retrying an export
	// would need.
	CreateTrace(ctx context.Context, t *Trace) error
	// FindTrace returns ENOTFOUND for an unknown id.
	FindTrace(ctx context.Context, workspace, id string) (*Trace, error)
	// EndTrace completes a trace started with the v2 API: its duration
	// runs to endTime, its state becomes state, and metadata and tags are
	// merged in.
	EndTrace(ctx context.Context, workspace, id string, endTime int64, state string, metadata, tags map[string]string) (*Trace, error)
	// SearchTraces searches the experiments q.ExperimentIDs with MLflow's
	// trace filter grammar, by default newest first.
	SearchTraces(ctx context.Context, workspace string, q SearchQuery) ([]*Trace, string, error)
	SetTraceTag(ctx context.Context, workspace, id, key, value string) error
	DeleteTraceTag(ctx context.Context, workspace, id, key string) error
	// DeleteTraces deletes the traces d selects, with their tags, metadata
	// and assessments, and returns them.
	DeleteTraces(ctx context.Context, workspace string, d TraceDeletion) ([]*Trace, error)

	// PutAssessment creates or replaces an assessment of an existing trace.
	PutAssessment(ctx context.Context, a *Assessment) error
	// FindAssessment returns ENOTFOUND for an unknown trace or assessment.
	FindAssessment(ctx context.Context, workspace, traceID, id string) (*Assessment, error)
	DeleteAssessment(ctx context.Context, workspace, traceID, id string) error
}
