package mlflowsearch

import "testing"

func TestMatchLike(t *testing.T) {
	tests := []struct {
		pattern, s string
		ci, want   bool
	}{
		{"abc", "abc", false, true},
		{"abc", "abcd", false, false},
		{"abc", "ABC", false, false},
		{"abc", "ABC", true, true},
		{"%", "", false, true},
		{"%", "anything", false, true},
		{"a%", "abc", false, true},
		{"a%", "ba", false, false},
		{"%c", "abc", false, true},
		{"%b%", "abc", false, true},
		{"%b%", "ac", false, false},
		{"a%b%c", "aXXbYYc", false, true},
		{"a%b%c", "aXXcYYb", false, false},
		{"%%a%%", "xay", false, true},
		{"_", "a", false, true},
		{"_", "", false, false},
		{"_", "ab", false, false},
		{"a_c", "abc", false, true},
		{"a_c", "ac", false, false},
		{"_é_", "aéb", false, true}, // '_' is one character, not one byte
		{"%ÉT%", "été", true, true},
		{"STRASSE", "strasse", true, true},
		{"%mnist%", "MNIST-v2", true, true},
		{"%mnist%", "MNIST-v2", false, false},
		// Regexp metacharacters are literal.
		{"a.c", "abc", false, false},
		{"a.c", "a.c", false, true},
		{"a*", "aaa", false, false},
		{"a*", "a*", false, true},
		{"(x)[y]+?$^|\\", "(x)[y]+?$^|\\", false, true},
		{"^a$", "a", false, false},
		{`\%`, `\anything`, false, true}, // no escape character
		{"a%", "a\nb", false, true},
	}
	for _, tt := range tests {
		if got := MatchLike(tt.pattern, tt.s, tt.ci); got != tt.want {
			t.Errorf("MatchLike(%q, %q, %v) = %v, want %v", tt.pattern, tt.s, tt.ci, got, tt.want)
		}
		if got := LikeToRegexp(tt.pattern, tt.ci).MatchString(tt.s); got != tt.want {
			t.Errorf("LikeToRegexp(%q, %v).MatchString(%q) = %v, want %v", tt.pattern, tt.ci, tt.s, got, tt.want)
		}
	}
}

func TestMatchLikeNoBlowup(t *testing.T) {
	// A pathological pattern for naive backtracking must still finish fast.
	p := ""
	s := ""
	for i := 0; i < 200; i++ {
		p += "%a"
		s += "a"
	}
	if MatchLike(p+"b", s, false) {
		t.Fatal("unexpected match")
	}
}
