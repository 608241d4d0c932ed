package scheduler

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/sqlite"
)

// Finalizing is written only when saving the outputs outlasts the delay,
// and never after the attempt's last write.
func TestFinalizingIsWrittenOnlyWhenSavingLasts(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "wharf.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.PutWorkspace(t.Context(), &wharf.Workspace{Name: "ws"}); err != nil {
		t.Fatal(err)
	}
	s := &Scheduler{Store: db, Now: time.Now}
	running := func(name string) *wharf.Job {
		j := &wharf.Job{Workspace: "ws", Name: name, Type: wharf.JobTypeCommand, Status: wharf.JobRunning,
			Attempts: []wharf.JobAttempt{{Number: 1, Status: wharf.JobRunning, Started: time.Now()}}}
		if err := db.CreateJobs(t.Context(), []*wharf.Job{j}); err != nil {
			t.Fatal(err)
		}
		return j
	}
	status := func(name string) string {
		j, err := db.FindJob(t.Context(), "ws", name)
		if err != nil {
			t.Fatal(err)
		}
		return j.Status
	}

	quick := running("quick")
	s.finalizing(t.Context(), quick, 1)()
	if got := status("quick"); got != wharf.JobRunning {
		t.Errorf("outputs saved at once: the step is %s, want still Running", got)
	}

	slow := running("slow")
	done := s.finalizing(t.Context(), slow, 1)
	for status("slow") != wharf.JobFinalizing {
		time.Sleep(10 * time.Millisecond)
	}
	done()
	if j, _ := db.FindJob(t.Context(), "ws", "slow"); j.Attempts[0].Status != wharf.JobFinalizing {
		t.Errorf("attempt %s, want Finalizing", j.Attempts[0].Status)
	}
}
