package sqlstore

import (
	"iter"
	"maps"
	"slices"
	"strings"
	"sync"
)

// loadChunk bounds the ids bound in one IN list, well inside both engines'
// limits on parameters per statement (SQLite 32766, PostgreSQL 65535).
const loadChunk = 1000

// sqlMarks returns n comma-separated placeholders, for an IN list.
func sqlMarks(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// rowsCache keeps the VALUES lists of multi-row inserts: batches repeat
// the same shapes, and a 1000-row list is worth building once.
var rowsCache sync.Map // [2]int{rows, cols} -> string

// sqlRows returns the VALUES list of a multi-row insert: rows groups of
// cols placeholders.
func sqlRows(rows, cols int) string {
	k := [2]int{rows, cols}
	if s, ok := rowsCache.Load(k); ok {
		return s.(string)
	}
	one := "(" + sqlMarks(cols) + ")"
	var b strings.Builder
	b.Grow(rows * (len(one) + 2))
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(one)
	}
	s := b.String()
	if rows <= loadChunk {
		rowsCache.Store(k, s)
	}
	return s
}

// sqlChunks splits s into pieces of at most n.
func sqlChunks[T any](s []T, n int) iter.Seq[[]T] {
	return func(yield func([]T) bool) {
		for len(s) > 0 {
			k := min(n, len(s))
			if !yield(s[:k:k]) {
				return
			}
			s = s[k:]
		}
	}
}

// sortedMapKeys returns the keys of m in order. Rows are written in key
// order so that concurrent PostgreSQL transactions lock them in the same
// order and cannot deadlock.
func sortedMapKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// isSQLite reports whether the store runs on SQLite, for the few
// constructs where the engines' SQL differs and the Dialect has no field
// for it: pattern matching.
func (db *DB) isSQLite() bool { return db.dialect.Name == "sqlite" }
