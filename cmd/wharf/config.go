package main

import (
	"encoding/json"
	"errors"
	"github.com/wharfml/wharf/atomicfile"
	"os"
	"path/filepath"
	"sort"

	"github.com/wharfml/wharf"
)

// defaultURL is where `wharf server` listens unless told otherwise.
const defaultURL = "http://127.0.0.1:8790"

// cliConfig is the persisted CLI state: defaults set by `wharf configure`
// and the server URL. Credentials live in a separate 0600 file.
type cliConfig struct {
	URL      string            `json:"url,omitempty"`
	Defaults map[string]string `json:"defaults,omitempty"`

	dir string
}

// configDir is $WHARF_CONFIG_DIR, else ~/.wharf.
func configDir() string {
	if d := os.Getenv("WHARF_CONFIG_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".wharf"
	}
	return filepath.Join(home, ".wharf")
}

func loadCLIConfig() (*cliConfig, error) {
	dir := configDir()
	cfg := &cliConfig{dir: dir, Defaults: map[string]string{}}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	} else if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, cfg); err != nil {
		return nil, wharf.Errorf(wharf.EINVALID, "%s is not valid JSON: %s", filepath.Join(dir, "config.json"), err)
	}
	if cfg.Defaults == nil {
		cfg.Defaults = map[string]string{}
	}
	return cfg, nil
}

func (c *cliConfig) save() error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(c.dir, "config.json"), append(b, '\n'), 0o600)
}

func (c *cliConfig) defaultKeys() []string {
	keys := make([]string, 0, len(c.Defaults))
	for k := range c.Defaults {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
