package mlflowsearch

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MatchLike reports whether s matches the SQL LIKE pattern: '%' matches any
// run of characters (including none) and '_' exactly one character; every
// other character, regexp metacharacters included, matches itself. There is
// no escape character, as in MLflow's file store; SQL stores should disable
// LIKE escapes too (Postgres escapes with backslash by default) to agree.
// caseInsensitive gives ILIKE semantics using Unicode simple case folding.
// Matching is over runes, so '_' consumes one character, not one byte.
func MatchLike(pattern, s string, caseInsensitive bool) bool {
	p := []rune(pattern)
	t := []rune(s)
	eq := func(a, b rune) bool {
		if a == b {
			return true
		}
		return caseInsensitive && foldEq(a, b)
	}
	// Greedy wildcard matching with backtracking to the last '%': linear in
	// practice and O(len(p)*len(t)) worst case, so hostile patterns cannot
	// blow up the way a backtracking regexp engine might.
	pi, ti := 0, 0
	star, mark := -1, 0
	for ti < len(t) {
		switch {
		case pi < len(p) && p[pi] == '%':
			star, mark = pi, ti
			pi++
		case pi < len(p) && (p[pi] == '_' || eq(p[pi], t[ti])):
			pi++
			ti++
		case star >= 0:
			pi = star + 1
			mark++
			ti = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '%' {
		pi++
	}
	return pi == len(p)
}

func foldEq(a, b rune) bool {
	for f := unicode.SimpleFold(a); f != a; f = unicode.SimpleFold(f) {
		if f == b {
			return true
		}
	}
	return false
}

// LikeToRegexp compiles a SQL LIKE pattern into an anchored regexp with the
// same semantics as MatchLike, for callers that already filter with
// regexps. Invalid UTF-8 in the pattern is matched as U+FFFD.
func LikeToRegexp(pattern string, caseInsensitive bool) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("(?s")
	if caseInsensitive {
		b.WriteString("i")
	}
	b.WriteString(")^")
	for _, r := range pattern {
		switch r {
		case '%':
			b.WriteString(".*")
		case '_':
			b.WriteString(".")
		default:
			if r == utf8.RuneError {
				b.WriteString(`\x{FFFD}`)
				continue
			}
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}
