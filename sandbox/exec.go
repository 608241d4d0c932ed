package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"syscall"
)

// Exec runs one process in a sandbox of its own: the Spec, as JSON, is
// read from in (so that its environment, which holds a token, is never on
// a command line), its writable mounts are handed to the sandbox user,
// and its output goes to stdout and stderr. It returns the process's exit
// status, 128+N for signal N. This is how a step on another machine (a
// Ray node) is isolated from the process that started it, with the same
// sandbox as a step on the server's.
func Exec(in io.Reader, stdout, stderr io.Writer) (int, error) {
	spec, err := ReadSpec(in)
	if err != nil {
		return 0, err
	}
	return Run(spec, stdout, stderr)
}

// ReadSpec reads a process's Spec, as JSON, from in, refusing fields it
// does not know.
func ReadSpec(in io.Reader) (Spec, error) {
	var spec Spec
	dec := json.NewDecoder(in)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return Spec{}, fmt.Errorf("sandbox: reading the process's spec (JSON) from standard input: %w", err)
	}
	return spec, nil
}

// Run runs spec's process as Exec does, once its spec is read.
func Run(spec Spec, stdout, stderr io.Writer) (int, error) {
	s, err := New(Options{})
	if err != nil {
		return 0, err
	}
	var writable []string
	for _, m := range spec.Mounts {
		if m.Writable {
			writable = append(writable, m.Path)
		}
	}
	if err := s.Own(writable...); err != nil {
		return 0, err
	}
	cmd, err := s.Command(spec)
	if err != nil {
		return 0, err
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = OwnSession()
	err = cmd.Run()
	var exited *exec.ExitError
	if errors.As(err, &exited) {
		if ws, ok := exited.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return exited.ExitCode(), nil
	}
	return 0, err
}
