package http

import (
	"context"
	"net/http"
	"sync"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/blob"
)

// A job's datastore inputs in an azure_blob or s3 container are read into
// the content store while its submission waits, so the job names the bytes
// it read. A large folder takes a while: a client that names its
// submission (?progress=<id> on the job's POST or PUT) may ask how far
// the reading is, of how much, while it waits. Only the server that
// serves the submission knows: its count lives for the request alone.

// submissionReads are the counters of the submissions being read on this
// server, by workspace and the id the client gave.
type submissionReads struct {
	sync.Map // "<workspace>/<id>" → *blob.ReadCounter
}

// track returns ctx counting into a counter of the submission id of ws, and
// the function that forgets it once the submission ends. An empty id is
// a submission no client asks after.
func (m *submissionReads) track(ctx context.Context, ws, id string) (context.Context, func(), error) {
	if id == "" {
		return ctx, func() {}, nil
	}
	if err := wharf.ValidateName("progress", id); err != nil {
		return ctx, nil, err
	}
	key := ws + "/" + id
	c := &blob.ReadCounter{}
	if _, taken := m.LoadOrStore(key, c); taken {
		return ctx, nil, wharf.Errorf(wharf.ECONFLICT, "a submission with progress id %q is already being read", id).WithField("progress")
	}
	return blob.WithReadCounter(ctx, c), func() { m.Delete(key) }, nil
}

// SubmissionProgress is how far the reading of a submission's inputs is,
// as GET /api/v1/workspaces/{workspace}/job-submissions/{id} answers it.
type SubmissionProgress struct {
	// Status is "reading inputs" while the inputs are read.
	Status string `json:"status"`
	blob.ReadCount
}

// getSubmission answers how far this server has read a submission's
// inputs; not found once the submission has ended (its job is then
// there) or where another server serves it.
func (s *Server) getSubmission(r *http.Request, _ *noBody) (int, *SubmissionProgress, error) {
	ws, id := r.PathValue("workspace"), r.PathValue("id")
	v, ok := s.reads.Load(ws + "/" + id)
	if !ok {
		return 0, nil, wharf.Errorf(wharf.ENOTFOUND, "no submission %q is reading its inputs on this server", id)
	}
	return http.StatusOK, &SubmissionProgress{Status: "reading inputs", ReadCount: v.(*blob.ReadCounter).Count()}, nil
}
