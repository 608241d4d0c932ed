package main

import (
	"fmt"
	"os"
	"testing"
)

// missing skips a test whose prerequisite this machine lacks, and fails
// it under CI, whose machines have every prerequisite: a test CI skips
// would pass there without checking anything.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
