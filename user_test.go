package wharf

import "testing"

func TestValidatePassword(t *testing.T) {
	for _, tc := range []struct {
		password, upn string
		ok            bool
	}{
		{"correct horse battery", "alice@team", true},
		{"12345678901", "alice@team", false}, // 11 characters
		{"123456789012", "alice@team", true}, // 12
		{"ééééééééééé", "alice@team", false}, // 11 characters in 22 bytes
		{"Alice.Sample@Team", "alice.sample@team", false},
		{"ALICE.SAMPLEX", "alicE.samplex@team", false}, // the name before '@'
		{string(make([]byte, 257)), "alice@team", false},
	} {
		err := ValidatePassword(tc.password, tc.upn)
		if (err == nil) != tc.ok {
			t.Errorf("ValidatePassword(%q, %q) = %v, want ok=%v", tc.password, tc.upn, err, tc.ok)
		}
		if err != nil && ErrorCode(err) != EINVALID {
			t.Errorf("code %q", ErrorCode(err))
		}
	}
}

func TestNormalizeUserPrincipalName(t *testing.T) {
	got, err := NormalizeUserPrincipalName(" Alice@Team ")
	if err != nil || got != "alice@team" {
		t.Errorf("got %q, %v", got, err)
	}
	for _, bad := range []string{"alice", "@team", "alice@", "a b@team", "a@b@c", "<a>@team"} {
		if _, err := NormalizeUserPrincipalName(bad); ErrorCode(err) != EINVALID {
			t.Errorf("%q accepted", bad)
		}
	}
}
