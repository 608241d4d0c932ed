package scheduler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wharfml/wharf/pyenv"
	"github.com/wharfml/wharf/pyworker"
	"github.com/wharfml/wharf/scoring"
	"github.com/wharfml/wharf/snapshot"
)

// warmZygote is a zygote the scheduler started and the models it has been
// warmed with (their folders, by snapshot digest).
type warmZygote struct {
	z      *pyworker.Zygote
	models map[string]string
}

// Warm prepares, in the background, what a step of the workspace running
// spec needs to start at once: its Python environment is built, and when
// the step's input named model is an MLflow model served by Python, a
// zygote for the step's interpreter and environment is started (or
// reused) and warmed with it. The step's workers are then forked from the
// zygote instead of importing mlflow and the model's libraries, which
// takes seconds.
//
// Nothing depends on it: a step that finds no zygote starts its workers
// itself. The channel gets the outcome once everything is ready (failures
// are logged too) and is then closed. Without WarmDir, or before Start, it
// does nothing and the channel is closed at once.
func (s *Scheduler) Warm(workspace string, spec StepSpec, model string) <-chan WarmResult {
	done := make(chan WarmResult, 1)
	if s.WarmDir == "" || s.ctx == nil {
		close(done)
		return done
	}
	ready := make(chan struct{})
	key := workspace + "/" + spec.Component
	s.warmingMu.Lock()
	if s.warming == nil {
		s.warming = map[string]chan struct{}{}
	}
	s.warming[key] = ready
	s.warmingMu.Unlock()
	go func() {
		defer close(done)
		defer func() {
			s.warmingMu.Lock()
			if s.warming[key] == ready {
				delete(s.warming, key)
			}
			s.warmingMu.Unlock()
			close(ready)
		}()
		warmed, err := s.warm(s.ctx, workspace, &spec, model)
		if err != nil && s.ctx.Err() == nil {
			s.Logger.Warn("warming a Python process failed; jobs start theirs afresh", "component", spec.Component, "err", err)
		}
		done <- WarmResult{Warmed: warmed, Err: err}
	}()
	return done
}

// awaitWarm waits while Warm is preparing for a workspace's component, as
// when a job is submitted right after its deployment was created or the
// server started: the warming does what the step would do itself
// (building the environment, importing the libraries) and began earlier.
// It reports whether it waited.
func (s *Scheduler) awaitWarm(ctx context.Context, workspace, component string) bool {
	s.warmingMu.Lock()
	ready := s.warming[workspace+"/"+component]
	s.warmingMu.Unlock()
	if ready == nil {
		return false
	}
	select {
	case <-ready:
	case <-ctx.Done():
	}
	return true
}

// WarmResult is the outcome of Warm.
type WarmResult struct {
	// Warmed is true when a zygote is ready for the step; false with a
	// nil Err when the step needs none (its model is scored in Go).
	Warmed bool
	Err    error
}

func (s *Scheduler) warm(ctx context.Context, workspace string, spec *StepSpec, model string) (bool, error) {
	in, ok := spec.Inputs[model]
	if !ok || in.Digest == "" || in.Kind != KindFolder {
		return false, fmt.Errorf("input %q is not a model folder", model)
	}
	dir, err := s.warmModelDir(ctx, in.Digest)
	if err != nil {
		return false, err
	}
	if _, mm, err := scoring.FindMLmodel(dir); err != nil || !mm.ServedByPython() {
		return false, nil
	}
	var env *pyenv.Env
	if s.Envs != nil {
		env, err = s.Envs.Ensure(ctx, pyenv.Spec{PythonVersion: spec.Environment.PythonVersion,
			Pip: spec.Environment.Pip, Conda: spec.Environment.Conda}, io.Discard)
		if err != nil {
			return false, fmt.Errorf("preparing environment %s: %w", envName(spec.Environment), err)
		}
	}
	// What the step's process will have, less what is read only later
	// (tracking, job names): the zygote's key depends on the rest.
	vars := environ(baseVars(env), spec)

	zcfg := pyworker.ZygoteConfig{Env: vars, Dir: s.WarmDir, Log: &zygoteLog{s: s}}
	if s.Sandbox != nil {
		if zcfg, err = s.sandboxedZygote(zcfg, workspace, spec.Component, env); err != nil {
			return false, err
		}
	}
	sock, err := zcfg.Socket()
	if err != nil {
		return false, err
	}

	z, err := s.zygoteFor(sock, zcfg, in.Digest, dir)
	if err != nil {
		return false, err
	}
	if err := waitReady(ctx, z.z); err != nil {
		return false, err
	}
	s.warmMu.Lock()
	defer s.warmMu.Unlock()
	// A zygote that was running already loads the model now; one started
	// with it answers whether it loaded, so that a model its environment
	// cannot load (a *pyworker.LoadError) is told now, not by every job.
	if err := z.z.Warm(ctx, dir); err != nil {
		return false, err
	}
	z.models[in.Digest] = dir
	return true, nil
}

// zygoteFor returns the running zygote for sock, or starts one warmed with
// the model in dir (and those of a predecessor that died).
func (s *Scheduler) zygoteFor(sock string, zcfg pyworker.ZygoteConfig, digest, dir string) (*warmZygote, error) {
	s.warmMu.Lock()
	defer s.warmMu.Unlock()
	if s.zygotes == nil {
		s.zygotes = map[string]*warmZygote{}
	}
	if wz := s.zygotes[sock]; wz != nil && !exited(wz.z) {
		if zcfg.Sandbox == nil || wz.models[digest] != "" {
			return wz, nil
		}
		// A sandboxed zygote sees only the models it was started with:
		// it is replaced by one that has the new model too.
		wz.z.Close()
	}
	models := map[string]string{digest: dir}
	if old := s.zygotes[sock]; old != nil {
		for d, m := range old.models {
			models[d] = m
		}
	}
	for _, m := range models {
		zcfg.WarmModels = append(zcfg.WarmModels, m)
	}
	z, err := pyworker.StartZygote(zcfg)
	if err != nil {
		return nil, err
	}
	wz := &warmZygote{z: z, models: models}
	s.zygotes[sock] = wz
	s.Logger.Info("warming a Python process for batch jobs", "socket", sock)
	return wz, nil
}

// warmModels is where warmModelDir puts models: in the work folder, not in
// WarmDir (which is in /tmp, for short socket paths), and with a name no
// workspace can have. Start empties it.
func (s *Scheduler) warmModels() string { return filepath.Join(s.WorkDir, ".warm-models") }

// warmModelDir materializes a model snapshot once, under warmModels.
func (s *Scheduler) warmModelDir(ctx context.Context, digest string) (string, error) {
	dir := filepath.Join(s.warmModels(), strings.TrimPrefix(digest, "sha256:"))
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	// A folder of its own: deployments of the same model warm at once.
	if err := os.MkdirAll(s.warmModels(), 0o700); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(s.warmModels(), "tmp-")
	if err != nil {
		return "", err
	}
	if err := snapshot.Materialize(ctx, digest, s.Blobs, tmp); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another warming put it there first.
		os.RemoveAll(tmp)
		if _, serr := os.Stat(dir); serr != nil {
			return "", err
		}
	}
	return dir, nil
}

func exited(z *pyworker.Zygote) bool {
	select {
	case <-z.Exited():
		return true
	default:
		return false
	}
}

// waitReady waits until z takes requests.
func waitReady(ctx context.Context, z *pyworker.Zygote) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !z.Ready() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-z.Exited():
			return errors.New("the warm process exited")
		case <-t.C:
		}
	}
	return nil
}

// StopWarm kills the zygotes Warm started and takes down the share through
// which sandboxed ones see their jobs.
func (s *Scheduler) StopWarm() {
	s.warmMu.Lock()
	defer s.warmMu.Unlock()
	for _, wz := range s.zygotes {
		wz.z.Close()
	}
	s.zygotes = nil
	if s.warmShare != nil {
		if err := s.warmShare.Close(); err != nil {
			s.Logger.Warn("taking down the warm processes' share failed", "dir", s.warmShare.Dir, "err", err)
		}
		s.warmShare = nil
	}
}

// zygoteLog sends a zygote's output to the scheduler's log, a line at a
// time.
type zygoteLog struct {
	s    *Scheduler
	part []byte
}

func (l *zygoteLog) Write(p []byte) (int, error) {
	l.part = append(l.part, p...)
	for {
		i := bytes.IndexByte(l.part, '\n')
		if i < 0 {
			break
		}
		l.s.Logger.Info("warm Python process", "line", string(l.part[:i]))
		l.part = l.part[i+1:]
	}
	return len(p), nil
}
