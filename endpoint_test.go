package wharf_test

import (
	"testing"

	"github.com/wharfml/wharf"
)

func TestOnlineEndpointValidate(t *testing.T) {
	ok := []wharf.OnlineEndpoint{
		{Name: "ep"},
		{Name: "ep", Traffic: map[string]int{"blue": 90, "green": 10}},
		{Name: "ep", Traffic: map[string]int{"blue": 100}, MirrorTraffic: map[string]int{"green": 50}},
		{Name: "ep", AuthMode: "aml_token", Traffic: map[string]int{"blue": 0}},
	}
	for _, e := range ok {
		if err := e.Validate(); err != nil {
			t.Errorf("%+v: %v", e, err)
		}
	}
	bad := map[string]wharf.OnlineEndpoint{
		"traffic":        {Name: "ep", Traffic: map[string]int{"blue": 90}},
		"mirror_traffic": {Name: "ep", Traffic: map[string]int{"blue": 100}, MirrorTraffic: map[string]int{"green": 51}},
		"auth_mode":      {Name: "ep", AuthMode: "aad"},
		"name":           {Name: "bad name"},
	}
	for field, e := range bad {
		err := e.Validate()
		if wharf.ErrorCode(err) != wharf.EINVALID {
			t.Errorf("%s: %v", field, err)
			continue
		}
		var we *wharf.Error
		if ok := asError(err, &we); !ok || we.Field != field {
			t.Errorf("%s: error names field %q", field, we.Field)
		}
	}
	both := wharf.OnlineEndpoint{Name: "ep", Traffic: map[string]int{"blue": 100}, MirrorTraffic: map[string]int{"blue": 10}}
	if err := both.Validate(); err == nil {
		t.Error("a deployment taking live and mirrored traffic was accepted")
	}
}
