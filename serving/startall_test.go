package serving_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/serving"
	"github.com/wharfml/wharf/sqlite"
)

// countingFactory starts runtimes that answer nothing, and records which.
type countingFactory struct {
	mu      sync.Mutex
	started map[string]bool
}

func (f *countingFactory) Start(ctx context.Context, workspace string, d *wharf.OnlineDeployment) (serving.Runtime, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started[workspace+"/"+d.Endpoint+"/"+d.Name] = true
	return idleRuntime{}, nil
}

func (f *countingFactory) has(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.started[key]
}

type idleRuntime struct{}

func (idleRuntime) Score(context.Context, []byte, serving.Protocol) ([]byte, error) { return nil, nil }
func (idleRuntime) Platform() string                                                { return "idle" }
func (idleRuntime) Restarts() int                                                   { return 0 }
func (idleRuntime) Close() error                                                    { return nil }

// TestStartAllStartsEveryDeploymentBeforeAnyRequest: a server joining
// others starts every online deployment's runtime without waiting for a
// request.
func TestStartAllStartsEveryDeploymentBeforeAnyRequest(t *testing.T) {
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "wharf.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, ws := range []string{"a", "b"} {
		if _, err := db.PutWorkspace(ctx, &wharf.Workspace{Name: ws}); err != nil {
			t.Fatal(err)
		}
		ep := &wharf.OnlineEndpoint{Workspace: ws, Name: "ep", AuthMode: wharf.AuthModeAMLToken}
		if _, err := db.PutOnlineEndpoint(ctx, ep); err != nil {
			t.Fatal(err)
		}
		d := &wharf.OnlineDeployment{Workspace: ws, Endpoint: "ep", Name: "blue", Model: "m:1", Spec: json.RawMessage(`{}`), ProvisioningState: "Succeeded"}
		if _, err := db.PutOnlineDeployment(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	f := &countingFactory{started: map[string]bool{}}
	rt := serving.NewRouter(db, f, nil, nil, nil)
	defer rt.Close()
	if err := rt.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); !f.has("a/ep/blue") || !f.has("b/ep/blue"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("started %v, want both workspaces' blue", f.started)
		}
	}
}
