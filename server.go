// Command admit is the Admit GraphQL server.
//
//	go run .                         # serve (SQLite file admit.db by default)
//	go run . create-organization --name … --admin-email … --admin-password …
//	go run . schema                  # print the complete GraphQL schema (SDL)
//
// server.go only wires the parts together: configuration, database,
// bootstrap, the HTTP handler from internal/server, and shutdown.
package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"entgo.io/ent/dialect"

	_ "admit/ent/runtime" // registers the privacy policies and hooks

	"admit/graph"
	"admit/internal/account"
	"admit/internal/config"
	"admit/internal/db"
	"admit/internal/eventlog"
	"admit/internal/hr"
	"admit/internal/invite"
	"admit/internal/mail"
	"admit/internal/metrics"
	"admit/internal/outbox"
	"admit/internal/pubsub"
	"admit/internal/ratelimit"
	"admit/internal/secret"
	"admit/internal/server"
	"admit/internal/sms"
	"admit/internal/telemetry"
	"admit/internal/workspace"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tuneGC(os.Getenv)
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "admit:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// tuneGC sets the collector's defaults unless GOGC or GOMEMLIMIT set them.
// Admit's live heap is a few MiB, so at Go's default GOGC=100 the
// collector ran every few requests: on a list of 100 rows, garbage
// collection took about 40% of the server's CPU. GOGC=400 with a soft
// limit of 256 MiB lets the heap grow to five times what is live and
// collects harder only near the limit. Idle memory does not grow: the
// server returns its garbage when it becomes ready and after bursts of
// password hashing (see internal/password).
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(256 << 20)
	}
}

// usage is printed for an unknown subcommand.
const usage = `usage:
  admit [flags]                 serve (admit -h lists the flags)
  admit create-organization --name NAME --admin-email EMAIL --admin-password PASSWORD
                                [--admin-name NAME] [--allow-duplicate-name]
  admit reset-password (--email EMAIL | --phone PHONE) [--password PASSWORD] [--organization-id ID]
  admit schema                  print the complete GraphQL schema (SDL)
`

// errUsage is a command line that names no known subcommand; main exits 2.
var errUsage = errors.New("unknown command")

// run serves until ctx ends. ready, when set, is told the listening address.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, ready func(net.Addr)) error {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "create-organization":
			return createOrganization(ctx, args[1:], getenv, stdout, stderr)
		case "reset-password":
			return resetPassword(ctx, args[1:], getenv, stdout, stderr)
		case "schema":
			// The complete SDL, for client code generators; needs no database.
			_, err := io.WriteString(stdout, graph.SDL())
			return err
		default:
			// Not a second server on the same database: a typo says so.
			fmt.Fprint(stderr, usage)
			return fmt.Errorf("%w %q", errUsage, args[0])
		}
	}
	cfg, err := config.Load(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogLevel, stderr)
	// Listen first: without PUBLIC_URL, links point at the port this
	// server really has.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	defer ln.Close()
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok {
		cfg.DefaultPublicURL(fmt.Sprintf("http://localhost:%d", tcp.Port))
	}

	d, keys, err := openDatabase(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer d.Close()
	tracing, stopTracing, err := telemetry.Setup(ctx, getenv)
	if err != nil {
		return err
	}
	if tracing {
		d.Wrap(telemetry.Driver)
		log.Info("tracing with OpenTelemetry (OTEL_EXPORTER_OTLP_ENDPOINT)")
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = stopTracing(sctx) // flush what is buffered
		}()
	}
	accounts := &account.Service{Dialect: d.Dialect, Keys: keys, SessionTTL: cfg.SessionTTL, Now: now, SignInLimits: cfg.SignInLimits}

	var boot account.BootstrapResult
	err = d.Migrate(ctx, func(ctx context.Context) error {
		boot, err = account.Bootstrap(ctx, d.Client, account.NewOrganization{
			Name:          cfg.BootstrapOrganization,
			AdminEmail:    cfg.BootstrapAdminEmail,
			AdminPassword: cfg.BootstrapAdminPassword,
		})
		return err
	})
	if err != nil {
		return err
	}

	sender, err := newSender(cfg, log)
	if err != nil {
		return err
	}
	broker := pubsub.New()
	accounts.Broker = broker
	if d.Dialect == dialect.Postgres {
		// Subscribers on every replica hear every replica's events.
		if err := broker.RelayThroughPostgres(ctx, d.URL, d.SQL, log); err != nil {
			return err
		}
	}
	events := &eventlog.Log{Broker: broker, Dialect: d.Dialect, Now: now}
	invites := &invite.Service{Keys: keys, Now: now, Broker: broker, ResendCooldown: cfg.ResendCooldown, Dialect: d.Dialect, Events: events,
		SMSRegions: cfg.SMSAllowedRegions}
	workspaces := &workspace.Service{Keys: keys, Now: now, Invites: invites, Events: events}
	// The outbox's fair share: on PostgreSQL a pool of its own, so requests
	// that take every connection of the main pool cannot starve it; on
	// SQLite (one writer) its writes get every other turn (db.WithPriority).
	// One connection more than it sends at once, for claiming the next
	// batch and for its NOTIFYs.
	outboxClient, closeOutbox, err := d.OutboxClient(cfg.OutboxConcurrency + 1)
	if err != nil {
		return err
	}
	defer closeOutbox()
	worker := &outbox.Worker{
		Concurrency: cfg.OutboxConcurrency,
		MaxAge:      cfg.OutboxMaxAge,
		Client:      outboxClient,
		Dialect:     d.Dialect,
		Sender:      sender,
		SMS:         newSMSSender(cfg, log),
		SMSLimits: outbox.SMSLimits{
			Regions: cfg.SMSAllowedRegions, PerNumber: cfg.SMSLimitPerNumber, NumberWindow: 10 * time.Minute, PerCountryDay: cfg.SMSLimitPerCountry,
		},
		Invites:         invites,
		Broker:          broker,
		Log:             log,
		Now:             now,
		AcceptURL:       cfg.AcceptURL,
		SignInURL:       cfg.PublicURL + "/",
		JoinRequestURL:  cfg.JoinRequestURL,
		MessageIDDomain: messageIDDomain(cfg.PublicURL),
		Accounts:        accounts,
		ResetURL:        cfg.ResetURL,
	}
	invites.Kick = worker.Kick
	workspaces.Kick = worker.Kick
	var m *metrics.Metrics
	if cfg.MetricsAddr != "" {
		m = metrics.New(d.SQL, worker.Stats, broker.Subscribers)
		worker.Metrics = m
		invites.Invited = m.Invited
		stopMetrics, err := serveMetrics(ctx, cfg.MetricsAddr, m, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	accounts.Kick = worker.Kick
	workerDone := make(chan struct{})
	go func() {
		defer close(workerDone)
		worker.Run(ctx)
		// Its kept SMTP sessions end with QUIT once nothing is in flight.
		if c, ok := sender.(io.Closer); ok {
			_ = c.Close()
		}
	}()
	hrs := &hr.Service{
		Client:   d.Client,
		Keys:     keys,
		Invites:  invites,
		Accounts: accounts,
		HTTP:     &hr.HTTP{AllowPrivate: cfg.HRAllowPrivateHosts},
		Now:      now,
		Log:      log,
	}
	// Every replica looks for due syncs; the lease lets one run each.
	go hrs.Run(ctx, cfg.HRSyncCheck)

	h, err := server.New(server.Options{
		DB:               d,
		Accounts:         accounts,
		Invites:          invites,
		Broker:           broker,
		ImportLimits:     cfg.ImportLimits,
		JoinURL:          cfg.JoinURL,
		Workspaces:       workspaces,
		Events:           events,
		WorkspaceLinkURL: cfg.WorkspaceLinkURL,
		Metrics:          m,
		Tracing:          tracing,
		LinkLimits: invite.LinkLimits{
			PerLink:    &ratelimit.Limiter{Limit: cfg.JoinLimitPerLink, Window: cfg.JoinLimitWindow},
			PerAddress: &ratelimit.Limiter{Limit: cfg.JoinLimitPerAddr, Window: cfg.JoinLimitWindow},
		},
		Log:            log,
		Limits:         cfg.Limits,
		AllowedOrigins: cfg.CORSAllowedOrigins,
		Introspection:  cfg.Introspection,
		HR:             hrs,
	})
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return h.BaseContext() },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	hs.RegisterOnShutdown(h.CloseSockets)

	printWelcome(stdout, cfg, d, boot)
	// Start-up garbage (migration, schema loading, the bootstrap admin's
	// password hash) would otherwise stay resident until enough new
	// allocation triggers a collection; an idle server never gets there.
	debug.FreeOSMemory()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	if ready != nil {
		ready(ln.Addr())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests and closing websockets")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	// The outbox stopped claiming with ctx; wait for its messages in flight
	// to be sent and recorded (at most its Drain), so none is sent twice.
	select {
	case <-workerDone:
	case <-sctx.Done():
		log.Warn("shutdown: the outbox did not finish in time; its unrecorded messages are retried after their lease")
	}
	return nil
}

// openDatabase opens the configured database and the keyring. With SQLite
// and no ADMIT_SECRET_KEY, a secret is generated once and kept next to the
// database file so restarts keep sessions valid.
func openDatabase(ctx context.Context, cfg config.Config, log *slog.Logger) (*db.DB, *secret.Keyring, error) {
	d, err := db.Open(cfg.DatabaseURL)
	if err != nil {
		return nil, nil, err
	}
	key := cfg.SecretKey
	if key == "" {
		if d.SQLitePath == "" {
			key = secret.Ephemeral()
			log.Warn("no ADMIT_SECRET_KEY and an in-memory database: using a random secret for this run")
		} else {
			var created bool
			key, created, err = secret.LoadOrCreateFile(d.SQLitePath + ".secret")
			if err != nil {
				d.Close()
				return nil, nil, err
			}
			if created {
				log.Info("generated a server secret", "file", d.SQLitePath+".secret")
			}
		}
	}
	keys, err := secret.New(key)
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	if err := d.Ping(ctx); err != nil {
		d.Close()
		return nil, nil, fmt.Errorf("database does not answer: %w", err)
	}
	return d, keys, nil
}

func createOrganization(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("create-organization", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "organization name")
	email := fs.String("admin-email", "", "first admin's email")
	pw := fs.String("admin-password", "", "first admin's password (at least 10 characters)")
	adminName := fs.String("admin-name", "", "first admin's full name")
	allowDup := fs.Bool("allow-duplicate-name", false, "create it even if an organization of this name exists")
	dbURL := fs.String("database-url", cmp.Or(getenv("DATABASE_URL"), "admit.db"), "database, as for the server ($DATABASE_URL)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" || *email == "" || *pw == "" {
		return errors.New("create-organization needs --name, --admin-email and --admin-password")
	}
	d, err := db.Open(*dbURL)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Migrate(ctx, nil); err != nil {
		return err
	}
	if !*allowDup {
		exists, err := account.OrganizationNameExists(ctx, d.Client, *name)
		if err != nil {
			return err
		}
		if exists {
			return fmt.Errorf("an organization named %q already exists; pass --allow-duplicate-name to create another", strings.TrimSpace(*name))
		}
	}
	org, _, err := account.CreateOrganization(ctx, d.Client, account.NewOrganization{
		Name: *name, AdminEmail: *email, AdminPassword: *pw, AdminName: *adminName,
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, org.ID)
	return nil
}

// resetPassword sets a user's password from the command line (an operator
// helping someone locked out) and ends their sessions. Without --password a
// password is generated and printed once.
func resetPassword(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reset-password", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "the account's email address")
	phoneNumber := fs.String("phone", "", "the account's phone number, instead of --email (with its country code, or in the organization's region with --organization-id)")
	pw := fs.String("password", "", "the new password (at least 10 characters); generated when empty")
	orgID := fs.Int("organization-id", 0, "the organization, when the address has accounts in several")
	dbURL := fs.String("database-url", cmp.Or(getenv("DATABASE_URL"), "admit.db"), "database, as for the server ($DATABASE_URL)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*email == "") == (*phoneNumber == "") {
		return errors.New("reset-password needs --email or --phone")
	}
	generated := *pw == ""
	if generated {
		*pw = rand.Text()[:20]
	}
	d, err := db.Open(*dbURL)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Migrate(ctx, nil); err != nil {
		return err
	}
	accounts := &account.Service{Dialect: d.Dialect, Now: now}
	var org *int
	if *orgID != 0 {
		org = orgID
	}
	u, err := accounts.OperatorResetPassword(ctx, d.Client, account.Login{Email: *email, Phone: *phoneNumber, OrgID: org}, *pw)
	if err != nil {
		return err
	}
	who := cmp.Or(derefString(u.Email), derefString(u.Phone))
	if generated {
		fmt.Fprintf(stdout, "New password for %s (shown only this once): %s\n", who, *pw)
	} else {
		fmt.Fprintf(stdout, "Password of %s changed.\n", who)
	}
	fmt.Fprintln(stdout, "Every session of the account has ended.")
	return nil
}

// firstQuery is the query the banner suggests; the README's quick start
// shows the same one (a test keeps them equal).
const firstQuery = `query { me { name email role { name } organization { name domains } } users(first: 10) { totalCount edges { node { email status role { name } } } } }`

func printWelcome(w io.Writer, cfg config.Config, d *db.DB, boot account.BootstrapResult) {
	url := cfg.PublicURL
	where := "PostgreSQL"
	if d.SQLitePath != "" {
		where = "SQLite file " + d.SQLitePath
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nAdmit is serving GraphiQL at %s/ and GraphQL at %s/query (%s).\n", url, url, where)
	if boot.Created {
		fmt.Fprintf(&b, "First run: created organization %q (ID %d) with admin %s.\n",
			boot.Organization.Name, boot.Organization.ID, *boot.Admin.Email)
		pw := "<ADMIT_BOOTSTRAP_ADMIN_PASSWORD>"
		if boot.GeneratedPassword != "" {
			pw = boot.GeneratedPassword
			fmt.Fprintf(&b, "Generated admin password (shown only this once): %s\n", pw)
		}
		fmt.Fprintf(&b, "\nSign in: open %s/ and run\n\n  mutation { signIn(input: {email: %q, password: %q}) { token user { name email } errors { code message } } }\n\n", url, *boot.Admin.Email, pw)
		fmt.Fprintf(&b, "then put {\"Authorization\": \"Bearer <token>\"} in GraphiQL's Headers tab and run\n\n  %s\n\n", firstQuery)
	} else {
		fmt.Fprintf(&b, "Sign in with signIn(input: {email, password}) and send the token as \"Authorization: Bearer <token>\".\n\n")
	}
	fmt.Fprint(w, b.String())
}

// serveMetrics serves /metrics on its own listener until stop is called.
func serveMetrics(ctx context.Context, addr string, m *metrics.Metrics, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("METRICS_ADDR %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "error", err)
		}
	}()
	log.Info("serving Prometheus metrics", "addr", ln.Addr().String()+"/metrics")
	return func() { _ = hs.Close() }, nil
}

// now is the server's clock, at PostgreSQL's microsecond precision, so an
// object's times read the same right after a write as on every later read.
func now() time.Time { return time.Now().Truncate(time.Microsecond) }

// newSender sends over SMTP when SMTP_URL is set, else prints to the log.
func newSender(cfg config.Config, log *slog.Logger) (mail.Sender, error) {
	if cfg.SMTPURL == "" {
		log.Info("SMTP_URL is not set: emails are printed to this log and kept in the outbox")
		return mail.LogSender{Log: log}, nil
	}
	// One kept session per message the outbox sends at once: a large
	// import pays one connection setup (TLS, AUTH) per session, not per
	// message (issue 13).
	s, err := mail.NewSMTP(cfg.SMTPURL, cfg.SMTPFrom, mail.WithReuse(cfg.OutboxConcurrency, mail.DefaultIdleTimeout))
	if err != nil {
		return nil, fmt.Errorf("SMTP_URL: %w", err)
	}
	return s, nil
}

// newSMSSender sends through Twilio when TWILIO_ACCOUNT_SID is set, else
// prints texts to the log.
func newSMSSender(cfg config.Config, log *slog.Logger) sms.Sender {
	if cfg.TwilioAccountSID == "" {
		log.Info("TWILIO_ACCOUNT_SID is not set: text messages are printed to this log and kept in the outbox")
		return sms.LogSender{Log: log}
	}
	return &sms.Twilio{
		AccountSID:          cfg.TwilioAccountSID,
		AuthToken:           cfg.TwilioAuthToken,
		From:                cfg.TwilioFrom,
		MessagingServiceSID: cfg.TwilioMessagingServiceSID,
		APIBase:             cfg.TwilioAPIBase,
	}
}

func messageIDDomain(publicURL string) string {
	if u, err := url.Parse(publicURL); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	return "admit.localhost"
}

func newLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
