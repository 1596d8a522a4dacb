package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/smtp"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Default timeouts: long enough for a slow relay, short enough that a dead
// one does not hold an outbox worker for long.
const (
	defaultDialTimeout  = 10 * time.Second
	defaultTotalTimeout = 30 * time.Second
)

// SMTP is a Sender that submits messages to an SMTP server, one connection
// per message: pooling would add stale-connection failures, and the outbox
// worker gets its speed on large imports from sending several messages at
// once (OUTBOX_CONCURRENCY) instead. Send is safe for concurrent use.
type SMTP struct {
	host        string // for certificate checks
	addr        string // host:port, safe to show in errors
	implicitTLS bool   // smtps://
	username    string
	password    string
	auth        bool // credentials were given in the URL
	from        *netmail.Address
	tlsConfig   *tls.Config
	dialTimeout time.Duration
	total       time.Duration
}

var _ Sender = (*SMTP)(nil)

// SMTPOption configures an SMTP sender.
type SMTPOption func(*SMTP)

// WithTLSConfig sets the TLS configuration for STARTTLS and implicit TLS;
// tests pass one that trusts their self-signed certificate. Its ServerName
// is set to the URL's host when empty. nil keeps the default: the system
// roots with ServerName = host.
func WithTLSConfig(c *tls.Config) SMTPOption {
	return func(s *SMTP) { s.tlsConfig = c }
}

// WithTimeout sets the dial timeout (default 10s, including the TLS
// handshake for smtps) and the overall deadline of one message from dial to
// the server's reply to DATA (default 30s; the context's deadline wins when
// sooner). A zero or negative value keeps the default.
func WithTimeout(dial, total time.Duration) SMTPOption {
	return func(s *SMTP) {
		if dial > 0 {
			s.dialTimeout = dial
		}
		if total > 0 {
			s.total = total
		}
	}
}

// NewSMTP returns a Sender for rawURL:
//
//   - smtp://user:pass@host:port connects in clear and upgrades with
//     STARTTLS whenever the server offers it. If the server does not offer
//     it and the URL has credentials, Send fails permanently rather than
//     send the password in clear. The default port is 587.
//   - smtps://user:pass@host:port uses implicit TLS; the default port is 465.
//
// Credentials are optional and are sent with AUTH PLAIN, only over TLS.
// from is both the envelope sender and the From header, e.g.
// `Admit <no-reply@example.com>`. Errors never contain the URL or the
// password.
func NewSMTP(rawURL, from string, opts ...SMTPOption) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error quotes the whole URL, password included.
		return nil, errors.New("mail: SMTP URL is not a valid URL")
	}
	s := &SMTP{dialTimeout: defaultDialTimeout, total: defaultTotalTimeout}
	var port string
	switch u.Scheme {
	case "smtp":
		port = "587"
	case "smtps":
		s.implicitTLS = true
		port = "465"
	default:
		return nil, fmt.Errorf("mail: SMTP URL scheme must be smtp or smtps, not %q", u.Scheme)
	}
	s.host = u.Hostname()
	if s.host == "" {
		return nil, errors.New("mail: SMTP URL has no host")
	}
	if p := u.Port(); p != "" {
		port = p
	}
	// Nothing reads a path or a query, so one is a typo or a setting we
	// would silently ignore.
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("mail: SMTP URL must have no path, query or fragment")
	}
	s.addr = net.JoinHostPort(s.host, port)
	if u.User != nil {
		s.username = u.User.Username()
		s.password, _ = u.User.Password()
		s.auth = s.username != "" || s.password != ""
	}
	s.from, err = parseAddress("from", from)
	if err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	for _, opt := range opts {
		opt(s)
	}
	// A copy, so later changes by the caller do not race with Send.
	if s.tlsConfig == nil {
		s.tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	} else {
		s.tlsConfig = s.tlsConfig.Clone()
	}
	if s.tlsConfig.ServerName == "" {
		s.tlsConfig.ServerName = s.host
	}
	return s, nil
}

// String describes the server without its credentials, so that logging an
// *SMTP with %v cannot print the password.
func (s *SMTP) String() string {
	scheme := "smtp"
	if s.implicitTLS {
		scheme = "smtps"
	}
	return scheme + "://" + s.addr
}

// Send delivers m to m.To. It validates and builds the message before
// connecting, so a bad message fails permanently without network traffic.
func (s *SMTP) Send(ctx context.Context, m Message) (err error) {
	to, err := parseAddress("recipient", m.To)
	if err != nil {
		return permanentf("mail: %w", err)
	}
	msg, err := buildMessage(s.from, to, m, time.Now())
	if err != nil {
		return err
	}
	defer func() { err = s.redact(err) }()

	// WithTimeout keeps the parent's deadline when it is sooner.
	ctx, cancel := context.WithTimeout(ctx, s.total)
	defer cancel()
	conn, err := s.dial(ctx)
	if err != nil {
		return fmt.Errorf("mail: connect to %s: %w", s.addr, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return fmt.Errorf("mail: connect to %s: %w", s.addr, err)
	}
	// net/smtp takes no context: a cancelled ctx unblocks the client by
	// moving the connection's deadline to the past.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	err = s.deliver(conn, to, msg)
	if err != nil && ctx.Err() != nil {
		// Say why the connection failed; errors.Is finds the ctx error.
		err = fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	return err
}

// dial connects to the server, with the TLS handshake for smtps.
func (s *SMTP) dial(ctx context.Context) (net.Conn, error) {
	d := &net.Dialer{Timeout: s.dialTimeout}
	if s.implicitTLS {
		td := &tls.Dialer{NetDialer: d, Config: s.tlsConfig}
		return td.DialContext(ctx, "tcp", s.addr)
	}
	return d.DialContext(ctx, "tcp", s.addr)
}

// deliver runs one SMTP transaction on conn.
func (s *SMTP) deliver(conn net.Conn, to *netmail.Address, msg []byte) error {
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return s.stepError("greeting", err)
	}
	defer c.Close()
	// Hello explicitly: Extension hides a failed EHLO as "no such
	// extension", which would turn a network error into a missing
	// STARTTLS.
	if err := c.Hello("localhost"); err != nil {
		return s.stepError("EHLO", err)
	}
	if !s.implicitTLS {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(s.tlsConfig); err != nil {
				return s.stepError("STARTTLS", err)
			}
		} else if s.auth {
			// Anyone on the path can strip STARTTLS from the EHLO reply;
			// sending the password anyway would hand it to them.
			return permanentf("mail: %s does not offer STARTTLS; refusing to send the password in clear", s.addr)
		}
	}
	if s.auth {
		ok, mechs := c.Extension("AUTH")
		if !ok || !slices.Contains(strings.Fields(strings.ToUpper(mechs)), "PLAIN") {
			return permanentf("mail: %s does not offer AUTH PLAIN", s.addr)
		}
		if err := c.Auth(plainAuth{username: s.username, password: s.password}); err != nil {
			return s.stepError("AUTH", err)
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return s.stepError("MAIL FROM", err)
	}
	if err := c.Rcpt(to.Address); err != nil {
		return s.stepError("RCPT TO", err)
	}
	w, err := c.Data()
	if err != nil {
		return s.stepError("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return s.stepError("DATA", err)
	}
	// Close reads the server's verdict on the message.
	if err := w.Close(); err != nil {
		return s.stepError("DATA", err)
	}
	// The server has taken the message: a failed QUIT must not cause a
	// retry that would deliver it twice.
	_ = c.Quit()
	return nil
}

// stepError names the SMTP step that failed. err keeps its
// *textproto.Error, whose code IsPermanent reads.
func (s *SMTP) stepError(step string, err error) error {
	return fmt.Errorf("mail: %s %s: %w", s.addr, step, err)
}

// redact removes the password from err's text in case a server or a
// library quoted it back. The error chain is dropped then, since its
// links still hold the password; permanence is kept.
func (s *SMTP) redact(err error) error {
	if err == nil || s.password == "" || !strings.Contains(err.Error(), s.password) {
		return err
	}
	red := errors.New(strings.ReplaceAll(err.Error(), s.password, "[redacted]"))
	if IsPermanent(err) {
		return permanent(red)
	}
	return red
}

// plainAuth is AUTH PLAIN that refuses a connection without TLS, even to
// localhost, unlike smtp.PlainAuth: Send checks this already, and this is
// the second lock on the same door.
type plainAuth struct{ username, password string }

// Start sends the credentials as the initial response, only over TLS.
func (a plainAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS {
		return "", nil, permanentf("mail: refusing AUTH PLAIN without TLS")
	}
	return "PLAIN", []byte("\x00" + a.username + "\x00" + a.password), nil
}

// Next accepts the server's final reply and refuses any challenge.
func (a plainAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if more {
		// PLAIN is one step; a challenge means a confused server.
		return nil, permanentf("mail: unexpected AUTH PLAIN challenge")
	}
	return nil, nil
}
