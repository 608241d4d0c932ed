package wharf

import "os/exec"

// BuildCommand is one command of a Python environment's build: making the
// virtual environment or installing its packages. Installing a package
// published as source (an sdist, a git URL, a local folder) runs that
// package's build code (setup.py, a PEP 517 backend), which is as
// untrusted as a job's own code, so the command is started by a
// BuildRunner rather than as the server.
type BuildCommand struct {
	// Argv is the program and its arguments.
	Argv []string
	// Env is the command's complete environment.
	Env []string
	// Dir is its working directory, one of Writable.
	Dir string
	// Writable are the folders it may write: the environment being
	// built, the build's home and temporary folder, the build cache.
	Writable []string
	// ReadOnly are the files and folders it reads beyond the host's
	// system folders and its PATH: the interpreter it builds from, the
	// tool it runs, files named by requirements.
	ReadOnly []string
}

// BuildRunner starts the commands of environment builds apart from the
// server; package sandbox's Sandbox is one.
type BuildRunner interface {
	// BuildCommand returns the command that runs c, not yet started.
	BuildCommand(c BuildCommand) (*exec.Cmd, error)
	// Own hands folders to the account build commands run as, so that
	// they can write there.
	Own(paths ...string) error
	// Reclaim hands folders back to the server's account once built, so
	// that later builds and steps, which run as the build account, can
	// read but no longer change them.
	Reclaim(paths ...string) error
	// Isolation says in a few words where build commands run, for the
	// build log.
	Isolation() string
}
