package main

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/alert"
	"github.com/wharfml/wharf/arm"
	"github.com/wharfml/wharf/atomicfile"
	"github.com/wharfml/wharf/auth"
	"github.com/wharfml/wharf/blob"
	"github.com/wharfml/wharf/federation"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/leader"
	"github.com/wharfml/wharf/local"
	"github.com/wharfml/wharf/mlflow"
	"github.com/wharfml/wharf/monitor"
	"github.com/wharfml/wharf/postgres"
	"github.com/wharfml/wharf/pyenv"
	"github.com/wharfml/wharf/ray"
	"github.com/wharfml/wharf/sandbox"
	"github.com/wharfml/wharf/scheduler"
	"github.com/wharfml/wharf/seal"
	"github.com/wharfml/wharf/serving"
	"github.com/wharfml/wharf/sqlite"
	"github.com/wharfml/wharf/sqlstore"
)

// Signing keys: a new key every keyMaxAge; older keys keep verifying until
// every token they signed has expired.
const (
	keySecretName = "token-signing-key"
	keyMaxAge     = 30 * 24 * time.Hour
	keyReload     = time.Minute
)

// serverOptions are the flags of `wharf server`.
type serverOptions struct {
	dataDir  string
	addr     string
	db       string
	url      string
	tokenTTL time.Duration
	logLevel string
	// python runs model deployments that have no environment of their own,
	// in place of the one their MLflow model was logged with.
	python string
	// rayPython runs the driver job on Ray-backed clusters.
	rayPython string
	// warm keeps warm Python processes for batch deployments.
	warm bool
	// maxConnsPerAddress caps the open connections from one client IP.
	maxConnsPerAddress int
	// signInAddressFailures is the per-address sign-in failure limit.
	signInAddressFailures int
	// unsafeSteps runs user code as the server's own user, unisolated.
	unsafeSteps bool
	// stepUser is the account sandboxed user code runs as under a root
	// server; stepReadOnly are extra host paths its sandboxes see.
	stepUser     string
	stepReadOnly []string
	// tlsCert and tlsKey are PEM files: with them the server speaks HTTPS.
	tlsCert, tlsKey string
	// blobEndpoints are account=URL pairs: where folder inputs at
	// https://<account>.blob.core.windows.net/... are read instead.
	blobEndpoints []string
	// peerURL is where the other servers sharing the database reach this
	// one (for step logs); default http(s)://ADDR, the host name in place
	// of an unspecified address.
	peerURL string
	// oidcCAFile holds extra certificate authorities trusted for fetching
	// federated issuers' discovery documents and keys.
	oidcCAFile string
	// artifacts is the URL of the server's own content-addressed store
	// (file://, azblob:// or s3://); empty for --data-dir/artifacts.
	artifacts string
	// sso are the single sign-on provider's settings; its client secret
	// comes from a file or the environment, never the command line.
	ssoIssuer, ssoClientID, ssoSecretFile, ssoName string
	// smtp is the mail server model monitor alerts are sent through;
	// its password comes from a file or the environment.
	smtpHost, smtpFrom, smtpUser, smtpPasswordFile, smtpStartTLS, smtpCAFile string
	smtpPort                                                                 int
}

func (a *app) serverCommand() *cobra.Command {
	var o serverOptions
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the Wharf server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := startServer(cmd.Context(), o, a.stderr)
			if err != nil {
				return err
			}
			<-cmd.Context().Done()
			return m.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", defaultDataDir(), "folder for the SQLite database, artifacts, keys and the owner credential")
	f.StringVar(&o.addr, "addr", "127.0.0.1:8790", "listen address")
	f.StringVar(&o.db, "db", "", "metadata database: empty for SQLite in --data-dir, or postgres://...")
	f.StringVar(&o.url, "url", "", "externally reachable base URL (default http://ADDR, or https://ADDR with --tls-cert)")
	f.StringVar(&o.peerURL, "peer-url", "", "with a PostgreSQL --db: the URL at which the other servers over the same database reach this one, "+
		"to read the logs of the steps it ran (default http://ADDR, or https://ADDR with --tls-cert; the host name for an address like 0.0.0.0)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate (with its chain) to serve HTTPS with; reloaded when the file changes")
	f.StringVar(&o.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	f.DurationVar(&o.tokenTTL, "token-ttl", time.Hour, "lifetime of access tokens")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.BoolVar(&o.warm, "warm-python", true, "keep a warm Python process (mlflow and the model's libraries imported) for each batch deployment's environment, "+
		"so its jobs' workers start in milliseconds; costs the memory of one interpreter per environment")
	f.IntVar(&o.maxConnsPerAddress, "max-conns-per-address", wharfhttp.DefaultMaxConnsPerAddress,
		"most open connections from one client IP address, more are closed at once (0: no cap; raise it behind a reverse proxy, which is one address)")
	f.IntVar(&o.signInAddressFailures, "sign-in-failures-per-address", wharfhttp.SignInMaxFailures,
		"failed sign-ins from one client IP address within 15 minutes before further attempts get 429 (0: no per-address limit; raise it behind a reverse proxy, which is one address)")
	f.StringVar(&o.rayPython, "ray-python", "python", "the Python, with ray importable, that runs the driver job on Ray-backed clusters (as the Ray head's PATH finds it)")
	f.StringVar(&o.python, "python", "", "Python interpreter for model deployments without an environment of their own, in place of the one their MLflow model was logged with (default: the model's, else python3)")
	f.BoolVar(&o.unsafeSteps, "unsafe-run-steps-as-server-user", false, "run job steps, scoring scripts and model workers as the server's own user without a sandbox; "+
		"they can then read the data folder, its keys and every token (for machines where bubblewrap cannot run)")
	f.StringVar(&o.stepUser, "step-user", "", "unprivileged account that user code runs as when the server runs as root (default "+sandbox.DefaultUser+", created if missing)")
	f.StringArrayVar(&o.stepReadOnly, "step-ro-path", nil, "extra host path that every sandbox sees read-only (repeatable), e.g. a shared data folder or toolchain")
	f.StringArrayVar(&o.blobEndpoints, "azure-blob-endpoint", nil, "ACCOUNT=URL: read data inputs of Azure storage account ACCOUNT (wasbs://...@ACCOUNT.blob.core.windows.net) "+
		"from URL instead, e.g. Azurite's http://127.0.0.1:10000/devstoreaccount1 or a private endpoint (repeatable)")
	f.StringVar(&o.artifacts, "artifacts", "", "where the content-addressed store of every file, model and output lives: file:///PATH, "+
		"azblob://ACCOUNT/CONTAINER[/PREFIX][?endpoint=URL] (key in $AZURE_STORAGE_KEY or SAS in $AZURE_STORAGE_SAS_TOKEN) or "+
		"s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=true] (AWS credentials from the environment) (default file://DATA-DIR/artifacts)")
	f.StringVar(&o.smtpHost, "smtp-host", "", "SMTP server that model monitor alerts are e-mailed through (none: e-mail alerts wait, undelivered, for a server that has one)")
	f.IntVar(&o.smtpPort, "smtp-port", 587, "port of --smtp-host")
	f.StringVar(&o.smtpFrom, "smtp-from", "", "sender address of alert e-mails (default wharf@HOST)")
	f.StringVar(&o.smtpUser, "smtp-username", "", "user to authenticate to the SMTP server as (PLAIN, only over TLS)")
	f.StringVar(&o.smtpPasswordFile, "smtp-password-file", "", "file holding the SMTP password (default $"+smtpPasswordEnv+")")
	f.StringVar(&o.smtpStartTLS, "smtp-starttls", "auto", "STARTTLS: auto (when the server offers it), always (refuse to send without it) or never")
	f.StringVar(&o.smtpCAFile, "smtp-ca-file", "", "PEM file of certificate authorities trusted for the SMTP server's certificate instead of the system's")
	f.StringVar(&o.oidcCAFile, "oidc-ca-file", os.Getenv("WHARF_OIDC_CA_FILE"), "PEM file of extra certificate authorities trusted (besides the system's) when fetching the discovery documents and keys "+
		"of federated credentials' issuers and of the --oidc-issuer, e.g. a GitHub Enterprise Server's or GitLab instance's private CA (default $WHARF_OIDC_CA_FILE)")
	f.StringVar(&o.ssoIssuer, "oidc-issuer", "", "issuer URL of an OpenID Connect provider to offer single sign-on with on the sign-in page; "+
		"register URL"+wharfhttp.SSOCallbackPath+" as the client's redirect URI")
	f.StringVar(&o.ssoClientID, "oidc-client-id", "", "client id of this server at the --oidc-issuer")
	f.StringVar(&o.ssoSecretFile, "oidc-client-secret-file", "", "file holding the client secret at the --oidc-issuer (default: $"+ssoSecretEnv+")")
	f.StringVar(&o.ssoName, "oidc-provider-name", "", `name of the --oidc-issuer on the sign-in page, "Sign in with NAME" (default: the issuer's host)`)
	return cmd
}

// openArtifacts opens the server's content-addressed store and, for one
// elsewhere, checks at once that it answers: a wrong key or a missing
// container then stops the server starting, named, rather than failing the
// first upload.
func openArtifacts(ctx context.Context, o serverOptions) (wharf.BlobStore, error) {
	if o.artifacts == "" {
		return blob.NewFS(filepath.Join(o.dataDir, "artifacts"))
	}
	blobs, err := blob.Open(ctx, o.artifacts, "artifacts")
	if err != nil {
		return nil, usagef("--artifacts: %v", err)
	}
	if objects, ok := blobs.(*blob.ObjectStore); ok {
		if err := objects.Check(ctx); err != nil {
			return nil, fmt.Errorf("--artifacts %s: %w", o.artifacts, err)
		}
	}
	return blobs, nil
}

func defaultDataDir() string {
	if d := os.Getenv("WHARF_DATA_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "wharf-data"
	}
	return filepath.Join(home, ".wharf", "data")
}

// runningServer is a started server and what must be closed with it.
type runningServer struct {
	HTTP      *wharfhttp.Server
	DB        *sqlstore.DB
	Addr      string
	OwnerFile string
	// OwnerUserFile holds the first Owner user's sign-in (see
	// wharfhttp.BootstrapOwnerUser); it exists only on a server that
	// created that user.
	OwnerUserFile string
	cancel        context.CancelFunc
	done          chan error
	sched         *scheduler.Scheduler
	router        *serving.Router
	warmDir       string
	dirLock       *os.File
	// elector is closed when the server no longer campaigns for the
	// scheduler's lease (at once on SQLite, where it always runs it).
	elector chan struct{}
	// alerts delivers monitor alerts where the scheduler runs.
	alerts *alert.Dispatcher
	// blobs is swept of what crashed uploads left where the scheduler
	// runs.
	blobs wharf.BlobStore
	// leading is true while this server holds the scheduler's lease.
	leading   atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Close shuts the server down gracefully and closes the store; later
// calls return what the first did.
func (m *runningServer) Close() error {
	m.closeOnce.Do(func() { m.closeErr = m.close() })
	return m.closeErr
}

func (m *runningServer) close() error {
	m.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := m.HTTP.Shutdown(ctx)
	<-m.done
	<-m.elector
	// Attempts still running are stopped; the next server re-runs them.
	m.sched.Wait()
	m.sched.StopWarm()
	if m.warmDir != "" {
		os.RemoveAll(m.warmDir)
	}
	m.router.Close()
	if cerr := m.DB.Close(); err == nil {
		err = cerr
	}
	m.dirLock.Close()
	return err
}

// Notification channels between servers sharing a PostgreSQL database.
// computeTokenTTL is how long a Ray-backed cluster's driver's credential
// lasts: the driver is long-lived, and a new driver gets a new one.
const computeTokenTTL = 30 * 24 * time.Hour

const (
	// jobsChannel tells the server that runs the scheduler that jobs
	// changed elsewhere.
	jobsChannel = "wharf_jobs"
	// endpointsChannel carries "workspace/endpoint" (endpoint empty for
	// the whole workspace) of an online endpoint whose routing changed.
	endpointsChannel = "wharf_endpoints"
)

// shareWithOtherServers runs the scheduler while this server holds the
// scheduler's lease, tells the other servers of job and endpoint changes
// made here, hears of theirs, and starts every online deployment here.
func (m *runningServer) shareWithOtherServers(ctx context.Context, dbURL, addr string, logger *slog.Logger) {
	notify := func(channel, payload string) {
		go func() {
			if err := m.DB.Notify(ctx, channel, payload); err != nil && ctx.Err() == nil {
				logger.Warn("telling the other servers of a change failed; they see it when they next poll", "err", err)
			}
		}()
	}
	m.sched.Elsewhere = func() { notify(jobsChannel, "") }
	m.router.Peers = func(workspace, endpoint string) { notify(endpointsChannel, workspace+"/"+endpoint) }
	go postgres.Listen(ctx, dbURL, []string{jobsChannel, endpointsChannel}, logger, func(channel, payload string) {
		if channel == jobsChannel {
			m.sched.Wake()
			return
		}
		workspace, endpoint, _ := strings.Cut(payload, "/")
		m.router.Changed(workspace, endpoint)
	}, func() {
		m.router.InvalidateAll()
		m.sched.Wake()
	})
	go func() {
		if err := m.router.StartAll(ctx); err != nil && ctx.Err() == nil {
			logger.Warn("starting the online deployments ahead of requests failed; they start on their first", "err", err)
		}
	}()
	host, _ := os.Hostname()
	// The holder names the server's peer URL first: the others forward a
	// Ray driver's requests there (schedulerPeer).
	elector := &leader.Elector{Store: m.DB, Name: wharf.SchedulerLease, Logger: logger,
		Holder: fmt.Sprintf("%s %s:%d %s", m.HTTP.PeerURL, host, os.Getpid(), addr)}
	m.HTTP.SchedulerPeer = m.schedulerPeer
	go func() {
		defer close(m.elector)
		elector.Run(ctx, func(ctx context.Context) {
			m.leading.Store(true)
			defer m.leading.Store(false)
			if err := m.sched.Start(ctx); err != nil {
				logger.Error("starting the scheduler failed", "err", err)
				return
			}
			// Monitor alerts are delivered where the scheduler
			// runs, so that two servers never send the same one.
			go m.alerts.Run(ctx)
			go blob.SweepStagedEvery(ctx, m.blobs, blob.SweepInterval, logger)
			<-ctx.Done()
			m.sched.Wait()
		})
	}()
}

// schedulerPeer is the peer URL of the server that runs the scheduler,
// read from the scheduler's lease; empty when it is this one.
func (m *runningServer) schedulerPeer(ctx context.Context) (string, error) {
	if m.leading.Load() {
		return "", nil
	}
	l, err := m.DB.FindLease(ctx, wharf.SchedulerLease)
	if err != nil {
		return "", wharf.Errorf(wharf.EUNAVAILABLE, "reading which server runs the scheduler: %v", err)
	}
	if l == nil {
		return "", wharf.Errorf(wharf.EUNAVAILABLE, "no server runs the scheduler at the moment; send again")
	}
	peer, _, _ := strings.Cut(l.Holder, " ")
	if peer == m.HTTP.PeerURL {
		return "", nil
	}
	return peer, nil
}

// peerURL is --peer-url, or the URL of the address the server listens on,
// its host name in place of an unspecified address.
func peerURL(o serverOptions, addr string) string {
	if o.peerURL != "" {
		return strings.TrimRight(o.peerURL, "/")
	}
	scheme := "http"
	if o.tlsCert != "" {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return scheme + "://" + addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if name, err := os.Hostname(); err == nil {
			host = name
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// serverInstance is the name of this server's files of collected data
// in the shared datastore: made up once, at the first start on a data
// dir, and kept there, so that servers sharing a database (each with a
// data dir of its own) never write the same file.
func serverInstance(dataDir string) (string, error) {
	p := filepath.Join(dataDir, "instance-id")
	if b, err := os.ReadFile(p); err == nil {
		if id := strings.TrimSpace(string(b)); id != "" && strings.Trim(id, "0123456789abcdef") == "" {
			return id, nil
		}
		return "", fmt.Errorf("%s: want the hexadecimal instance id this server made up, got %q", p, b)
	} else if !os.IsNotExist(err) {
		return "", err
	}
	id := make([]byte, 8)
	if _, err := crand.Read(id); err != nil {
		return "", err
	}
	s := hex.EncodeToString(id)
	return s, atomicfile.WriteFile(p, []byte(s+"\n"), 0o600)
}

// lockDataDir takes a lock on the data folder that lasts while the file
// it returns is open (the kernel drops it when the process dies), so that
// a second server on the same folder (and so on the same SQLite database)
// is refused.
func lockDataDir(dir string) (*os.File, error) {
	p := filepath.Join(dir, "server.lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock the data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(p)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data dir %s is in use by another wharf server (%s); "+
				"run one server per data dir: several servers share a PostgreSQL database (--db postgres://...), each with a data dir of its own",
				dir, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("lock the data dir %s: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(fmt.Sprintf("pid %d\n", os.Getpid())), 0)
	}
	return f, nil
}

func startServer(ctx context.Context, o serverOptions, logw interface{ Write([]byte) (int, error) }) (*runningServer, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, usagef("--log-level: %s", err)
	}
	logger := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: level}))
	tlsConfig, err := serverTLS(o, logger)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	// An older server may have made it readable by others; nothing in it
	// is for anyone but the server.
	if err := os.Chmod(o.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("restrict data dir: %w", err)
	}
	dirLock, err := lockDataDir(o.dataDir)
	if err != nil {
		return nil, err
	}
	// Until the server is running, a failed start unlocks it; then Close.
	started := false
	defer func() {
		if !started {
			dirLock.Close()
		}
	}()
	var box *sandbox.Sandbox
	if o.unsafeSteps {
		logger.Warn("user code runs as the server's own user without a sandbox (--unsafe-run-steps-as-server-user): " +
			"any job can read the data folder, its keys and tokens")
	} else {
		var err error
		box, err = sandbox.New(sandbox.Options{User: o.stepUser, Hidden: []string{o.dataDir}, ReadOnly: o.stepReadOnly})
		if err != nil {
			return nil, fmt.Errorf("cannot isolate job steps: %w; install bubblewrap, or pass --unsafe-run-steps-as-server-user to run them unisolated", err)
		}
	}
	logger.Info(box.Describe())
	sealer, err := seal.LoadOrCreateKey(filepath.Join(o.dataDir, "master.key"))
	if err != nil {
		return nil, err
	}
	var db *sqlstore.DB
	switch {
	case o.db == "" || strings.HasPrefix(o.db, "sqlite:"):
		path := strings.TrimPrefix(o.db, "sqlite:")
		if path == "" {
			path = filepath.Join(o.dataDir, "wharf.db")
		}
		db, err = sqlite.Open(ctx, path)
	case strings.HasPrefix(o.db, "postgres://"), strings.HasPrefix(o.db, "postgresql://"):
		db, err = postgres.Open(ctx, o.db)
	default:
		return nil, usagef("--db must be empty (SQLite), sqlite:PATH or postgres://...")
	}
	if err != nil {
		return nil, fmt.Errorf("open metadata store: %w", err)
	}
	db.Sealer = sealer

	tenant, err := db.InitSetting(ctx, "tenant_id", uuid.NewString())
	if err != nil {
		db.Close()
		return nil, err
	}
	ring := auth.NewKeyRing()
	keys := &signingKeys{store: db, ring: ring, ttl: o.tokenTTL, loaded: map[string]bool{}}
	if err := keys.sync(ctx); err != nil {
		db.Close()
		if errors.Is(err, seal.ErrOpen) {
			return nil, fmt.Errorf("load signing keys: %w: %s is not the key the database's secrets were sealed with; "+
				"every server over one database needs the same master.key (copy the first server's into this one's data dir)",
				err, filepath.Join(o.dataDir, "master.key"))
		}
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	issuer := &auth.Issuer{Issuer: "urn:wharf:tenant:" + tenant, Audience: wharfhttp.APIAudience, TTL: o.tokenTTL, Keys: ring}
	blobs, err := openArtifacts(ctx, o)
	if err != nil {
		db.Close()
		return nil, err
	}
	srv := wharfhttp.NewServer(db, issuer, tenant, logger)
	srv.Blobs = blobs
	srv.CheckDatastore = blob.CheckDatastore
	if o.oidcCAFile != "" {
		fed, err := federation.NewVerifier(o.oidcCAFile)
		if err != nil {
			db.Close()
			return nil, usagef("--oidc-ca-file: %s", err)
		}
		fed.OwnIssuers = []string{issuer.Issuer}
		srv.Federation = fed
	}
	ml := &mlflow.Handler{Store: db, Blobs: blobs, Logger: logger}
	ml.Register(srv.Group(mlflow.Prefix, ml.WriteError))
	azml := &arm.Handler{Store: db, Blobs: blobs, Endpoints: srv, Models: srv, Assets: srv, Jobs: srv, URL: func() string { return srv.URL }, Logger: logger}
	azml.Register(func(prefix string) arm.Group { return srv.Group(prefix, azml.WriteError) })
	srv.VirtualHost(azml.BlobHost)
	// Before anything can ask: jobs, schedules and downloads check them.
	if err := srv.BackfillBlobRefs(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("record which workspaces hold stored content: %w", err)
	}
	if err := configureSSO(srv, o); err != nil {
		db.Close()
		return nil, err
	}
	srv.URL = strings.TrimRight(o.url, "/")
	srv.MaxConnsPerAddress = o.maxConnsPerAddress
	srv.SignInFailuresPerAddress = o.signInAddressFailures
	srv.TLS = tlsConfig
	addr, err := srv.Listen(o.addr)
	if err != nil {
		db.Close()
		return nil, err
	}
	if storeKind(o.db) == "postgres" {
		srv.PeerURL = peerURL(o, addr)
	}
	bg, cancel := context.WithCancel(context.Background())
	// Ray-backed clusters reach the server at its URL; their drivers hold
	// a compute token, renewed with each driver.
	clusters := &ray.Executor{URL: srv.URL, Python: o.rayPython, Logger: logger, Token: func(workspace, compute string) (string, error) {
		return srv.IssueComputeToken(workspace, compute, computeTokenTTL)
	}}
	srv.Clusters = clusters
	// Steps' and deployments' environments are built as their code runs:
	// in the sandbox where there is one.
	envs := &pyenv.Builder{CacheDir: filepath.Join(o.dataDir, "envs")}
	if box != nil {
		envs.Runner = box
	}
	sched := &scheduler.Scheduler{
		Store: db, Blobs: blobs, Exec: &local.Executor{Sandbox: box}, Cluster: clusters, Sandbox: box, Logger: logger,
		Envs:        envs,
		WorkDir:     filepath.Join(o.dataDir, "jobs"),
		TrackingURI: srv.TrackingURI,
		Resolve:     srv.Resolve,
		Now:         time.Now,
		Server:      srv.PeerURL,
		Token: func(principal, workspace, job string, ttl time.Duration) (string, error) {
			tok, _, err := issuer.IssueJob(tenant, principal, wharfhttp.JobAudience, workspace, job, ttl)
			return tok, err
		},
	}
	if sched.BlobEndpoints, err = parseBlobEndpoints(o.blobEndpoints); err != nil {
		cancel()
		db.Close()
		return nil, err
	}
	var warmDir string
	if o.warm {
		if warmDir, err = makeWarmDir(o.dataDir); err != nil {
			cancel()
			db.Close()
			return nil, err
		}
		sched.WarmDir = warmDir
	}
	mail, err := smtpConfig(o)
	if err != nil {
		cancel()
		db.Close()
		return nil, err
	}
	// Alerts are sent by the server that runs the scheduler, one at a
	// time (see shareWithOtherServers).
	alerts := &alert.Dispatcher{Store: db, Mail: mail, Logger: logger}
	var routerRef atomic.Pointer[serving.Router]
	sched.Monitor = &monitor.Runner{Store: db, Blobs: blobs, Alerts: alerts, Logger: logger,
		Metrics: monitor.NewMetrics(srv.Registerer()), WorkDir: filepath.Join(o.dataDir, "jobs"),
		Flush: func(ws, endpoint string) {
			if r := routerRef.Load(); r != nil {
				r.FlushCollected(ws, endpoint)
			}
		},
		Steps: func(ctx context.Context, ws, principal string, doc json.RawMessage) (*wharf.Job, error) {
			sub, err := srv.Resolve(ctx, ws, doc)
			if err != nil {
				return nil, err
			}
			return sched.Submit(ctx, ws, principal, sub)
		}}
	shared := storeKind(o.db) == "postgres"
	if !shared {
		if err := sched.Start(bg); err != nil {
			cancel()
			db.Close()
			return nil, fmt.Errorf("start the scheduler: %w", err)
		}
		go alerts.Run(bg)
		go blob.SweepStagedEvery(bg, blobs, blob.SweepInterval, logger)
	}
	srv.Scheduler = sched
	srv.DeploymentPython = o.python
	if o.warm {
		// Before serving, so that a job submitted at once waits for
		// its deployment's warming instead of racing it; the warming
		// itself runs in the background.
		if err := srv.WarmBatchDeployments(bg); err != nil {
			logger.Warn("warming batch deployments failed", "err", err)
		}
	}
	router := serving.NewRouter(db, &serving.Factory{Store: db, Blobs: blobs, Dir: filepath.Join(o.dataDir, "serving"),
		Envs: sched.Envs, Python: o.python, Sandbox: box, Logger: logger}, issuer, srv.Registerer(), logger)
	router.Audience = wharfhttp.EndpointAudience
	router.Blobs, router.CollectDir = blobs, filepath.Join(o.dataDir, "serving")
	if router.Instance, err = serverInstance(o.dataDir); err != nil {
		cancel()
		sched.Wait()
		db.Close()
		return nil, err
	}
	routerRef.Store(router)
	srv.Endpoints = router
	m := &runningServer{HTTP: srv, DB: db, Addr: addr, done: make(chan error, 1), sched: sched, router: router, warmDir: warmDir,
		dirLock: dirLock, elector: make(chan struct{}), alerts: alerts, blobs: blobs}
	m.OwnerFile = filepath.Join(o.dataDir, "owner-credentials.json")
	created, err := srv.Bootstrap(ctx, m.OwnerFile)
	if err != nil {
		cancel()
		sched.Wait()
		db.Close()
		return nil, fmt.Errorf("create the first owner: %w", err)
	}
	if created {
		logger.Info("created the first Owner; its credential is in the file named here (mode 0600)", "file", m.OwnerFile)
	}
	m.OwnerUserFile = filepath.Join(o.dataDir, "owner-user.json")
	if err := m.bootstrapUser(ctx, created, logger); err != nil {
		cancel()
		sched.Wait()
		db.Close()
		return nil, fmt.Errorf("create the first owner user: %w", err)
	}
	m.cancel = cancel
	if shared {
		m.shareWithOtherServers(bg, o.db, addr, logger)
	} else {
		close(m.elector)
	}
	started = true
	go func() {
		t := time.NewTicker(keyReload)
		defer t.Stop()
		for {
			select {
			case <-bg.Done():
				return
			case <-t.C:
				if err := keys.sync(bg); err != nil {
					logger.Error("signing key refresh failed", "err", err)
				}
			}
		}
	}()
	go func() { m.done <- srv.Serve() }()
	logger.Info("wharf server listening", "url", srv.URL, "tenant", tenant, "data_dir", o.dataDir, "store", storeKind(o.db))
	return m, nil
}

// smtpPasswordEnv holds the SMTP password when no file is named.
const smtpPasswordEnv = "WHARF_SMTP_PASSWORD"

// smtpConfig is the mail server --smtp-host names, nil without one.
func smtpConfig(o serverOptions) (*alert.SMTP, error) {
	if o.smtpHost == "" {
		return nil, nil
	}
	switch o.smtpStartTLS {
	case "auto", "always", "never":
	default:
		return nil, usagef("--smtp-starttls must be auto, always or never, got %q", o.smtpStartTLS)
	}
	m := &alert.SMTP{Host: o.smtpHost, Port: o.smtpPort, From: o.smtpFrom, Username: o.smtpUser, StartTLS: o.smtpStartTLS,
		Password: os.Getenv(smtpPasswordEnv)}
	if m.From == "" {
		m.From = "wharf@" + o.smtpHost
	}
	if o.smtpPasswordFile != "" {
		b, err := os.ReadFile(o.smtpPasswordFile)
		if err != nil {
			return nil, usagef("--smtp-password-file: %s", err)
		}
		m.Password = strings.TrimRight(string(b), "\r\n")
	}
	if o.smtpCAFile != "" {
		pem, err := os.ReadFile(o.smtpCAFile)
		if err != nil {
			return nil, usagef("--smtp-ca-file: %s", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usagef("--smtp-ca-file: no PEM certificate in %s", o.smtpCAFile)
		}
		m.TLSConfig = &tls.Config{RootCAs: pool, ServerName: o.smtpHost, MinVersion: tls.VersionTLS12}
	}
	return m, nil
}

// ssoSecretEnv holds the single sign-on client secret when no file is named.
const ssoSecretEnv = "WHARF_OIDC_CLIENT_SECRET"

// configureSSO enables single sign-on when --oidc-issuer is set.
func configureSSO(srv *wharfhttp.Server, o serverOptions) error {
	if o.ssoIssuer == "" {
		if o.ssoClientID != "" || o.ssoSecretFile != "" {
			return usagef("--oidc-client-id and --oidc-client-secret-file need --oidc-issuer")
		}
		return nil
	}
	secret := os.Getenv(ssoSecretEnv)
	if o.ssoSecretFile != "" {
		b, err := os.ReadFile(o.ssoSecretFile)
		if err != nil {
			return usagef("--oidc-client-secret-file: %s", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	if secret == "" {
		return usagef("--oidc-issuer needs the client secret: --oidc-client-secret-file FILE, or $%s", ssoSecretEnv)
	}
	if o.ssoClientID == "" {
		return usagef("--oidc-issuer needs --oidc-client-id")
	}
	if err := srv.SetSingleSignOn(&wharfhttp.SingleSignOn{ProviderName: o.ssoName, Issuer: o.ssoIssuer,
		ClientID: o.ssoClientID, ClientSecret: secret}); err != nil {
		return usagef("--oidc-issuer: %s", wharf.ErrorMessage(err))
	}
	return nil
}

// warmSocketRoom is how long a zygote's socket name may make its folder's
// path: the kernel limits socket paths to about a hundred bytes, and
// "/z-<16 hex>.sock.tmp" takes 28 of them, a sandboxed zygote's subfolder
// "/<8 hex>" 9 more.
const warmSocketRoom = 100 - 28 - 9

// makeWarmDir makes the folder for the server's zygote sockets: warm/ in
// the data folder when its path is short enough, else a folder in /tmp
// named for this process. Sockets of a previous server (killed, so never
// cleaned) are removed first.
func makeWarmDir(dataDir string) (string, error) {
	if dir, err := filepath.Abs(filepath.Join(dataDir, "warm")); err == nil && len(dir) <= warmSocketRoom {
		_ = os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("create a folder for warm processes: %w", err)
		}
		return dir, nil
	}
	sweepWarmDirs()
	dir, err := os.MkdirTemp("/tmp", "wharf-warm-")
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o600)
	}
	if err != nil {
		return "", fmt.Errorf("create a folder for warm processes: %w", err)
	}
	return dir, nil
}

// sweepWarmDirs removes the /tmp folders of servers that are gone: their
// pid file names no running process.
func sweepWarmDirs() {
	dirs, _ := filepath.Glob("/tmp/wharf-warm-*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "pid"))
		if err != nil {
			continue // not ours to judge
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || syscall.Kill(pid, 0) == syscall.ESRCH {
			_ = os.RemoveAll(d)
		}
	}
}

// serverTLS is the TLS configuration of --tls-cert and --tls-key, nil
// without them.
func serverTLS(o serverOptions, logger *slog.Logger) (*tls.Config, error) {
	if o.tlsCert == "" && o.tlsKey == "" {
		return nil, nil
	}
	if o.tlsCert == "" || o.tlsKey == "" {
		return nil, usagef("--tls-cert and --tls-key go together")
	}
	if strings.HasPrefix(o.url, "http://") {
		return nil, usagef("--url %s: the server speaks HTTPS (--tls-cert), so its URL starts with https://", o.url)
	}
	files, err := wharfhttp.LoadCertificateFiles(o.tlsCert, o.tlsKey)
	if err != nil {
		return nil, err
	}
	files.OnError = func(err error) {
		logger.Error("the changed TLS certificate cannot be loaded; still serving the previous one", "err", err)
	}
	return files.TLSConfig(), nil
}

func storeKind(db string) string {
	if strings.HasPrefix(db, "postgres") {
		return "postgres"
	}
	return "sqlite"
}

// signingKeys keeps the token signing keys of the secret store in a ring.
type signingKeys struct {
	store  wharf.SecretService
	ring   *auth.KeyRing
	ttl    time.Duration
	loaded map[string]bool // secret versions already in the ring
}

// sync loads new signing keys from the secret store into the ring, creates a
// key when the newest is too old, and drops keys that can no longer have
// live tokens. Servers sharing one database converge on the same keys
// because each syncs periodically.
func (s *signingKeys) sync(ctx context.Context) error {
	store, ring, ttl := s.store, s.ring, s.ttl
	versions, err := store.ListSecretVersions(ctx, wharf.ServerScope, keySecretName)
	if err != nil && !wharf.IsNotFound(err) {
		return err
	}
	for _, v := range versions {
		if s.loaded[v.Version] {
			continue
		}
		s.loaded[v.Version] = true
		sec, err := store.GetSecret(ctx, wharf.ServerScope, keySecretName, v.Version)
		if err != nil {
			return err
		}
		k, err := auth.UnmarshalKey(sec.Value)
		if err != nil {
			return err
		}
		if _, ok := ring.Lookup(k.ID); !ok {
			ring.Add(k)
		}
	}
	now := time.Now()
	if ring.NeedsRotation(now, keyMaxAge) {
		k, err := auth.NewKey(now)
		if err != nil {
			return err
		}
		b, err := auth.MarshalKey(k)
		if err != nil {
			return err
		}
		sec, err := store.SetSecret(ctx, wharf.ServerScope, keySecretName, b, "application/json")
		if err != nil {
			return err
		}
		s.loaded[sec.Version] = true
		ring.Add(k)
	}
	ring.Prune(now, keyMaxAge+ttl+auth.DefaultLeeway)
	return nil
}

// parseBlobEndpoints reads --azure-blob-endpoint values, ACCOUNT=URL.
func parseBlobEndpoints(pairs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range pairs {
		account, u, ok := strings.Cut(p, "=")
		if !ok || account == "" || !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return nil, usagef("--azure-blob-endpoint %q: want ACCOUNT=http(s)://...", p)
		}
		out[strings.ToLower(account)] = u
	}
	return out, nil
}

// bootstrapUser creates the first Owner user on a new server, so a person
// can sign in to the web UI at once; a server that predates users, and
// has none, says how to create one.
func (m *runningServer) bootstrapUser(ctx context.Context, newServer bool, logger *slog.Logger) error {
	if !newServer {
		users, err := m.DB.ListUsers(ctx)
		if err == nil && len(users) == 0 {
			logger.Info("no user can sign in to the web UI yet; as an Owner, create one: wharf ad user create --display-name NAME --user-principal-name NAME@team --password PASSWORD --force-change-password-next-sign-in && wharf role assignment create --assignee NAME@team --role Owner --scope /")
		}
		return err
	}
	created, err := m.HTTP.BootstrapOwnerUser(ctx, m.OwnerUserFile)
	if created {
		logger.Info("created the first Owner user; sign in at /signin with the password in the file named here (mode 0600)", "user", wharfhttp.OwnerUserName, "file", m.OwnerUserFile)
	}
	return err
}
