package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Default timeouts: long enough for a slow relay, short enough that a dead
// one does not hold an outbox worker for long.
const (
	defaultDialTimeout  = 10 * time.Second
	defaultTotalTimeout = 30 * time.Second
	// DefaultIdleTimeout is how long a reused session waits for the next
	// message before it is closed: well inside the 5 minutes after which
	// relays (RFC 5321 4.5.3.2.7, Postfix's smtpd_timeout) hang up.
	DefaultIdleTimeout = 30 * time.Second
)

// SMTP is a Sender that submits messages to an SMTP server. By default each
// message has a connection of its own; WithReuse keeps a few sessions open
// between messages (RSET between them) so that a large import does not pay
// a dial, EHLO, STARTTLS and AUTH per message. Send is safe for concurrent
// use; Close ends the idle sessions.
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

	poolSize int           // sessions kept open between messages (0: none)
	idleFor  time.Duration // an idle session is closed after this
	mu       sync.Mutex
	idle     []*smtpSession // most recently used last
	closed   bool
}

// smtpSession is one open SMTP connection past EHLO, STARTTLS and AUTH.
type smtpSession struct {
	conn  net.Conn
	c     *smtp.Client
	timer *time.Timer // closes it when it has been idle too long
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

// WithReuse keeps up to size sessions open to the server between messages
// (the outbox passes OUTBOX_CONCURRENCY, so it never holds more sessions
// than it sends messages at once). A message on a kept session starts with
// RSET; a session the server has closed, or that fails before the message
// is handed over, is replaced by a new connection at once, and one idle
// for idle (DefaultIdleTimeout when zero or negative) is closed with QUIT.
// size 0, the default, opens one connection per message.
func WithReuse(size int, idle time.Duration) SMTPOption {
	return func(s *SMTP) {
		s.poolSize = max(size, 0)
		s.idleFor = idle
		if idle <= 0 {
			s.idleFor = DefaultIdleTimeout
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
	for {
		ss, reused := s.take(), true
		if ss == nil {
			reused = false
			if ss, err = s.open(ctx); err != nil {
				return s.withCause(ctx, err)
			}
		}
		var handedOver bool
		handedOver, err = s.transact(ctx, ss, reused, to, msg)
		if err == nil || !reused || handedOver || !stale(err) || ctx.Err() != nil {
			return s.withCause(ctx, err)
		}
		// A kept session failed before the message was handed over (the
		// server hung up while it was idle, or answered 421): nothing was
		// delivered, so the message goes out on the next session, or on a
		// new connection once the kept ones are used up.
	}
}

// withCause says why a connection failed when ctx ended; errors.Is finds
// the ctx error.
func (s *SMTP) withCause(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	return err
}

// open connects and runs the greeting, EHLO, STARTTLS and AUTH.
func (s *SMTP) open(ctx context.Context) (*smtpSession, error) {
	conn, err := s.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("mail: connect to %s: %w", s.addr, err)
	}
	ss := &smtpSession{conn: conn}
	release, err := s.bind(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("mail: connect to %s: %w", s.addr, err)
	}
	defer release()
	if ss.c, err = s.hello(conn); err != nil {
		conn.Close()
		return nil, err
	}
	return ss, nil
}

// bind makes ctx's deadline and cancellation the connection's: net/smtp
// takes no context, so a cancelled ctx unblocks the client by moving the
// connection's deadline to the past. release reports whether ctx left the
// connection usable, and clears the deadline then.
func (s *SMTP) bind(ctx context.Context, conn net.Conn) (release func() bool, err error) {
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	return func() bool {
		if !stop() {
			return false
		}
		return conn.SetDeadline(time.Time{}) == nil
	}, nil
}

// transact sends one message on ss and then keeps or closes ss. handedOver
// reports whether the message may have reached the server (DATA was
// started), so that a failure then must not be retried on another session.
func (s *SMTP) transact(ctx context.Context, ss *smtpSession, reused bool, to *netmail.Address, msg []byte) (handedOver bool, err error) {
	release, err := s.bind(ctx, ss.conn)
	if err != nil {
		ss.conn.Close()
		return false, fmt.Errorf("mail: connect to %s: %w", s.addr, err)
	}
	handedOver, err = s.deliver(ss.c, reused, to, msg)
	if !release() || !reusable(err) {
		ss.conn.Close()
		return handedOver, err
	}
	s.keep(ss)
	return handedOver, err
}

// reusable reports whether a session is still in a known state after a
// message ended with err: a reply from the server leaves it so, unless it
// is 421 (the server is closing the connection); a network error does not.
func reusable(err error) bool {
	return err == nil || !stale(err)
}

// stale reports whether err says the session is gone rather than answer
// this message: anything but a reply, or a 421 reply.
func stale(err error) bool {
	var tp *textproto.Error
	return !errors.As(err, &tp) || tp.Code == 421
}

// take returns a kept session, or nil.
func (s *SMTP) take() *smtpSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.idle)
	if n == 0 {
		return nil
	}
	ss := s.idle[n-1]
	s.idle = s.idle[:n-1]
	// If the timer fired already, its expire finds ss gone and leaves it.
	ss.timer.Stop()
	return ss
}

// keep puts ss back for the next message, or ends it when no more sessions
// are kept.
func (s *SMTP) keep(ss *smtpSession) {
	s.mu.Lock()
	if s.closed || len(s.idle) >= s.poolSize {
		s.mu.Unlock()
		s.quit(ss)
		return
	}
	s.idle = append(s.idle, ss)
	ss.timer = time.AfterFunc(s.idleFor, func() { s.expire(ss) })
	s.mu.Unlock()
}

// expire closes ss if it is still idle.
func (s *SMTP) expire(ss *smtpSession) {
	s.mu.Lock()
	i := slices.Index(s.idle, ss)
	if i >= 0 {
		s.idle = slices.Delete(s.idle, i, i+1)
	}
	s.mu.Unlock()
	if i >= 0 {
		s.quit(ss)
	}
}

// quit ends a session politely, without waiting long for the server.
func (s *SMTP) quit(ss *smtpSession) {
	_ = ss.conn.SetDeadline(time.Now().Add(5 * time.Second))
	_ = ss.c.Quit()
	_ = ss.conn.Close()
}

// Close ends the kept sessions with QUIT; later messages still go out, one
// connection each.
func (s *SMTP) Close() error {
	s.mu.Lock()
	idle := s.idle
	s.idle, s.closed = nil, true
	s.mu.Unlock()
	for _, ss := range idle {
		ss.timer.Stop()
		s.quit(ss)
	}
	return nil
}

// kept reports how many sessions are kept open now (for tests).
func (s *SMTP) kept() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.idle)
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

// hello starts the SMTP session on conn: greeting, EHLO, STARTTLS, AUTH.
func (s *SMTP) hello(conn net.Conn) (*smtp.Client, error) {
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return nil, s.stepError("greeting", err)
	}
	// Hello explicitly: Extension hides a failed EHLO as "no such
	// extension", which would turn a network error into a missing
	// STARTTLS.
	if err := c.Hello("localhost"); err != nil {
		return nil, s.stepError("EHLO", err)
	}
	if !s.implicitTLS {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(s.tlsConfig); err != nil {
				return nil, s.stepError("STARTTLS", err)
			}
		} else if s.auth {
			// Anyone on the path can strip STARTTLS from the EHLO reply;
			// sending the password anyway would hand it to them.
			return nil, permanentf("mail: %s does not offer STARTTLS; refusing to send the password in clear", s.addr)
		}
	}
	if s.auth {
		ok, mechs := c.Extension("AUTH")
		if !ok || !slices.Contains(strings.Fields(strings.ToUpper(mechs)), "PLAIN") {
			return nil, permanentf("mail: %s does not offer AUTH PLAIN", s.addr)
		}
		if err := c.Auth(plainAuth{username: s.username, password: s.password}); err != nil {
			return nil, s.stepError("AUTH", err)
		}
	}
	return c, nil
}

// deliver runs one mail transaction on c; on a kept session it first
// resets what the last one left (RSET), which also finds out whether the
// server is still there.
func (s *SMTP) deliver(c *smtp.Client, reused bool, to *netmail.Address, msg []byte) (handedOver bool, err error) {
	if reused {
		if err := c.Reset(); err != nil {
			return false, s.stepError("RSET", err)
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return false, s.stepError("MAIL FROM", err)
	}
	if err := c.Rcpt(to.Address); err != nil {
		return false, s.stepError("RCPT TO", err)
	}
	w, err := c.Data()
	if err != nil {
		return false, s.stepError("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return true, s.stepError("DATA", err)
	}
	// Close reads the server's verdict on the message.
	if err := w.Close(); err != nil {
		return true, s.stepError("DATA", err)
	}
	return true, nil
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
