// Package testneed lets a test say that a prerequisite is missing: it is
// skipped on a developer machine and fails under CI, whose machines have
// every prerequisite (a test CI skips would pass without checking
// anything).
package testneed

import (
	"fmt"
	"os"
	"testing"
)

// Missing skips t, or fails it when the CI environment variable is set.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Env returns the environment variable name, the path of a prerequisite
// the suite installs; without it t is skipped, or fails under CI, with
// missing saying how to get it.
func Env(t testing.TB, name, missing string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		Missing(t, "%s not set; %s", name, missing)
	}
	return v
}
