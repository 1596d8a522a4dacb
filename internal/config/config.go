// Package config reads Admit's settings from environment variables, each
// overridable by a command-line flag of the same meaning.
package config

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"admit/internal/account"
	"admit/internal/db"
	"admit/internal/importfile"
	"admit/internal/phone"
	"admit/internal/secret"
	"admit/internal/server"
)

// Config is everything the server reads at start.
type Config struct {
	Addr               string
	DatabaseURL        string
	PublicURL          string
	CORSAllowedOrigins []string
	SecretKey          string
	SessionTTL         time.Duration
	Introspection      bool
	Limits             server.Limits
	LogLevel           string
	SMTPURL            string
	SMTPFrom           string
	// Twilio sends SMS when its account SID is set.
	TwilioAccountSID          string
	TwilioAuthToken           string
	TwilioFrom                string
	TwilioMessagingServiceSID string
	TwilioAPIBase             string
	// SMS guards (outbox.SMSLimits).
	SMSAllowedRegions  []string
	SMSLimitPerNumber  int
	SMSLimitPerCountry int
	AcceptURLTemplate  string
	JoinURLTemplate    string
	ResetURLTemplate   string
	JoinLimitPerLink   int
	JoinLimitPerAddr   int
	JoinLimitWindow    time.Duration
	ImportLimits       importfile.Limits
	ResendCooldown     time.Duration
	OutboxConcurrency  int
	MetricsAddr        string
	// HRAllowPrivateHosts lets HR connections reach loopback, private and
	// link-local addresses (tests, on-premises mocks).
	HRAllowPrivateHosts bool
	// HRSyncCheck is how often each replica looks for due HR syncs.
	HRSyncCheck time.Duration

	OutboxMaxAge time.Duration
	SignInLimits account.SignInLimits

	acceptTemplate, joinTemplate, resetTemplate string // as configured, "" when derived

	BootstrapOrganization  string
	BootstrapAdminEmail    string
	BootstrapAdminPassword string
}

// Setting documents one variable; the README's table is written from these.
type Setting struct {
	Env, Flag, Default, Help string
}

// Settings lists every setting in the order the README shows them.
var Settings = []Setting{
	{"ADDR", "addr", ":8080", "Address to listen on."},
	{"METRICS_ADDR", "metrics-addr", "", "Address of a separate listener serving Prometheus metrics at /metrics, such as 127.0.0.1:9090. Off when empty, so metrics are never public by accident."},
	{"DATABASE_URL", "database-url", "admit.db", "SQLite file path (default, embedded) or postgres://… for PostgreSQL. On PostgreSQL each connection keeps its 256 most recently used statements prepared; statement_cache_size=N in the URL changes the number, and statement_cache_size=0 turns this off, as it must be behind PgBouncer in transaction pooling mode."},
	{"PUBLIC_URL", "public-url", "", "Base of links in messages; http://localhost:<the port it listens on> when empty. Request headers never change it."},
	{"CORS_ALLOWED_ORIGINS", "cors-allowed-origins", "", "Comma-separated exact origins (https://app.example.com) allowed for CORS and websockets."},
	{"ADMIT_SECRET_KEY", "secret-key", "", "At least 32 characters (openssl rand -base64 32). Keys for token hashes and encryption are derived from it. Required with PostgreSQL; with SQLite it is generated on first run and kept in <database>.secret."},
	{"SESSION_TTL", "session-ttl", "168h", "How long a session token stays valid."},
	{"GRAPHQL_INTROSPECTION", "graphql-introspection", "true", "Serve the schema to introspection queries (GraphiQL needs it). Off also turns off field suggestions."},
	{"GRAPHQL_COMPLEXITY_LIMIT", "graphql-complexity-limit", "5000", "Maximum query cost; a connection costs its children times its page size."},
	{"GRAPHQL_DEPTH_LIMIT", "graphql-depth-limit", "12", "Maximum field nesting, not counting introspection."},
	{"GRAPHQL_TOKEN_LIMIT", "graphql-token-limit", "15000", "Maximum lexical tokens in one query document."},
	{"GRAPHQL_MAX_PAGE_SIZE", "graphql-max-page-size", "100", "Largest first/last; also the page a connection returns when neither is given."},
	{"GRAPHQL_MUTATION_LIMIT", "graphql-mutation-limit", "20", "Most root fields in one mutation operation (aliases count). Public, expensive fields such as signIn and acceptInvitation may appear only once in any operation."},
	{"MAX_RESPONSE_BYTES", "max-response-bytes", "8388608", "Largest response data; a bigger one is refused with RESPONSE_TOO_LARGE (ask for a smaller page)."},
	{"MAX_BODY_BYTES", "max-body-bytes", "1048576", "Largest JSON request body."},
	{"MAX_UPLOAD_BYTES", "max-upload-bytes", "6291456", "Largest multipart (upload) request body."},
	{"WS_INIT_TIMEOUT", "ws-init-timeout", "5s", "A websocket that sends no connection_init within this time is closed."},
	{"WS_KEEPALIVE", "ws-keepalive", "10s", "Websocket keep-alive and ping interval."},
	{"WS_MESSAGE_RATE", "ws-message-rate", "50", "Most messages a websocket may send in one second; a socket that sends more is closed with 4429."},
	{"WS_MAX_OPERATIONS", "ws-max-operations", "50", "Most operations (subscriptions included) running at once on one websocket; one more is answered with a RATE_LIMITED error."},
	{"WS_MAX_SOCKETS_PER_USER", "ws-max-sockets-per-user", "20", "Most authenticated websockets one user may hold open on one replica; one more is closed with 4429."},
	{"WS_SESSION_CHECK", "ws-session-check", "5s", "How often an open websocket re-checks its session. Sign-out and deactivation close sockets at once (4403); expiry within this time."},
	{"SMTP_URL", "smtp-url", "", "smtp://user:pass@host:587 (STARTTLS) or smtps://user:pass@host:465 (implicit TLS). Unset: messages are printed to the log and kept in the outbox."},
	{"SMTP_FROM", "smtp-from", "Admit <no-reply@localhost>", "Sender of every email."},
	{"TWILIO_ACCOUNT_SID", "twilio-account-sid", "", "Twilio account SID (AC…): with it, invitations to phone numbers are sent as SMS through Twilio's Messages API. Unset: texts are printed to the log and kept in the outbox."},
	{"TWILIO_AUTH_TOKEN", "twilio-auth-token", "", "Twilio auth token (or an API key secret); required with TWILIO_ACCOUNT_SID. Never logged."},
	{"TWILIO_FROM", "twilio-from", "", "Sender of every SMS: a Twilio number in E.164 or an alphanumeric sender ID. Give it or TWILIO_MESSAGING_SERVICE_SID."},
	{"TWILIO_MESSAGING_SERVICE_SID", "twilio-messaging-service-sid", "", "Twilio Messaging Service (MG…) to send from instead of TWILIO_FROM."},
	{"TWILIO_API_BASE", "twilio-api-base", "https://api.twilio.com", "Base URL of Twilio's REST API: a regional host (https://api.dublin.ie1.twilio.com) or a test server."},
	{"SMS_ALLOWED_REGIONS", "sms-allowed-regions", "", "Comma-separated regions (ISO 3166 codes such as GB,IE,US) whose numbers may be texted; others are refused with PHONE_NOT_ALLOWED. Unset: every region. Premium-rate and shared-cost numbers are never texted."},
	{"SMS_LIMIT_PER_NUMBER", "sms-limit-per-number", "3", "Texts sent to one number per 10 minutes; more wait in the outbox."},
	{"SMS_LIMIT_PER_COUNTRY", "sms-limit-per-country", "1000", "Texts sent to one calling code (+44, +1, …) per 24 hours; more wait in the outbox, so a burst to one country cannot run up a bill."},
	{"OUTBOX_CONCURRENCY", "outbox-concurrency", "4", "Messages each replica sends at once, and the most SMTP sessions it keeps open between messages (RSET between them; closed after 30 s idle). Raise it for a fast relay; lower it to 1 for a provider that limits parallel connections."},
	{"OUTBOX_MAX_AGE", "outbox-max-age", "24h", "How long a message that fails for a temporary reason (the relay is down) is retried, with backoff capped at an hour; then it is FAILED, and admins may retryDeliveries."},
	{"ACCEPT_URL_TEMPLATE", "accept-url-template", "", "Link in invitation emails, with {token} where the token goes (for a React app hosting the page). Default: PUBLIC_URL/invitations/accept?token={token}."},
	{"RESET_URL_TEMPLATE", "reset-url-template", "", "Link in password reset emails, with {token} where the token goes; the page there calls resetPassword(input: {token, password}). Default: PUBLIC_URL/reset-password?token={token}."},
	{"JOIN_URL_TEMPLATE", "join-url-template", "", "URL of invite links, with {token} where the token goes. Default: PUBLIC_URL/join?token={token}."},
	{"SIGNIN_LIMIT_PER_ACCOUNT", "signin-limit-per-account", "10", "Failed sign-ins allowed for one email address per SIGNIN_LIMIT_WINDOW, shared by all replicas (kept in the database). Unknown addresses are limited alike."},
	{"SIGNIN_LIMIT_PER_ADDRESS", "signin-limit-per-address", "100", "Failed sign-ins allowed from one client address (an IPv6 /64) per SIGNIN_LIMIT_WINDOW, shared by all replicas."},
	{"SIGNIN_LIMIT_WINDOW", "signin-limit-window", "15m", "The window of the sign-in limits."},
	{"JOIN_LIMIT_PER_LINK", "join-limit-per-link", "300", "Joins allowed through one invite link per JOIN_LIMIT_WINDOW (per replica)."},
	{"JOIN_LIMIT_PER_ADDRESS", "join-limit-per-address", "20", "Join attempts allowed from one client address per JOIN_LIMIT_WINDOW (per replica)."},
	{"JOIN_LIMIT_WINDOW", "join-limit-window", "1h", "The window of the join limits."},
	{"IMPORT_MAX_BYTES", "import-max-bytes", "5242880", "Largest invitation file."},
	{"IMPORT_MAX_ROWS", "import-max-rows", "50000", "Most rows in an invitation file."},
	{"INVITE_RESEND_COOLDOWN", "invite-resend-cooldown", "1m", "Least time between two sends of one invitation."},
	{"ADMIT_HR_ALLOW_PRIVATE_HOSTS", "hr-allow-private-hosts", "false", "Let HR connections reach loopback, private and link-local addresses (checked on the dialled address, redirects included). Only for tests and on-premises mocks; base URLs must be https either way."},
	{"HR_SYNC_CHECK_INTERVAL", "hr-sync-check-interval", "1m", "How often each replica looks for due scheduled HR syncs; a lease in the database lets exactly one replica run each."},
	{"LOG_LEVEL", "log-level", "info", "debug, info, warn or error."},
	{"ADMIT_BOOTSTRAP_ORGANIZATION", "bootstrap-organization", "Example", "First run only: name of the first organization."},
	{"ADMIT_BOOTSTRAP_ADMIN_EMAIL", "bootstrap-admin-email", "admin@example.com", "First run only: the first admin's email."},
	{"ADMIT_BOOTSTRAP_ADMIN_PASSWORD", "bootstrap-admin-password", "", "First run only: the first admin's password; generated and printed once when empty."},
}

// Load reads the settings from env, then flags in args override them.
func Load(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	fs := flag.NewFlagSet("admit", flag.ContinueOnError)
	fs.SetOutput(out)
	vals := map[string]*string{}
	for _, s := range Settings {
		v := getenv(s.Env)
		if v == "" {
			v = s.Default
		}
		vals[s.Env] = fs.String(s.Flag, v, s.Help+" ($"+s.Env+")")
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	get := func(k string) string { return strings.TrimSpace(*vals[k]) }
	c := Config{
		Addr:                      get("ADDR"),
		MetricsAddr:               get("METRICS_ADDR"),
		DatabaseURL:               get("DATABASE_URL"),
		PublicURL:                 strings.TrimRight(get("PUBLIC_URL"), "/"),
		SecretKey:                 get("ADMIT_SECRET_KEY"),
		LogLevel:                  get("LOG_LEVEL"),
		SMTPURL:                   get("SMTP_URL"),
		SMTPFrom:                  get("SMTP_FROM"),
		TwilioAccountSID:          get("TWILIO_ACCOUNT_SID"),
		TwilioAuthToken:           get("TWILIO_AUTH_TOKEN"),
		TwilioFrom:                get("TWILIO_FROM"),
		TwilioMessagingServiceSID: get("TWILIO_MESSAGING_SERVICE_SID"),
		TwilioAPIBase:             get("TWILIO_API_BASE"),
		BootstrapOrganization:     get("ADMIT_BOOTSTRAP_ORGANIZATION"),
		BootstrapAdminEmail:       get("ADMIT_BOOTSTRAP_ADMIN_EMAIL"),
		BootstrapAdminPassword:    *vals["ADMIT_BOOTSTRAP_ADMIN_PASSWORD"],
	}
	for _, o := range strings.Split(get("CORS_ALLOWED_ORIGINS"), ",") {
		if o = strings.TrimRight(strings.TrimSpace(o), "/"); o != "" {
			c.CORSAllowedOrigins = append(c.CORSAllowedOrigins, o)
		}
	}
	if c.TwilioAccountSID != "" {
		switch {
		case c.TwilioAuthToken == "":
			return c, errors.New("TWILIO_AUTH_TOKEN is required with TWILIO_ACCOUNT_SID")
		case c.TwilioFrom == "" && c.TwilioMessagingServiceSID == "":
			return c, errors.New("TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID is required with TWILIO_ACCOUNT_SID")
		}
		if u, err := url.Parse(c.TwilioAPIBase); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return c, fmt.Errorf("TWILIO_API_BASE: %q is not an http(s) URL", c.TwilioAPIBase)
		}
	}
	if err := server.ValidateOrigins(c.CORSAllowedOrigins); err != nil {
		return Config{}, err
	}
	var errs []string
	dur := func(k string) time.Duration {
		d, err := time.ParseDuration(get(k))
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Sprintf("%s: %q is not a positive duration such as 10s or 168h", k, get(k)))
		}
		return d
	}
	num := func(k string) int64 {
		n, err := strconv.ParseInt(get(k), 10, 64)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Sprintf("%s: %q is not a positive whole number", k, get(k)))
		}
		return n
	}
	c.SessionTTL = dur("SESSION_TTL")
	c.ResendCooldown = dur("INVITE_RESEND_COOLDOWN")
	c.OutboxConcurrency = int(num("OUTBOX_CONCURRENCY"))
	c.OutboxMaxAge = dur("OUTBOX_MAX_AGE")
	c.SMSLimitPerNumber = int(num("SMS_LIMIT_PER_NUMBER"))
	c.SMSLimitPerCountry = int(num("SMS_LIMIT_PER_COUNTRY"))
	for _, r := range strings.Split(get("SMS_ALLOWED_REGIONS"), ",") {
		if r = strings.ToUpper(strings.TrimSpace(r)); r == "" {
			continue
		}
		if !phone.ValidRegion(r) {
			errs = append(errs, fmt.Sprintf("SMS_ALLOWED_REGIONS: %q is not a region code such as GB or US", r))
		}
		c.SMSAllowedRegions = append(c.SMSAllowedRegions, r)
	}
	c.ImportLimits = importfile.Limits{MaxBytes: num("IMPORT_MAX_BYTES"), MaxRows: int(num("IMPORT_MAX_ROWS"))}
	c.acceptTemplate, c.joinTemplate, c.resetTemplate = get("ACCEPT_URL_TEMPLATE"), get("JOIN_URL_TEMPLATE"), get("RESET_URL_TEMPLATE")
	c.templates()
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Sprintf("PUBLIC_URL: %q must be an absolute http(s) URL", c.PublicURL))
		}
	}
	for k, tmpl := range map[string]string{"ACCEPT_URL_TEMPLATE": c.acceptTemplate, "JOIN_URL_TEMPLATE": c.joinTemplate, "RESET_URL_TEMPLATE": c.resetTemplate} {
		if tmpl == "" {
			continue // derived from PUBLIC_URL
		}
		if u, err := url.Parse(strings.ReplaceAll(tmpl, "{token}", "x")); err != nil ||
			(u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || !strings.Contains(tmpl, "{token}") {
			errs = append(errs, fmt.Sprintf("%s: %q must be an absolute http(s) URL containing {token}", k, tmpl))
		}
	}
	c.JoinLimitPerLink = int(num("JOIN_LIMIT_PER_LINK"))
	c.JoinLimitPerAddr = int(num("JOIN_LIMIT_PER_ADDRESS"))
	c.JoinLimitWindow = dur("JOIN_LIMIT_WINDOW")
	c.SignInLimits = account.SignInLimits{
		PerAccount: int(num("SIGNIN_LIMIT_PER_ACCOUNT")),
		PerAddress: int(num("SIGNIN_LIMIT_PER_ADDRESS")),
		Window:     dur("SIGNIN_LIMIT_WINDOW"),
	}
	intro, err := strconv.ParseBool(get("GRAPHQL_INTROSPECTION"))
	if err != nil {
		errs = append(errs, fmt.Sprintf("GRAPHQL_INTROSPECTION: %q is not true or false", get("GRAPHQL_INTROSPECTION")))
	}
	c.Introspection = intro
	hrPrivate, err := strconv.ParseBool(get("ADMIT_HR_ALLOW_PRIVATE_HOSTS"))
	if err != nil {
		errs = append(errs, fmt.Sprintf("ADMIT_HR_ALLOW_PRIVATE_HOSTS: %q is not true or false", get("ADMIT_HR_ALLOW_PRIVATE_HOSTS")))
	}
	c.HRAllowPrivateHosts = hrPrivate
	c.HRSyncCheck = dur("HR_SYNC_CHECK_INTERVAL")
	c.Limits = server.Limits{
		MaxBodyBytes:        num("MAX_BODY_BYTES"),
		MaxUploadBytes:      num("MAX_UPLOAD_BYTES"),
		ComplexityLimit:     int(num("GRAPHQL_COMPLEXITY_LIMIT")),
		DepthLimit:          int(num("GRAPHQL_DEPTH_LIMIT")),
		ParserTokens:        int(num("GRAPHQL_TOKEN_LIMIT")),
		MaxPageSize:         int(num("GRAPHQL_MAX_PAGE_SIZE")),
		MaxRootMutations:    int(num("GRAPHQL_MUTATION_LIMIT")),
		MaxResponseBytes:    int(num("MAX_RESPONSE_BYTES")),
		WSInitTimeout:       dur("WS_INIT_TIMEOUT"),
		WSKeepAlive:         dur("WS_KEEPALIVE"),
		WSMessageRate:       int(num("WS_MESSAGE_RATE")),
		WSMaxOperations:     int(num("WS_MAX_OPERATIONS")),
		WSMaxSocketsPerUser: int(num("WS_MAX_SOCKETS_PER_USER")),
		WSSessionCheck:      dur("WS_SESSION_CHECK"),
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("configuration: %s", strings.Join(errs, "; "))
	}
	if db.IsPostgres(c.DatabaseURL) && c.SecretKey == "" {
		return Config{}, fmt.Errorf("configuration: ADMIT_SECRET_KEY is required with PostgreSQL: %w", secret.ErrTooShort)
	}
	if c.SecretKey != "" && len(c.SecretKey) < secret.MinLength {
		return Config{}, fmt.Errorf("configuration: %w", secret.ErrTooShort)
	}
	return c, nil
}

// templates derives the link templates from PublicURL unless they were set.
func (c *Config) templates() {
	c.AcceptURLTemplate = cmp.Or(c.acceptTemplate, c.PublicURL+"/invitations/accept?token={token}")
	c.JoinURLTemplate = cmp.Or(c.joinTemplate, c.PublicURL+"/join?token={token}")
	c.ResetURLTemplate = cmp.Or(c.resetTemplate, c.PublicURL+"/reset-password?token={token}")
}

// DefaultPublicURL sets PublicURL, and the link templates that follow from
// it, when PUBLIC_URL was not given: the server calls it once it knows the
// port it listens on, so links point where it really is.
func (c *Config) DefaultPublicURL(u string) {
	if c.PublicURL != "" {
		return
	}
	c.PublicURL = strings.TrimRight(u, "/")
	c.templates()
}

// WorkspaceLinkURL returns the shareable URL for a workspace link token.
func (c Config) WorkspaceLinkURL(token string) string {
	return c.PublicURL + "/workspaces/join?token=" + url.QueryEscape(token)
}

// JoinRequestURL returns the link, sent to a join requester, that confirms
// the request and then shows it.
func (c Config) JoinRequestURL(token string) string {
	return c.PublicURL + "/workspaces/request?token=" + url.QueryEscape(token)
}

// JoinURL returns the shareable URL for an invite link token.
func (c Config) JoinURL(token string) string {
	return strings.ReplaceAll(c.JoinURLTemplate, "{token}", url.QueryEscape(token))
}

// ResetURL returns the link for a password reset token.
func (c Config) ResetURL(token string) string {
	return strings.ReplaceAll(c.ResetURLTemplate, "{token}", url.QueryEscape(token))
}

// AcceptURL returns the link for an invitation token. Request headers
// (Host, X-Forwarded-Host, Origin) never reach it: it is built only from
// configuration.
func (c Config) AcceptURL(token string) string {
	return strings.ReplaceAll(c.AcceptURLTemplate, "{token}", url.QueryEscape(token))
}
