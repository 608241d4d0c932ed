package wharf

import (
	"context"
	"io"
	"time"
)

// ClusterAttempt is what an attempt records of its run on a Ray-backed
// cluster, so that a restarted server follows it instead of running it
// again.
type ClusterAttempt struct {
	// Task names the attempt to the cluster's driver.
	Task string `json:"task"`
	// Driver is the Ray submission id of the driver job that runs it;
	// empty until the driver started it.
	Driver string `json:"driver,omitempty"`
}

// ClusterTaskOptions are what a step asks of the cluster for its task:
// the resources Ray reserves for it.
type ClusterTaskOptions struct {
	// NumCPUs and NumGPUs are Ray's num_cpus and num_gpus.
	NumCPUs float64 `json:"num_cpus"`
	NumGPUs float64 `json:"num_gpus,omitempty"`
	// Memory is Ray's memory reservation, in bytes; 0 reserves none.
	Memory int64 `json:"memory,omitempty"`
	// Resources are Ray custom resources by name.
	Resources map[string]float64 `json:"resources,omitempty"`
	// Unsandboxed runs the task's command as the Ray worker's user; by
	// default it runs in a sandbox on the node (wharf sandbox exec).
	Unsandboxed bool `json:"unsandboxed,omitempty"`
	// ReadOnlyPaths are folders of the node the sandboxed command sees
	// read-only, at the same path (the compute's
	// sandbox_read_only_paths).
	ReadOnlyPaths []string `json:"read_only_paths,omitempty"`
	// PlacementGroup is for distributed training: the bundles of a
	// placement group the driver reserves for the attempt, one per
	// instance, whose ranks' tasks it schedules in them (see
	// ClusterAssignment.Ranks). NumCPUs and NumGPUs are then each rank's.
	PlacementGroup *ClusterPlacementGroup `json:"placement_group,omitempty"`
}

// ClusterPlacementGroup is a Ray placement group: bundles of resources
// reserved together, placed by Strategy (PACK, SPREAD, STRICT_PACK,
// STRICT_SPREAD).
type ClusterPlacementGroup struct {
	Bundles  []map[string]float64 `json:"bundles"`
	Strategy string               `json:"strategy"`
}

// ClusterAssignment is one attempt handed to a cluster's driver: what to
// run, and where to fetch its files from and send its outputs to.
type ClusterAssignment struct {
	// ID names the attempt in the driver's reports.
	ID string `json:"id"`
	// Command runs with /bin/sh -c in the attempt's code folder.
	Command string `json:"command"`
	// Env is the whole environment of the command, PATH aside (the
	// worker's, so that the task's runtime_env Python is found).
	Env map[string]string `json:"env"`
	// Dir is the attempt's folder on the server: the task lays out the
	// same folders (code, inputs, outputs) under a folder of its own and
	// rewrites Dir in Command and Env to it.
	Dir string `json:"dir"`
	// Token is the job's own token, with which the task fetches its
	// files, streams its log and sends its outputs.
	Token string `json:"token"`
	// Files, Log and Outputs are the server's paths (under its URL) the
	// task reads its folders from (a tar stream), appends its log to and
	// puts its outputs to (a tar stream).
	Files   string `json:"files"`
	Log     string `json:"log"`
	Outputs string `json:"outputs"`
	// TimeoutSeconds ends the attempt; zero means no limit. The server
	// enforces it; the driver learns of it as a cancellation.
	TimeoutSeconds int                `json:"timeout_seconds,omitempty"`
	Options        ClusterTaskOptions `json:"options"`
	// Ranks are the processes of a distributed step, each a Ray task in
	// bundle Bundle of Options.PlacementGroup; none for a single process.
	Ranks []ClusterRank `json:"ranks,omitempty"`
	// MPI is set for a step of distribution type mpi, which runs under
	// Open MPI's mpirun across the bundles of Options.PlacementGroup
	// (see ClusterMPI); Ranks is then empty.
	MPI *ClusterMPI `json:"mpi,omitempty"`
	// Wharf is the server's own executable, which the task runs the step
	// with as $WHARF: a node fetches it once, into a cache keyed by its
	// digest, and finds it there for every later task.
	Wharf *ClusterExecutable `json:"wharf,omitempty"`
	// Python is the step's Python environment, which the task builds on
	// its node with the server's own builder (`wharf env build`, cached
	// there) before it runs the command in it; nil for an environment
	// that asks for no Python of its own (an image alone).
	Python *ClusterPython `json:"python,omitempty"`
}

// ClusterPython is a step's Python environment as its conda file gives
// it (the fields of pyenv.Spec).
type ClusterPython struct {
	PythonVersion string   `json:"python_version,omitempty"`
	Pip           []string `json:"pip,omitempty"`
	Conda         []string `json:"conda,omitempty"`
}

// ClusterExecutable describes the server's own executable as the nodes of
// a Ray-backed cluster fetch it.
type ClusterExecutable struct {
	// Path is where the server serves it, under its URL.
	Path string `json:"path"`
	// SHA256 is the hex digest of its bytes, which a node checks what it
	// fetched and what it cached against.
	SHA256 string `json:"sha256"`
	// Size is its length in bytes.
	Size int64 `json:"size"`
	// GOOS and GOARCH are the operating system and architecture it runs
	// on; a node of another cannot run it.
	GOOS   string `json:"goos"`
	GOARCH string `json:"goarch"`
}

// ClusterRank is one process of a distributed step on a Ray-backed
// cluster: its Env is added to the assignment's. The driver points the
// variables that say where the processes meet (MASTER_ADDR, MASTER_PORT,
// AZ_BATCH_MASTER_NODE, AZ_BATCHAI_MPI_MASTER_NODE) at bundle 0's node
// and a port free there, which the server cannot know.
type ClusterRank struct {
	Label  string            `json:"label"`
	Bundle int               `json:"bundle"`
	Env    map[string]string `json:"env"`
}

// ClusterMPI is an MPI step on a Ray-backed cluster. The driver runs
// mpirun in a task in bundle 0 with a hostfile naming each bundle and a
// launch agent of its own, through which mpirun starts Open MPI's daemon
// (orted) as a Ray task in each bundle, where the daemon starts that
// bundle's Slots processes. Every daemon runs in a folder of its own,
// with the step's files, so the processes' command cannot name their
// folder: Argv's processes run the command the driver puts in
// WHARF_MPI_COMMAND, in the folder it puts in WHARF_MPI_DIR, both with
// the daemon's folder in them.
type ClusterMPI struct {
	// Argv is mpirun's command line, its hosts and launch agent aside.
	Argv []string `json:"argv"`
	// Slots is the number of processes in each bundle.
	Slots int `json:"slots"`
}

// ClusterPoll is the answer to a driver's poll: attempts to start and
// attempts to cancel.
type ClusterPoll struct {
	Assign []ClusterAssignment `json:"assign"`
	Cancel []string            `json:"cancel"`
}

// ClusterReport is what a driver reports of an attempt: that it handed
// it to Ray, or how it ended.
type ClusterReport struct {
	// Event is "submitted" or "ended".
	Event string `json:"event"`
	// ExitCode is the command's exit status (128+N for signal N) when it
	// ran to its end.
	ExitCode *int `json:"exit_code,omitempty"`
	// Canceled is set when the task was cancelled.
	Canceled bool `json:"canceled,omitempty"`
	// Error says why the task ended without an exit status: its worker
	// died, its files could not be fetched, its outputs not sent.
	Error string `json:"error,omitempty"`
}

// Cluster report events.
const (
	ClusterSubmitted = "submitted"
	ClusterEnded     = "ended"
)

// ClusterDriverService is the server's side of a Ray-backed cluster's
// driver and of the tasks it runs. The driver calls Poll and Report with
// the compute's credential; tasks call Files, AppendLog and PutOutputs
// with their job's token, and only for their own attempt (job names the
// caller's job).
type ClusterDriverService interface {
	// Poll returns attempts for the driver to start and to cancel,
	// waiting up to wait for some. A driver that is no longer the
	// compute's current one gets ECONFLICT (it should exit).
	Poll(ctx context.Context, c *Compute, driver string, wait time.Duration) (*ClusterPoll, error)
	// Register trades a newly submitted driver's one-time code for the
	// compute's credential; a code works once (EFORBIDDEN after).
	Register(ctx context.Context, c *Compute, driver, code string) (token string, err error)
	// Report records what the driver says of an attempt. EUNAVAILABLE
	// means the server is not following the attempt yet (it restarted):
	// the driver sends it again.
	Report(ctx context.Context, c *Compute, attempt string, r *ClusterReport) error
	// Files writes the attempt's folders as a tar stream.
	Files(ctx context.Context, workspace, job, attempt string, w io.Writer) error
	// AppendLog appends data to the attempt's log if offset is where the
	// log's cluster part ends, and returns where it ends after.
	AppendLog(ctx context.Context, workspace, job, attempt string, offset int64, data io.Reader) (int64, error)
	// PutOutputs unpacks the attempt's outputs from a tar stream.
	PutOutputs(ctx context.Context, workspace, job, attempt string, r io.Reader) error
	// StopDriver stops the compute's driver job, whose tasks end with
	// it: the compute is being deleted.
	StopDriver(ctx context.Context, c *Compute) error
	// OpenExecutable opens the server's own executable for a node to
	// fetch, and describes it; the caller closes it.
	OpenExecutable() (io.ReadSeekCloser, *ClusterExecutable, error)
}

// ClusterRun is one attempt for a cluster executor to run, or to follow
// when a previous server started it.
type ClusterRun struct {
	Assignment ClusterAssignment
	// LogPath is the attempt's log on the server, which the task's
	// output is appended to.
	LogPath string
	// Follow, when set, is the attempt as a previous server recorded it:
	// it is not handed out again unless no driver ever started it.
	Follow *ClusterAttempt
	// Stopping reports whether the server is stopping: a cancelled run
	// is then left running on the cluster for the next server to follow.
	Stopping func() bool
}
