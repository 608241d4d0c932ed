package main

import (
	"testing"

	"github.com/wharfml/wharf/internal/testneed"
)

// missing skips a test whose prerequisite this machine lacks, and fails
// it under CI, whose machines have every prerequisite: a test CI skips
// would pass there without checking anything.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	testneed.Missing(t, format, args...)
}
