package scheduler

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"

	"github.com/wharfml/wharf/local"
	"github.com/wharfml/wharf/pyenv"
	"github.com/wharfml/wharf/pyworker"
	"github.com/wharfml/wharf/sandbox"
)

// Warm processes under sandboxes.
//
// A zygote loads a deployment's model, which is user code, so on a
// sandboxed server it runs in a sandbox too, as the step user. The workers
// it forks for a batch job must read that job's files at the paths the
// job's step sees, yet the zygote's sandbox was built before the job
// existed. So each deployment's zygote mounts a folder of a share
// (sandbox.Share) at its workspace's jobs folder, and while one of the
// deployment's jobs runs, the server exposes that job's folder there: the
// zygote sees exactly the running jobs of its own deployment, at their
// real paths, and nothing else of the data folder. The zygote's sockets
// and the pools' worker sockets live in a WarmDir subfolder of the
// deployment's own, which the job's sandbox mounts too. Shares need a
// root server; a sandboxed server that is not root keeps no zygotes.

// startWarmShare makes the share when the server keeps zygotes and runs
// steps sandboxed as root; without it zygotes are off.
func (s *Scheduler) startWarmShare() {
	if s.WarmDir == "" || s.Sandbox == nil || s.warmShare != nil {
		return
	}
	if !s.Sandbox.Privileged() {
		s.Logger.Info("warm Python processes are off: sandboxes of a server that is not root cannot share jobs with them")
		s.WarmDir = ""
		return
	}
	share, err := sandbox.NewShare("")
	if err != nil {
		s.Logger.Warn("warm Python processes are off", "err", err)
		s.WarmDir = ""
		return
	}
	s.warmShare = share
}

// warmScope names a deployment's zygote folders: short, for socket paths.
func warmScope(workspace, component string) string {
	h := sha256.Sum256([]byte(workspace + "/" + component))
	return hex.EncodeToString(h[:4])
}

// sandboxedZygote gives zcfg the sandbox, the folders and the share
// mount of the zygote of a workspace's component.
func (s *Scheduler) sandboxedZygote(zcfg pyworker.ZygoteConfig, workspace, component string, env *pyenv.Env) (pyworker.ZygoteConfig, error) {
	scope := warmScope(workspace, component)
	jobs := filepath.Join(s.warmShare.Dir, scope)
	if err := os.MkdirAll(jobs, 0o711); err != nil {
		return zcfg, err
	}
	// Passable, not listable, for the zygote's user: it reaches the jobs
	// exposed below by their names.
	if err := os.Chmod(jobs, 0o711); err != nil {
		return zcfg, err
	}
	zcfg.Dir = filepath.Join(s.WarmDir, scope)
	zcfg.Sandbox = s.Sandbox
	zcfg.Mounts = []sandbox.Mount{{Path: filepath.Join(s.WorkDir, workspace), Source: jobs, Writable: true}}
	if env != nil {
		zcfg.Mounts = append(zcfg.Mounts, sandbox.Mount{Path: env.Dir})
	}
	s.warmMu.Lock()
	if s.warmScopes == nil {
		s.warmScopes = map[string]string{}
	}
	s.warmScopes[workspace+"/"+component] = scope
	s.warmMu.Unlock()
	return zcfg, nil
}

// shareWithZygote, for a sandboxed step whose component has a zygote,
// exposes the step's job folder to that zygote and lets the step reach
// the zygote's sockets. The returned func withdraws the folder; it is
// called when the attempt ends.
func (s *Scheduler) shareWithZygote(task *local.Task, workspace, component, job string) (func(), error) {
	if s.warmShare == nil {
		return func() {}, nil
	}
	s.warmMu.Lock()
	scope := s.warmScopes[workspace+"/"+component]
	s.warmMu.Unlock()
	if scope == "" {
		return func() {}, nil
	}
	jobDir := s.jobDir(workspace, job)
	// The zygote's user passes through the job's folders to the ones the
	// step owns, without listing them.
	for _, d := range []string{jobDir, filepath.Dir(task.Dir)} {
		if err := os.Chmod(d, 0o711); err != nil {
			return nil, err
		}
	}
	withdraw, err := s.warmShare.Expose(jobDir, filepath.Join(scope, job))
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(s.WarmDir, scope)
	task.Env = append(task.Env, "WHARF_WARM_DIR="+dir)
	task.Mounts = append(task.Mounts, sandbox.Mount{Path: dir, Writable: true})
	return withdraw, nil
}
