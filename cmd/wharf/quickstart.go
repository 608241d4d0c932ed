package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

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

// quickstartCommand runs the taxi example end to end: a server (embedded
// or --url), the infra config, generated data, the training pipeline, an
// online and a batch endpoint. Every step is an ordinary `wharf ml`
// command, the same a CI script runs, so the output shows what to type.
func (a *app) quickstartCommand() *cobra.Command {
	var o serverOptions
	var q quickstart
	var exit bool
	cmd := &cobra.Command{
		Use:   "quickstart",
		Short: "Run the taxi example end to end: infra, data, training pipeline, online and batch endpoints",
		Long: `Starts a server (or uses --url with $WHARF_CREDENTIALS), applies
examples/taxi/config-infra-dev.yml, generates --rows taxi trips, runs the
training pipeline (prep, train, evaluate, register), deploys the registered
model to the online endpoint taxi-online (deployment blue, 100% traffic) and
invokes it, then scores the batch file on the batch endpoint taxi-batch.
Last, it sends the online deployment normal and then drifted traffic (see
generate taxi --drift) and runs the model monitor
mlops/azureml/monitor/monitor.yml once: its data drift breaches on the
shifted features.

Re-runnable: a second run reuses the pipeline's unchanged steps, registers
a model only when it is at least as good as every registered version, and
updates the endpoints only when a new version was registered.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			start := time.Now()
			cfg, err := infra.Load(filepath.Join(q.example, "config-infra-dev.yml"))
			if err != nil {
				return err
			}
			q.a, q.ws = a, cfg.WorkspaceName()
			var url, credFile, userFile string
			if q.url != "" {
				url = q.url
				if os.Getenv("WHARF_CREDENTIALS") == "" {
					return usagef("--url needs the credentials in $WHARF_CREDENTIALS (the JSON of %s ad sp create-for-rbac --sdk-auth)", selfName())
				}
			} else {
				m, err := startServer(ctx, o, a.stderr)
				if err != nil {
					return err
				}
				defer m.Close()
				url, credFile, userFile = m.HTTP.URL, m.OwnerFile, m.OwnerUserFile
				b, err := os.ReadFile(m.OwnerFile)
				if err != nil {
					return fmt.Errorf("read the owner credential: %w", err)
				}
				os.Setenv("WHARF_CREDENTIALS", string(b))
			}
			os.Setenv("WHARF_URL", url)
			os.Setenv("WHARF_CLIENT_ID", "")
			// Which principal every step acts as, so that a refusal
			// further on can be read against its roles; never the secret.
			creds, _, err := resolveCredentials(a.cfg)
			if err != nil {
				return err
			}
			source := "$WHARF_CREDENTIALS"
			if credFile != "" {
				source = "the Owner credential " + credFile
			}
			fmt.Fprintf(a.stdout, "Acting as service principal %s (tenant %s), from %s, at %s\n", creds.ClientID, creds.TenantID, source, url)
			if err := q.run(ctx); err != nil {
				return err
			}
			abs := credFile
			if abs != "" {
				abs, _ = filepath.Abs(credFile)
			}
			// How a person signs in: as the first Owner user while its
			// file exists, else after an Owner creates a user.
			signIn := fmt.Sprintf("%s/signin (as an Owner, create a user first: %s ad user create --display-name NAME --user-principal-name NAME@team --password PASSWORD)", url, selfName())
			if _, err := os.Stat(userFile); userFile != "" && err == nil {
				absUser, _ := filepath.Abs(userFile)
				signIn = fmt.Sprintf("%s/signin as %s; the first password is in %s (you choose a new one then)", url, wharfhttp.OwnerUserName, absUser)
			}
			fmt.Fprintf(a.stdout, `
Done in %.1f s.

Wharf is running at %[2]s
Owner credential:   %[3]s
Workspace:          %[4]s
Web sign-in:        %[7]s

Next, in another shell:
  export WHARF_URL=%[2]s WHARF_CREDENTIALS="$(cat %[3]s)"
  %[5]s ml job list -w %[4]s -o table
  %[5]s ml model list --name taxi-model -w %[4]s -o table
  %[5]s ml online-endpoint invoke -n taxi-online --request-file %[6]s -w %[4]s
  %[5]s ml online-endpoint get-credentials -n taxi-online -w %[4]s
  %[5]s quickstart --url %[2]s      # run the loop again: steps are reused
  %[5]s login --url %[2]s           # as a person: approve the printed code at %[2]s/device
`, time.Since(start).Seconds(), url, abs, q.ws, selfName(), filepath.Join(q.dataDir(), "taxi-request.json"), signIn)
			if exit || q.url != "" {
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
	f.StringVar(&q.example, "example", "examples/taxi", "the example project folder")
	f.StringVar(&q.url, "url", "", "use a running server instead of starting one")
	f.IntVar(&q.rows, "rows", 100000, "taxi trips to generate")
	f.BoolVar(&exit, "exit", false, "stop the server when done instead of serving")
	o.tokenTTL = 3600e9
	o.maxConnsPerAddress = wharfhttp.DefaultMaxConnsPerAddress
	return cmd
}

// quickstart is one run of the example loop.
type quickstart struct {
	a       *app
	example string
	url     string
	ws      string
	rows    int
}

func (q *quickstart) dataDir() string { return filepath.Join(q.example, "data") }

func (q *quickstart) path(rel string) string {
	return filepath.Join(q.example, filepath.FromSlash(rel))
}

// wharf runs a CLI command in this process, echoing it first.
func (q *quickstart) wharf(ctx context.Context, echo bool, args ...string) (string, error) {
	if echo {
		fmt.Fprintf(q.a.stdout, "$ wharf %s\n", strings.Join(args, " "))
	}
	var out, errb bytes.Buffer
	var stdout io.Writer = &out
	if echo {
		stdout = io.MultiWriter(&out, q.a.stdout)
	}
	if code := run(ctx, args, strings.NewReader(""), stdout, &errb); code != 0 {
		return out.String(), fmt.Errorf("wharf %s: %s", strings.Join(args, " "), strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func (q *quickstart) step(format string, args ...any) {
	fmt.Fprintf(q.a.stdout, "\n==> "+format+"\n", args...)
}

// exists tells whether `show` finds a resource.
func (q *quickstart) exists(ctx context.Context, args ...string) bool {
	_, err := q.wharf(ctx, false, args...)
	return err == nil
}

func (q *quickstart) versions(ctx context.Context) int {
	out, err := q.wharf(ctx, false, "ml", "model", "list", "--name", "taxi-model", "-w", q.ws, "--query", "length(@)", "-o", "tsv")
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(out))
	return n
}

func (q *quickstart) run(ctx context.Context) error {
	ws := q.ws
	q.step("Infrastructure: %s", q.path("config-infra-dev.yml"))
	if _, err := q.wharf(ctx, true, "infra", "apply", "--file", q.path("config-infra-dev.yml"), "-o", "none"); err != nil {
		return err
	}

	q.step("Data: %d generated taxi trips in %s", q.rows, q.dataDir())
	// January only, like the Azure sample: both month columns are then
	// constant and the trainer leaves them at coefficient 0.
	if _, err := q.wharf(ctx, true, "generate", "taxi", "--rows", strconv.Itoa(q.rows), "--days", "31", "--out", q.dataDir(), "-o", "none"); err != nil {
		return err
	}
	train := "mlops/azureml/train/"
	for _, args := range [][]string{
		{"ml", "environment", "create", "--file", q.path(train + "train-env.yml"), "-w", ws, "-o", "none"},
		{"ml", "data", "create", "--file", q.path(train + "data.yml"), "-w", ws, "-o", "none"},
	} {
		if _, err := q.wharf(ctx, true, args...); err != nil {
			return err
		}
	}

	q.step("Training pipeline: prep -> train -> evaluate -> register")
	before := q.versions(ctx)
	if _, err := q.runJob(ctx, "the training pipeline", "ml", "job", "create", "--file", q.path(train+"pipeline.yml"), "-w", ws); err != nil {
		return err
	}
	promoted := q.versions(ctx) > before
	if promoted {
		fmt.Fprintf(q.a.stdout, "A new version of taxi-model was registered (%d versions now).\n", before+1)
	} else {
		fmt.Fprintln(q.a.stdout, "No new version of taxi-model: the steps were reused, or the candidate was not better than every registered version. The endpoints are left as they are.")
	}

	q.step("Online endpoint taxi-online, deployment blue")
	online := "mlops/azureml/deploy/online/"
	if !q.exists(ctx, "ml", "online-endpoint", "show", "-n", "taxi-online", "-w", ws) {
		if _, err := q.wharf(ctx, true, "ml", "online-endpoint", "create", "--name", "taxi-online", "-f", q.path(online+"online-endpoint.yml"), "-w", ws, "-o", "none"); err != nil {
			return err
		}
	}
	if promoted || !q.exists(ctx, "ml", "online-deployment", "show", "-n", "blue", "-e", "taxi-online", "-w", ws) {
		if _, err := q.wharf(ctx, true, "ml", "online-deployment", "create", "--name", "blue", "--endpoint", "taxi-online", "-f", q.path(online+"online-deployment.yml"), "-w", ws, "-o", "none"); err != nil {
			return err
		}
		if _, err := q.wharf(ctx, true, "ml", "online-endpoint", "update", "--name", "taxi-online", "--traffic", "blue=100", "-w", ws, "-o", "none"); err != nil {
			return err
		}
	}
	if _, err := q.wharf(ctx, true, "ml", "online-endpoint", "invoke", "-n", "taxi-online", "--request-file", filepath.Join(q.dataDir(), "taxi-request.json"), "-w", ws); err != nil {
		return err
	}

	q.step("Batch endpoint taxi-batch: score %s", filepath.Join(q.dataDir(), "taxi-batch.csv"))
	batch := "mlops/azureml/deploy/batch/"
	if !q.exists(ctx, "ml", "batch-endpoint", "show", "-n", "taxi-batch", "-w", ws) {
		if _, err := q.wharf(ctx, true, "ml", "batch-endpoint", "create", "--name", "taxi-batch", "-f", q.path(batch+"batch-endpoint.yml"), "-w", ws, "-o", "none"); err != nil {
			return err
		}
	}
	if promoted || !q.exists(ctx, "ml", "batch-deployment", "show", "-n", "batch-dp", "-e", "taxi-batch", "-w", ws) {
		if _, err := q.wharf(ctx, true, "ml", "batch-deployment", "create", "--name", "batch-dp", "--endpoint", "taxi-batch", "-f", q.path(batch+"batch-deployment.yml"), "--set-default", "-w", ws, "-o", "none"); err != nil {
			return err
		}
	}
	out, err := q.wharf(ctx, true, "ml", "batch-endpoint", "invoke", "--name", "taxi-batch", "--input", filepath.Join(q.dataDir(), "taxi-batch.csv"), "--input-type", "uri_file", "-w", ws, "--query", "name", "-o", "tsv")
	if err != nil {
		return err
	}
	bjob := strings.TrimSpace(out)
	if _, err := q.wharf(ctx, true, "ml", "job", "stream", "-n", bjob, "-w", ws); err != nil {
		return err
	}
	dl := filepath.Join(q.example, "outputs", bjob)
	if _, err := q.wharf(ctx, true, "ml", "job", "download", "-n", bjob, "--output-name", "score", "--download-path", dl, "-w", ws); err != nil {
		return err
	}
	pred := filepath.Join(dl, "named-outputs", "score", "predictions.csv")
	if _, err := os.Stat(pred); err != nil {
		return fmt.Errorf("the batch job %s wrote no predictions: %w", bjob, err)
	}
	fmt.Fprintf(q.a.stdout, "Batch predictions: %s\n", pred)
	return q.monitor(ctx, online)
}

// runJob runs a command that makes a job (args, to which the name query
// is added), streams the job's log until it ends, and fails unless it
// completed.
func (q *quickstart) runJob(ctx context.Context, what string, args ...string) (string, error) {
	out, err := q.wharf(ctx, true, append(args, "--query", "name", "-o", "tsv")...)
	if err != nil {
		return "", err
	}
	job := strings.TrimSpace(out)
	if _, err := q.wharf(ctx, true, "ml", "job", "stream", "-n", job, "-w", q.ws); err != nil {
		return job, err
	}
	status, err := q.wharf(ctx, false, "ml", "job", "show", "-n", job, "-w", q.ws, "--query", "status", "-o", "tsv")
	if err != nil {
		return job, err
	}
	if s := strings.TrimSpace(status); s != "Completed" {
		return job, fmt.Errorf("%s %s ended %s; see `wharf ml job show -n %s -w %s`", what, job, s, job, q.ws)
	}
	return job, nil
}

// monitorTrafficRows is how many trips each of the monitor's two traffic
// files sends: enough for the drift metrics of unshifted features to stay
// well under their thresholds, few enough to score in a moment.
const monitorTrafficRows = 2000

// monitor sends the online deployment normal and then drifted traffic,
// with its data collection on, and runs the taxi monitor once: its data
// drift breaches on the features `generate taxi --drift` shifts.
func (q *quickstart) monitor(ctx context.Context, online string) error {
	ws := q.ws
	q.step("Model monitoring: normal, then drifted traffic to taxi-online; the monitor %s", q.path("mlops/azureml/monitor/monitor.yml"))
	dep, err := q.wharf(ctx, false, "ml", "online-deployment", "show", "-n", "blue", "-e", "taxi-online", "-w", ws)
	if err != nil {
		return err
	}
	if !strings.Contains(dep, "data_collector") {
		// A deployment made before its file turned collection on.
		if _, err := q.wharf(ctx, true, "ml", "online-deployment", "update", "--name", "blue", "--endpoint", "taxi-online", "-f", q.path(online+"online-deployment.yml"), "-w", ws, "-o", "none"); err != nil {
			return err
		}
	}
	for _, traffic := range []struct {
		dir   string
		drift bool
	}{{"traffic", false}, {"traffic-drifted", true}} {
		dir := filepath.Join(q.dataDir(), traffic.dir)
		args := []string{"generate", "taxi", "--rows", "1", "--batch-rows", "0", "--request-rows", strconv.Itoa(monitorTrafficRows),
			"--days", "31", "--seed", "2", "--out", dir, "-o", "none"}
		if traffic.drift {
			args = append(args, "--drift")
		}
		if _, err := q.wharf(ctx, true, args...); err != nil {
			return err
		}
		if _, err := q.wharf(ctx, true, "ml", "online-endpoint", "invoke", "-n", "taxi-online", "--request-file", filepath.Join(dir, "taxi-request.json"), "-w", ws, "-o", "none"); err != nil {
			return err
		}
	}
	if _, err := q.wharf(ctx, true, "ml", "schedule", "create", "--file", q.path("mlops/azureml/monitor/monitor.yml"), "-w", ws, "-o", "none"); err != nil {
		return err
	}
	job, err := q.runJob(ctx, "the monitor job", "ml", "schedule", "trigger", "-n", "taxi-monitor", "-w", ws)
	if err != nil {
		return err
	}
	breached, err := q.wharf(ctx, false, "ml", "job", "show", "-n", job, "-w", ws, "--query", "monitor_results[?passed==`false`].feature", "-o", "tsv")
	if err != nil {
		return err
	}
	features := strings.Fields(breached)
	if len(features) == 0 {
		fmt.Fprintf(q.a.stdout, "Monitor job %s: no drift\n", job)
		return nil
	}
	fmt.Fprintf(q.a.stdout, "Monitor job %s: data_drift breached on %s (the features `generate taxi --drift` shifts)\n", job, strings.Join(features, ", "))
	return nil
}
