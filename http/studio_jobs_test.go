package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/scheduler"
)

// studioPipeline stores a running pipeline of three steps, prep → train →
// score, with train also reading prep's output directly into score.
func studioPipeline(t *testing.T, f *fixture, name string) {
	t.Helper()
	spec := func(deps ...[2]string) json.RawMessage {
		s := scheduler.StepSpec{Inputs: map[string]scheduler.InputSpec{}}
		for i, d := range deps {
			s.Inputs[fmt.Sprintf("in%d", i)] = scheduler.InputSpec{Type: "uri_folder", Step: d[0], Output: d[1]}
			s.Deps = append(s.Deps, d[0])
		}
		b, _ := json.Marshal(s)
		return b
	}
	jobs := []*wharf.Job{
		{Workspace: "ws-a", Name: name, Type: wharf.JobTypePipeline, Status: wharf.JobRunning, ExperimentName: "taxi",
			SubmittedBy: "user-owner", Document: json.RawMessage(`{"type":"pipeline"}`)},
		{Workspace: "ws-a", Name: name + "_prep", Parent: name, Step: "prep", Type: wharf.JobTypeCommand, Status: wharf.JobCompleted, Spec: spec()},
		{Workspace: "ws-a", Name: name + "_train", Parent: name, Step: "train", Type: wharf.JobTypeCommand, Status: wharf.JobRunning,
			Spec: spec([2]string{"prep", "train_data"})},
		{Workspace: "ws-a", Name: name + "_score", Parent: name, Step: "score", Type: wharf.JobTypeCommand, Status: wharf.JobNotStarted,
			Spec: spec([2]string{"train", "model"}, [2]string{"prep", "test_data"})},
	}
	if err := f.db.CreateJobs(context.Background(), jobs); err != nil {
		t.Fatal(err)
	}
}

// TestStudioJobsListFiltersAndPages checks the jobs list's filters and
// its pages, which together cover every job once.
func TestStudioJobsListFiltersAndPages(t *testing.T) {
	f, _ := userFixture(t)
	users := studioUsers(t, f)
	ctx := context.Background()
	for i := range 60 {
		j := &wharf.Job{Workspace: "ws-a", Name: fmt.Sprintf("job_%02d", i), Type: wharf.JobTypeCommand, Status: wharf.JobCompleted,
			ExperimentName: "taxi", Compute: "cpu", SubmittedBy: "user-owner"}
		if i%10 == 3 {
			j.Status, j.ExperimentName, j.Compute, j.SubmittedBy = wharf.JobFailed, "iris", "gpu", "user-datasci"
		}
		if err := f.db.CreateJobs(ctx, []*wharf.Job{j}); err != nil {
			t.Fatal(err)
		}
	}
	jobLink := regexp.MustCompile(`href="/workspaces/ws-a/jobs/(job_\d\d)"`)
	seen := map[string]bool{}
	next := "/workspaces/ws-a/jobs"
	for pages := 0; next != ""; pages++ {
		resp, page := users["reader"].do("GET", next, nil, nil)
		if resp.StatusCode != 200 || pages > 2 {
			t.Fatalf("GET %s: %d (page %d)", next, resp.StatusCode, pages)
		}
		for _, m := range jobLink.FindAllStringSubmatch(page, -1) {
			if seen[m[1]] {
				t.Errorf("%s listed twice", m[1])
			}
			seen[m[1]] = true
		}
		next = ""
		if m := regexp.MustCompile(`href="([^"]+)" rel="next"`).FindStringSubmatch(page); m != nil {
			next = strings.ReplaceAll(m[1], "&amp;", "&")
		}
	}
	if len(seen) != 60 {
		t.Errorf("the pages list %d jobs, want 60", len(seen))
	}
	for _, q := range []string{"status=Failed", "experiment=iris", "compute=gpu", "submitted_by=user-datasci", "status=Failed&compute=gpu"} {
		_, page := users["reader"].do("GET", "/workspaces/ws-a/jobs?"+q, nil, nil)
		got := jobLink.FindAllStringSubmatch(page, -1)
		if len(got) != 6 {
			t.Errorf("?%s lists %d jobs, want 6", q, len(got))
		}
		for _, m := range got {
			if m[1][5] != '3' {
				t.Errorf("?%s lists %s", q, m[1])
			}
		}
	}
	_, page := users["reader"].do("GET", "/workspaces/ws-a/jobs?experiment=iris", nil, nil)
	if !strings.Contains(page, `<option selected>iris</option>`) || !strings.Contains(page, `<option>taxi</option>`) {
		t.Error("the experiment filter does not offer the experiments, with the chosen one selected")
	}
	if resp, _ := users["reader"].do("GET", "/workspaces/ws-a/jobs?page=bogus", nil, nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a bad page token: %d, want 400", resp.StatusCode)
	}
	if resp, _ := users["outsider"].do("GET", "/workspaces/ws-a/jobs", nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("outsider: %d, want 403", resp.StatusCode)
	}
}

// TestStudioPipelineGraph checks the pipeline page's graph: a node per
// step coloured by its status, an edge per binding, and the JSON the page
// polls following the steps' states.
func TestStudioPipelineGraph(t *testing.T) {
	f, _ := userFixture(t)
	users := studioUsers(t, f)
	studioPipeline(t, f, "pipe")
	resp, page := users["reader"].do("GET", "/workspaces/ws-a/jobs/pipe", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("job page: %d\n%s", resp.StatusCode, page)
	}
	for step, class := range map[string]string{"prep": "st-completed", "train": "st-running", "score": "st-notstarted"} {
		if !regexp.MustCompile(`class="node ` + class + `" data-step="` + step + `"`).MatchString(page) {
			t.Errorf("graph has no %s node for %s", class, step)
		}
	}
	if n := strings.Count(page, `<path class="edge"`); n != 3 {
		t.Errorf("graph has %d edges, want 3 (prep→train, train→score, prep→score)", n)
	}
	if !strings.Contains(page, `src="/static/job.js?v=`) {
		t.Error("job page does not load its script")
	}

	graph := func() (out struct {
		Status   string
		Terminal bool
		Steps    []struct{ Step, Status string }
		Edges    []struct{ From, To string }
	}) {
		resp, body := users["reader"].do("GET", "/workspaces/ws-a/jobs/pipe/graph", nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("graph: %d %s", resp.StatusCode, body)
		}
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	g := graph()
	if g.Status != wharf.JobRunning || g.Terminal || len(g.Steps) != 3 || len(g.Edges) != 3 || g.Steps[1].Status != wharf.JobRunning {
		t.Errorf("graph while running: %+v", g)
	}
	ctx := context.Background()
	for _, name := range []string{"pipe_train", "pipe_score", "pipe"} {
		if _, err := f.db.UpdateJob(ctx, "ws-a", name, func(j *wharf.Job) error { j.Status = wharf.JobCompleted; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	g = graph()
	if !g.Terminal || g.Status != wharf.JobCompleted {
		t.Errorf("graph after the end: %+v", g)
	}
	for _, st := range g.Steps {
		if st.Status != wharf.JobCompleted {
			t.Errorf("step %s is %s in the graph, want Completed", st.Step, st.Status)
		}
	}
	// A step's address shows its pipeline with the step selected.
	resp, _ = users["reader"].do("GET", "/workspaces/ws-a/jobs/pipe_train", nil, nil)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/workspaces/ws-a/jobs/pipe?step=pipe_train" {
		t.Errorf("step page: %d to %q", resp.StatusCode, loc)
	}
	_, page = users["reader"].do("GET", "/workspaces/ws-a/jobs/pipe?step=pipe_train", nil, nil)
	if !strings.Contains(page, "Step train") {
		t.Error("the selected step's details are not shown")
	}
}

// TestStudioCancelByRole checks that Cancel is offered and accepted only
// where the role allows: a Reader sees no button and is refused on POST,
// and the job is left running; an Owner cancels it.
func TestStudioCancelByRole(t *testing.T) {
	f, _ := userFixture(t)
	f.srv.Scheduler = &scheduler.Scheduler{Store: f.db, WorkDir: t.TempDir()}
	users := studioUsers(t, f)
	studioPipeline(t, f, "pipe")
	ctx := context.Background()

	_, page := users["reader"].do("GET", "/workspaces/ws-a/jobs/pipe", nil, nil)
	if strings.Contains(page, "/cancel") || strings.Contains(page, ">Cancel<") || strings.Contains(page, "Rerun") {
		t.Error("a Reader is shown Cancel or Rerun")
	}
	// The form as an Owner's page has it, posted by a Reader.
	resp, _ := users["reader"].postForm("/workspaces/ws-a/jobs/pipe/cancel", url.Values{"csrf_token": {formToken(t, page)}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("Reader's cancel: %d, want 403", resp.StatusCode)
	}
	if j, _ := f.db.FindJob(ctx, "ws-a", "pipe"); j.Status != wharf.JobRunning {
		t.Errorf("after a refused cancel the job is %s", j.Status)
	}

	_, page = users["owner"].do("GET", "/workspaces/ws-a/jobs/pipe", nil, nil)
	if !strings.Contains(page, `action="/workspaces/ws-a/jobs/pipe/cancel"`) {
		t.Fatal("an Owner is not shown Cancel")
	}
	// Without the session's CSRF token the post is refused.
	if resp, _ := users["owner"].postForm("/workspaces/ws-a/jobs/pipe/cancel", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cancel without a CSRF token: %d, want 403", resp.StatusCode)
	}
	resp, _ = users["owner"].postForm("/workspaces/ws-a/jobs/pipe/cancel", url.Values{"csrf_token": {formToken(t, page)}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/workspaces/ws-a/jobs/pipe" {
		t.Errorf("Owner's cancel: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if j, _ := f.db.FindJob(ctx, "ws-a", "pipe"); j.Status != wharf.JobCancelRequested {
		t.Errorf("after the Owner's cancel the job is %s", j.Status)
	}
	// Rerun from failed: offered to a Data Scientist once the pipeline
	// failed, never to a Reader, who is refused on POST.
	if _, err := f.db.UpdateJob(ctx, "ws-a", "pipe", func(j *wharf.Job) error { j.Status = wharf.JobFailed; return nil }); err != nil {
		t.Fatal(err)
	}
	_, page = users["datasci"].do("GET", "/workspaces/ws-a/jobs/pipe", nil, nil)
	if !strings.Contains(page, "Rerun from failed") || strings.Contains(page, ">Cancel<") {
		t.Error("a Data Scientist is not shown Rerun from failed on a failed pipeline, or is shown Cancel")
	}
	_, page = users["reader"].do("GET", "/workspaces/ws-a/jobs/pipe", nil, nil)
	if strings.Contains(page, "Rerun") {
		t.Error("a Reader is shown Rerun")
	}
	resp, _ = users["reader"].postForm("/workspaces/ws-a/jobs/pipe/rerun", url.Values{"csrf_token": {formToken(t, page)}, "from_failed": {"true"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("Reader's rerun: %d, want 403", resp.StatusCode)
	}
}
