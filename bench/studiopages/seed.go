package main

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/sqlite"
)

// seeded is what the seeder made, for the measurement to address.
type seeded struct {
	Workspace    string  `json:"workspace"`
	ExperimentID string  `json:"experiment_id"`
	LongRun      string  `json:"long_run"`
	ShortRun     string  `json:"short_run"`
	Pipeline     string  `json:"pipeline"`
	Runs         int     `json:"runs"`
	Jobs         int     `json:"jobs"`
	Points       int     `json:"points"`
	SeedSeconds  float64 `json:"seed_seconds"`
}

// lossAt is the long history's value at a step: a decaying curve with
// noise, and one spike, so that a chart that drops extremes shows it.
func lossAt(step int) float64 {
	v := 2*math.Exp(-float64(step)/200000) + 0.05*unit(uint64(step))
	if step == 777777 {
		v = 9
	}
	return v
}

// seed fills the workspace through the store's own API: runs runs with a
// param and two metrics each, one run with a points-long history of
// "loss" (and a 1,000-point one for comparison), and jobs jobs, one of
// them a three-step pipeline.
func seed(ctx context.Context, dbPath, workspace string, runs, jobs, points int) (*seeded, error) {
	start := time.Now()
	db, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if _, err := db.FindWorkspace(ctx, workspace); err != nil {
		return nil, fmt.Errorf("workspace %s: %w", workspace, err)
	}
	exp := &wharf.Experiment{Workspace: workspace, Name: "studio-bench"}
	if err := db.CreateExperiment(ctx, exp); err != nil {
		return nil, err
	}
	out := &seeded{Workspace: workspace, ExperimentID: exp.ID, Runs: runs, Jobs: jobs, Points: points}
	t0 := time.Now().UnixMilli() - int64(runs)*1000
	for i := range runs {
		r := &wharf.Run{Workspace: workspace, ExperimentID: exp.ID, Name: "run-" + strconv.Itoa(i), StartTime: t0 + int64(i)*1000,
			Status: "FINISHED", EndTime: t0 + int64(i)*1000 + 900}
		if err := db.CreateRun(ctx, r); err != nil {
			return nil, err
		}
		ts := r.StartTime + 500
		ms := []*wharf.Metric{{Key: "rmse", Value: unit(uint64(i)), Timestamp: ts}, {Key: "r2", Value: 1 - unit(uint64(i)+7), Timestamp: ts}}
		ps := []*wharf.Param{{Key: "alpha", Value: []string{"0.01", "0.1", "1"}[i%3]}, {Key: "solver", Value: []string{"cholesky", "qr"}[i%2]}}
		if err := db.LogBatch(ctx, workspace, r.ID, ms, ps, nil); err != nil {
			return nil, err
		}
		if i == runs-1 {
			out.ShortRun = r.ID
		}
	}
	long := &wharf.Run{Workspace: workspace, ExperimentID: exp.ID, Name: "long-history", StartTime: time.Now().UnixMilli(), Status: "RUNNING"}
	if err := db.CreateRun(ctx, long); err != nil {
		return nil, err
	}
	out.LongRun = long.ID
	const batch = 1000 // MLflow's limit on metrics per log-batch
	ms := make([]*wharf.Metric, 0, batch)
	for step := range points {
		ms = append(ms, &wharf.Metric{Key: "loss", Value: lossAt(step), Step: int64(step), Timestamp: long.StartTime + int64(step)})
		if len(ms) == batch || step == points-1 {
			if err := db.LogBatch(ctx, workspace, long.ID, ms, nil, nil); err != nil {
				return nil, err
			}
			ms = ms[:0]
		}
	}
	// The short run gets a 1,000-point history of the same metric.
	for step := range 1000 {
		ms = append(ms, &wharf.Metric{Key: "loss", Value: lossAt(step * 1000), Step: int64(step), Timestamp: t0 + int64(step)})
	}
	if err := db.LogBatch(ctx, workspace, out.ShortRun, ms, nil, nil); err != nil {
		return nil, err
	}
	var js []*wharf.Job
	statuses := []string{wharf.JobCompleted, wharf.JobCompleted, wharf.JobCompleted, wharf.JobFailed, wharf.JobCanceled}
	for i := range jobs {
		js = append(js, &wharf.Job{Workspace: workspace, Name: fmt.Sprintf("bench_job_%05d", i), Type: wharf.JobTypeCommand,
			Status: statuses[i%len(statuses)], ExperimentName: []string{"taxi", "iris", "studio-bench"}[i%3],
			Compute: []string{"cpu-cluster", "gpu-cluster"}[i%2], SubmittedBy: "bench"})
		if len(js) == 500 || i == jobs-1 {
			if err := db.CreateJobs(ctx, js); err != nil {
				return nil, err
			}
			js = js[:0]
		}
	}
	out.Pipeline = "bench_pipeline"
	pipe := []*wharf.Job{{Workspace: workspace, Name: out.Pipeline, Type: wharf.JobTypePipeline, Status: wharf.JobCompleted, ExperimentName: "taxi", SubmittedBy: "bench"}}
	for _, st := range []string{"prep", "train", "score"} {
		pipe = append(pipe, &wharf.Job{Workspace: workspace, Name: out.Pipeline + "_" + st, Parent: out.Pipeline, Step: st,
			Type: wharf.JobTypeCommand, Status: wharf.JobCompleted})
	}
	if err := db.CreateJobs(ctx, pipe); err != nil {
		return nil, err
	}
	out.SeedSeconds = time.Since(start).Seconds()
	return out, nil
}

func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// unit is a deterministic number in [0, 1) for x.
func unit(x uint64) float64 { return float64(mix64(x+1)>>11) / (1 << 53) }
