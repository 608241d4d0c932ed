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
