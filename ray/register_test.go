package ray

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/wharfml/wharf"
)

// TestRegisterSpendsTheCode: a driver's code buys the compute's token
// once, only for that driver and compute; a wrong code, a replay, or the
// code of another compute's driver is refused.
func TestRegisterSpendsTheCode(t *testing.T) {
	issued := 0
	e := &Executor{Token: func(workspace, compute string) (string, error) {
		issued++
		return "token-of-" + workspace + "/" + compute, nil
	}}
	code := "0123456789abcdef"
	e.codes = map[string]driverCode{"wharf-gpu-1": {digest: sha256.Sum256([]byte(code)), key: "dev/gpu"}}
	gpu := &wharf.Compute{Workspace: "dev", Name: "gpu"}
	other := &wharf.Compute{Workspace: "dev", Name: "cpu"}
	ctx := context.Background()

	refused := func(c *wharf.Compute, driver, code string) {
		t.Helper()
		if _, err := e.Register(ctx, c, driver, code); wharf.ErrorCode(err) != wharf.EFORBIDDEN {
			t.Fatalf("Register(%s, %s, %s) = %v, want EFORBIDDEN", c.Name, driver, code, err)
		}
	}
	refused(gpu, "wharf-gpu-1", "wrong")
	refused(other, "wharf-gpu-1", code)
	refused(gpu, "wharf-gpu-2", code)
	tok, err := e.Register(ctx, gpu, "wharf-gpu-1", code)
	if err != nil || tok != "token-of-dev/gpu" {
		t.Fatalf("Register = %q, %v", tok, err)
	}
	refused(gpu, "wharf-gpu-1", code)
	if issued != 1 {
		t.Fatalf("issued %d tokens, want 1", issued)
	}
}
