package main

import (
	"slices"
	"testing"
	"time"
)

// The overhead figures come from this arithmetic, so it is pinned down
// here; no test measures speed.
func TestQuantile(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(100 - i) // unsorted on purpose
	}
	cases := []struct {
		in   []float64
		p    float64
		want float64
	}{
		{nil, 0.5, 0},
		{[]float64{7}, 0.95, 7},
		{hundred, 0, 1},
		{hundred, 0.50, 50},
		{hundred, 0.95, 95},
		{hundred, 1, 100},
		{[]float64{3, 1, 2, 4}, 0.5, 2},
	}
	for _, c := range cases {
		if got := quantile(c.in, c.p); got != c.want {
			t.Errorf("quantile(len %d, %v) = %v, want %v", len(c.in), c.p, got, c.want)
		}
	}
	if hundred[0] != 100 {
		t.Error("quantile sorted its argument in place")
	}
}

func TestDispatchLatencies(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(msec int) time.Time { return base.Add(time.Duration(msec) * time.Millisecond) }

	// A chain: each step starts 3 ms after the one before ended.
	chain := []dagStep{
		{Name: "s1", Started: at(0), Ended: at(10)},
		{Name: "s2", Deps: []string{"s1"}, Started: at(13), Ended: at(20)},
		{Name: "s3", Deps: []string{"s2"}, Started: at(23), Ended: at(30)},
	}
	ready, join, err := dispatchLatencies(chain, 16)
	if err != nil {
		t.Fatal(err)
	}
	if want := []time.Duration{3 * time.Millisecond, 3 * time.Millisecond}; !slices.Equal(ready, want) {
		t.Errorf("chain: ready = %v, want %v", ready, want)
	}
	if join != -1 {
		t.Errorf("chain: join = %v, want -1", join)
	}

	// A fan-out over one slot: b2 waits for b1's slot, so its latency
	// counts from b1's end (40), not from start's (10). The join counts
	// from the later branch's end.
	fan := []dagStep{
		{Name: "start", Started: at(0), Ended: at(10)},
		{Name: "b1", Deps: []string{"start"}, Started: at(12), Ended: at(40)},
		{Name: "b2", Deps: []string{"start"}, Started: at(41), Ended: at(50)},
		{Name: "join", Deps: []string{"b1", "b2"}, Started: at(55), Ended: at(60)},
	}
	ready, join, err = dispatchLatencies(fan, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := []time.Duration{2 * time.Millisecond, 1 * time.Millisecond, 5 * time.Millisecond}; !slices.Equal(ready, want) {
		t.Errorf("fan: ready = %v, want %v", ready, want)
	}
	if join != 5*time.Millisecond {
		t.Errorf("fan: join = %v, want 5ms", join)
	}

	// With two slots b2 has its own slot: it was ready when start ended.
	ready, _, err = dispatchLatencies(fan, 2)
	if err != nil {
		t.Fatal(err)
	}
	if ready[1] != 31*time.Millisecond {
		t.Errorf("fan, 2 slots: b2 ready latency = %v, want 31ms", ready[1])
	}

	bad := []dagStep{{Name: "a", Deps: []string{"missing"}, Started: at(0), Ended: at(1)}}
	if _, _, err := dispatchLatencies(bad, 1); err == nil {
		t.Error("an unknown upstream was not reported")
	}
}

func TestParseMetaflow(t *testing.T) {
	out := []byte(`Metaflow 2.19.39 executing ChainFlow for user:bench
2026-11-23 11:32:28.757 Workflow starting (run-id 17):
2026-11-23 11:32:28.788 [17/start/1 (pid 19214)] Task is starting.
2026-11-23 11:32:29.436 [17/start/1 (pid 19214)] Task finished successfully.
2026-11-23 11:32:29.446 [17/end/2 (pid 19217)] Task is starting.
2026-11-23 11:32:30.063 [17/end/2 (pid 19217)] Task finished successfully.
2026-11-23 11:32:30.065 Done!
`)
	rep, err := parseMetaflow(out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Tasks != 2 || !slices.Equal(rep.TaskMS, []float64{648, 617}) || !slices.Equal(rep.GapMS, []float64{10}) {
		t.Errorf("got tasks %d, task ms %v, gaps %v", rep.Tasks, rep.TaskMS, rep.GapMS)
	}
	if _, err := parseMetaflow(out[:len(out)-7]); err == nil {
		t.Error("a run without Done! was accepted")
	}
}

// TestMeasureWharfBeyondProcess: a chain's cost beyond its processes is the
// job's time less every process's, per step.
func TestMeasureWharfBeyondProcess(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(msec int) *time.Time { v := base.Add(time.Duration(msec) * time.Millisecond); return &v }
	step := func(name string, deps []string, start, pStart, pEnd, end int) wharfStep {
		st := wharfStep{Step: name, Status: "Completed", Attempts: []wharfAttempt{{Number: 1, Status: "Completed",
			Started: *at(start), Ended: at(end), ProcessStarted: at(pStart), ProcessEnded: at(pEnd)}}}
		st.Spec.Deps = deps
		return st
	}
	j := &wharfJob{Name: "j", Status: "Completed", CreatedAt: base, EndedAt: at(20),
		Steps: []wharfStep{step("s1", nil, 1, 2, 5, 8), step("s2", []string{"s1"}, 10, 12, 15, 18)}}
	rep, err := measureWharf(j, base, *at(30), 16, false)
	if err != nil {
		t.Fatal(err)
	}
	// 20 ms of job, 3 + 3 ms of processes, 2 steps.
	if rep.BeyondMS != 7 || !slices.Equal(rep.ProcMS, []float64{3, 3}) {
		t.Errorf("beyond %v ms, processes %v", rep.BeyondMS, rep.ProcMS)
	}
	// Without process times (an older server) there is no figure.
	for i := range j.Steps {
		j.Steps[i].Attempts[0].ProcessStarted = nil
	}
	if rep, err = measureWharf(j, base, *at(30), 16, false); err != nil || rep.BeyondMS != 0 {
		t.Errorf("without process times: beyond %v, %v", rep.BeyondMS, err)
	}
}
