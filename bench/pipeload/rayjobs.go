package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/wharfml/wharf/bench/internal/loadstat"
	"github.com/wharfml/wharf/ray"
)

// rayJobsRep is one repetition of a flow run as one Ray job per step, in
// milliseconds.
type rayJobsRep struct {
	Tool   string  `json:"tool"`
	Flow   string  `json:"flow"`
	Rep    int     `json:"rep"`
	WallMS float64 `json:"wall_ms"`
	Jobs   int     `json:"jobs"`
	// JobMS: each job from its submission to this program seeing it end.
	JobMS []float64 `json:"job_ms"`
}

// rayJobs submits jobs to one Ray cluster's Jobs API.
type rayJobs struct {
	client     *ray.Client
	entrypoint string
}

func runRayJobs(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("rayjobs", flag.ContinueOnError)
	address := fs.String("address", "", "the Ray dashboard, http://HOST:PORT")
	flow := fs.String("flow", "", "chain or fanout")
	steps := fs.Int("steps", 4, "chain: its length; fanout: the branches between the first and the last job")
	slots := fs.Int("slots", 16, "fanout: branch jobs submitted and not yet ended, at most")
	reps := fs.Int("reps", 3, "measured repetitions")
	warmup := fs.Int("warmup", 0, "unmeasured repetitions before the measured ones")
	entrypoint := fs.String("entrypoint", "true", "each job's shell command")
	raw := fs.String("raw", "", "append one JSON line per repetition to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *address == "" || *reps < 1 || *steps < 1 || *slots < 1 || (*flow != "chain" && *flow != "fanout") {
		return errors.New("-address, -flow chain|fanout, -steps >= 1, -slots >= 1 and -reps >= 1 are required")
	}
	rf, closeRaw, err := openRaw(*raw)
	if err != nil {
		return err
	}
	defer closeRaw()
	r := &rayJobs{entrypoint: *entrypoint, client: &ray.Client{Address: strings.TrimRight(*address, "/"),
		HTTP: &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: *slots + 2}}}}
	var got []*rayJobsRep
	for i := -*warmup; i < *reps; i++ {
		rep := &rayJobsRep{Tool: "rayjobs", Flow: *flow, Rep: i + 1}
		var mu sync.Mutex
		one := func() error {
			d, err := r.run(ctx)
			mu.Lock()
			rep.JobMS = append(rep.JobMS, loadstat.Ms(d))
			mu.Unlock()
			return err
		}
		t0 := time.Now()
		if *flow == "chain" {
			for range *steps {
				if err = one(); err != nil {
					break
				}
			}
		} else {
			err = r.fanout(ctx, *steps, *slots, one)
		}
		if err != nil {
			return err
		}
		rep.WallMS, rep.Jobs = loadstat.Ms(time.Since(t0)), len(rep.JobMS)
		if i < 0 {
			continue
		}
		got = append(got, rep)
		b, _ := json.Marshal(rep)
		fmt.Fprintf(rf, "%s\n", b)
		fmt.Fprintf(os.Stderr, "    rayjobs %s rep %d: %.1f ms (%d jobs)\n", *flow, i+1, rep.WallMS, rep.Jobs)
	}
	s := &summary{Tool: "rayjobs", Flow: *flow, Mode: "fresh", Reps: len(got)}
	var wall, job []float64
	for _, rep := range got {
		s.Steps = rep.Jobs
		wall = append(wall, rep.WallMS)
		job = append(job, rep.JobMS...)
	}
	s.WallMS, s.WallMinMS, s.WallMaxMS = median(wall), quantile(wall, 0), quantile(wall, 1)
	s.TaskP50MS, s.TaskP95MS = quantile(job, 0.5), quantile(job, 0.95)
	b, _ := json.Marshal(s)
	fmt.Printf("%s\n", b)
	return nil
}

// fanout runs one job, then width jobs with at most slots in flight, then
// one job: the shape of a fan-out and its join.
func (r *rayJobs) fanout(ctx context.Context, width, slots int, one func() error) error {
	if err := one(); err != nil {
		return err
	}
	sem := make(chan struct{}, slots)
	errs := make(chan error, width)
	var wg sync.WaitGroup
	for range width {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := one(); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return one()
}

// run submits one job and waits for it to end; it fails unless the job
// SUCCEEDED.
func (r *rayJobs) run(ctx context.Context) (time.Duration, error) {
	t0 := time.Now()
	id, err := r.client.Submit(ctx, &ray.JobRequest{Entrypoint: r.entrypoint})
	if err != nil {
		return 0, err
	}
	for {
		job, err := r.client.Job(ctx, id)
		if err != nil {
			return 0, err
		}
		if ray.Terminal(job.Status) {
			if job.Status != ray.StatusSucceeded {
				return 0, fmt.Errorf("ray job %s: %s: %s", id, job.Status, job.Message)
			}
			return time.Since(t0), nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
