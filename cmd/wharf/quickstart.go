package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/infra"
)

// selfName is how the user invoked wharf, so printed commands can be pasted.
func selfName() string {
	if strings.Contains(os.Args[0], "/") {
		return os.Args[0]
	}
	return "wharf"
}

// quickstartCommand starts an embedded server, applies the example infra
// config, and keeps serving so the user can try the next commands.
func (a *app) quickstartCommand() *cobra.Command {
	var o serverOptions
	var file string
	var exit bool
	cmd := &cobra.Command{
		Use:   "quickstart",
		Short: "Start a server and set up the example workspace from examples/taxi",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, err := infra.Load(file)
			if err != nil {
				return err
			}
			m, err := startServer(ctx, o, a.stderr)
			if err != nil {
				return err
			}
			defer m.Close()
			b, err := os.ReadFile(m.OwnerFile)
			if err != nil {
				return fmt.Errorf("read the owner credential: %w", err)
			}
			var creds wharfhttp.SDKAuth
			if err := json.Unmarshal(b, &creds); err != nil {
				return fmt.Errorf("owner credential %s: %w", m.OwnerFile, err)
			}
			ts := &tokenSource{cfg: a.cfg, creds: &credentials{ClientID: creds.ClientID, ClientSecret: creds.ClientSecret, TenantID: creds.TenantID}, url: m.HTTP.URL}
			c := wharfhttp.NewClient(m.HTTP.URL, ts.token)
			fmt.Fprintf(a.stdout, "==> Applying %s\n", file)
			if _, err := a.applyInfra(ctx, c, cfg, false); err != nil {
				return err
			}
			abs, _ := filepath.Abs(m.OwnerFile)
			fmt.Fprintf(a.stdout, `
Wharf is running at %[1]s
Owner credential: %[2]s
Workspace:        %[3]s

Next, in another shell:
  export WHARF_URL=%[1]s WHARF_CREDENTIALS="$(cat %[2]s)"
  %[5]s ml workspace show -n %[3]s
  %[5]s ml compute list -w %[3]s -o table
  %[5]s infra apply --file %[4]s --dry-run
  %[5]s ad sp create-for-rbac --name ci --role "Data Scientist" --scopes /workspaces/%[3]s --sdk-auth
`, m.HTTP.URL, abs, cfg.WorkspaceName(), file, selfName())
			if exit {
				return nil
			}
			fmt.Fprintln(a.stdout, "\nPress Ctrl-C to stop the server.")
			<-ctx.Done()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", defaultDataDir(), "server data folder")
	f.StringVar(&o.addr, "addr", "127.0.0.1:8790", "listen address")
	f.StringVar(&o.db, "db", "", "metadata database (empty: SQLite)")
	f.StringVar(&o.logLevel, "log-level", "warn", "server log level")
	f.StringVarP(&file, "file", "f", "examples/taxi/config-infra-dev.yml", "infra config to apply")
	f.BoolVar(&exit, "exit", false, "stop the server when set-up is done instead of serving")
	o.tokenTTL = 3600e9
	return cmd
}
