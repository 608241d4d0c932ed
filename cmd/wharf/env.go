package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wharfml/wharf/pyenv"
	"github.com/wharfml/wharf/sandbox"
)

// builtEnv is what `wharf env build` prints: the variables that put a
// step in the environment, as local compute sets them. All are empty for
// a spec that asks for nothing on a node without Python.
type builtEnv struct {
	// Path goes before the PATH the step would otherwise have.
	Path          string `json:"path"`
	VirtualEnv    string `json:"virtual_env"`
	Python        string `json:"python"`
	PythonVersion string `json:"python_version"`
	// Error says why the environment could not be built.
	Error string `json:"error,omitempty"`
}

// envCommand builds a step's Python environment on a Ray node with the
// builder local compute uses (the driver runs it there), its commands in a
// sandbox as the node's steps run, unless the compute's steps run
// unsandboxed.
func (a *app) envCommand() *cobra.Command {
	env := &cobra.Command{Use: "env", Short: "Python environments of steps", Hidden: true}
	var specFile, cacheDir, overlay string
	var host hostPythonFlags
	var unsandboxed bool
	build := &cobra.Command{
		Use:   "build",
		Short: "Build (or find cached) the environment of --spec-file, layer a step's overlay on it, and print its variables",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var spec pyenv.Spec
			raw, err := os.ReadFile(specFile)
			if err == nil {
				err = json.Unmarshal(raw, &spec)
			}
			if err != nil {
				return usagef("--spec-file %s: %v", specFile, err)
			}
			if err := host.know(); err != nil {
				return err
			}
			b := &pyenv.Builder{CacheDir: cacheDir, HostPython: host.python}
			if !unsandboxed {
				// The node's cache holds the server's executable and
				// other steps' environments: a build sees only its own.
				b.Runner = &sandbox.Deferred{Options: sandbox.Options{Hidden: []string{filepath.Dir(filepath.Clean(cacheDir))}}}
			}
			out, err := a.buildEnv(cmd, spec, b, overlay)
			if err != nil {
				_ = a.print(&builtEnv{Error: err.Error()})
				return err
			}
			return a.print(out)
		},
	}
	f := build.Flags()
	f.StringVar(&specFile, "spec-file", "", "JSON file of the environment: python_version, pip, conda")
	f.StringVar(&cacheDir, "cache-dir", "", "folder of the node's built environments")
	f.StringVar(&overlay, "overlay", "", "folder (not existing) for the step's own layer on the environment; none when empty")
	host.addFlags(build, "Python to build with when the spec names no version (python3 on PATH when empty)")
	f.BoolVar(&unsandboxed, "unsandboxed", false, "run the build's commands as this user, outside a sandbox, as the compute's steps run")
	_ = build.MarkFlagRequired("spec-file")
	_ = build.MarkFlagRequired("cache-dir")
	env.AddCommand(build)
	return env
}

// hostPythonFlags name the Python a step's overlay without a built environment
// is made on (--host-python) and, where the caller knows them, its facts
// (--host-python-facts), which spare starting it to ask.
type hostPythonFlags struct {
	python, facts string
}

func (h *hostPythonFlags) addFlags(cmd *cobra.Command, usage string) {
	f := cmd.Flags()
	f.StringVar(&h.python, "host-python", "", usage)
	f.StringVar(&h.facts, "host-python-facts", "", `what --host-python is, as JSON: {"executable": its real path, "version": "3.11.7", "venv_site": [its virtual environment's package folders]}`)
}

// know records the facts of --host-python-facts for the process's overlays.
func (h *hostPythonFlags) know() error {
	if h.facts == "" {
		return nil
	}
	if h.python == "" {
		return usagef("--host-python-facts needs --host-python")
	}
	var in pyenv.Interpreter
	dec := json.NewDecoder(strings.NewReader(h.facts))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return usagef("--host-python-facts: %v", err)
	}
	if err := pyenv.KnowInterpreter(h.python, in); err != nil {
		return usagef("--host-python-facts: %v", err)
	}
	return nil
}

// buildEnv runs the builder, writing its log to stderr.
func (a *app) buildEnv(cmd *cobra.Command, spec pyenv.Spec, b *pyenv.Builder, overlay string) (*builtEnv, error) {
	env, err := b.Ensure(cmd.Context(), spec, a.stderr)
	if err != nil {
		return nil, err
	}
	out := &builtEnv{}
	if env != nil {
		out.PythonVersion = env.PythonVersion
	}
	if overlay != "" {
		if env, err = pyenv.Overlay(cmd.Context(), overlay, env, b.HostPython); err != nil {
			return nil, fmt.Errorf("making the step's layer on the environment: %w", err)
		}
	}
	if env != nil {
		vars := map[string]string{}
		for _, kv := range env.Environ("") {
			k, v, _ := strings.Cut(kv, "=")
			vars[k] = v
		}
		out.Path, out.VirtualEnv, out.Python = vars["PATH"], vars["VIRTUAL_ENV"], env.Python
	}
	return out, nil
}
