package mail

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"net/textproto"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// The tests talk to a real SMTP server (emersion/go-smtp) on 127.0.0.1, so
// what they check is what a mail server sees on the wire.

const (
	testFrom     = "Admit <no-reply@example.com>"
	testUser     = "admit-mailer"
	testPassword = "s3cret/P@ss:w0rd-9f2c" // has URL-special characters on purpose
)

type tlsMode int

const (
	plainTCP    tlsMode = iota // no TLS at all
	startTLS                   // offers STARTTLS
	implicitTLS                // TLS from the first byte (smtps)
)

// serverOptions configure a test SMTP server.
type serverOptions struct {
	tls      tlsMode
	user     string // "" → the server offers no AUTH
	password string
	rcptErr  error // returned to RCPT TO
	dataErr  error // returned after DATA
}

// received is one message the test server accepted.
type received struct {
	from string
	to   []string
	data []byte
	tls  bool // the transaction ran over TLS
}

// testServer records everything the client said that matters to the tests.
type testServer struct {
	addr  string
	opts  serverOptions
	certs *x509.CertPool // trusts the server's certificate
	mu    sync.Mutex
	mails []received
	auths []string     // "user:password" of every AUTH attempt
	conns int          // TCP connections (go-smtp starts a new session after STARTTLS on the same one)
	live  []*smtp.Conn // every connection, for dropping them
	// nextMailErr, when set, answers the next MAIL FROM once.
	nextMailErr error
	script      lockedBuffer // the whole SMTP conversation, both directions
}

// dropAll closes every connection from the server's side, as a relay that
// restarts or times out idle clients does.
func (s *testServer) dropAll() {
	s.mu.Lock()
	live := s.live
	s.live = nil
	s.mu.Unlock()
	for _, c := range live {
		_ = c.Close()
	}
}

func (s *testServer) snapshot() (mails []received, auths []string, conns int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.mails...), append([]string(nil), s.auths...), s.conns
}

// tlsConfig is the client configuration that trusts this server.
func (s *testServer) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: s.certs}
}

// url is the SMTP URL of this server, with credentials when user != "".
func (s *testServer) url(user, password string) string {
	u := &url.URL{Scheme: "smtp", Host: s.addr}
	if s.opts.tls == implicitTLS {
		u.Scheme = "smtps"
	}
	if user != "" {
		u.User = url.UserPassword(user, password)
	}
	return u.String()
}

// lockedBuffer is a bytes.Buffer that the server's connection goroutines
// and the test can share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// session is one SMTP connection to the test server.
type session struct {
	srv    *testServer
	conn   *smtp.Conn
	authed bool
	from   string
	to     []string
}

func (s *session) AuthMechanisms() []string {
	if s.srv.opts.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		s.srv.mu.Lock()
		s.srv.auths = append(s.srv.auths, username+":"+password)
		s.srv.mu.Unlock()
		if username != s.srv.opts.user || password != s.srv.opts.password {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.srv.opts.user != "" && !s.authed {
		return smtp.ErrAuthRequired
	}
	s.srv.mu.Lock()
	err := s.srv.nextMailErr
	s.srv.nextMailErr = nil
	s.srv.mu.Unlock()
	if err != nil {
		return err
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.srv.opts.rcptErr != nil {
		return s.srv.opts.rcptErr
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.srv.opts.dataErr != nil {
		return s.srv.opts.dataErr
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.srv.mu.Lock()
	s.srv.mails = append(s.srv.mails, received{from: s.from, to: s.to, data: b, tls: isTLS})
	s.srv.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

// startServer runs an SMTP server on 127.0.0.1 until the test ends.
func startServer(t *testing.T, opts serverOptions) *testServer {
	t.Helper()
	ts := &testServer{opts: opts}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		ts.mu.Lock()
		if !slices.Contains(ts.live, c) {
			ts.conns++
			ts.live = append(ts.live, c)
		}
		ts.mu.Unlock()
		return &session{srv: ts, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.Debug = &ts.script
	// Without TLS the server must offer AUTH anyway, so that a client that
	// refuses to authenticate is refusing on its own.
	srv.AllowInsecureAuth = opts.tls == plainTCP

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	if opts.tls != plainTCP {
		cert, pool := selfSignedCert(t)
		ts.certs = pool
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		if opts.tls == implicitTLS {
			l = tls.NewListener(l, srv.TLSConfig)
		}
	}
	ts.addr = l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ts
}

// selfSignedCert returns a certificate for 127.0.0.1 and localhost and a
// pool that trusts it.
func selfSignedCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "admit test SMTP"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// newSender returns an SMTP sender for ts, trusting its certificate.
func newSender(t *testing.T, ts *testServer, user, password string, opts ...SMTPOption) *SMTP {
	t.Helper()
	if ts.certs != nil {
		opts = append([]SMTPOption{WithTLSConfig(ts.tlsConfig())}, opts...)
	}
	s, err := NewSMTP(ts.url(user, password), testFrom, opts...)
	if err != nil {
		t.Fatalf("NewSMTP: %v", err)
	}
	return s
}

// parsedMessage is a received message taken apart.
type parsedMessage struct {
	header netmail.Header
	parts  map[string]string // media type → decoded body, CRLF → LF
	cte    map[string]string // media type → Content-Transfer-Encoding
}

// parseMessage parses raw with net/mail, mime/multipart and
// quotedprintable, the way a receiving mail client would.
func parseMessage(t *testing.T, raw []byte) parsedMessage {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("read message: %v\n%s", err, raw)
	}
	p := parsedMessage{header: msg.Header, parts: map[string]string{}, cte: map[string]string{}}
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	decode := func(cte string, r io.Reader) string {
		if cte != "quoted-printable" {
			t.Fatalf("want Content-Transfer-Encoding quoted-printable, got %q", cte)
		}
		b, err := io.ReadAll(quotedprintable.NewReader(r))
		if err != nil {
			t.Fatalf("decode quoted-printable: %v", err)
		}
		return strings.ReplaceAll(string(b), "\r\n", "\n")
	}
	if !strings.HasPrefix(mediaType, "multipart/") {
		cte := msg.Header.Get("Content-Transfer-Encoding")
		p.cte[mediaType] = cte
		p.parts[mediaType+"; charset="+params["charset"]] = decode(cte, msg.Body)
		return p
	}
	if mediaType != "multipart/alternative" || params["boundary"] == "" {
		t.Fatalf("want multipart/alternative with a boundary, got %q %v", mediaType, params)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		// NextRawPart leaves the transfer encoding alone, so the test
		// decodes it itself and sees what the sender wrote.
		part, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("next part: %v", err)
		}
		typ := part.Header.Get("Content-Type")
		cte := part.Header.Get("Content-Transfer-Encoding")
		p.cte[typ] = cte
		p.parts[typ] = decode(cte, part)
	}
	return p
}

func TestSendSTARTTLSWithAuthDeliversInvitation(t *testing.T) {
	ts := startServer(t, serverOptions{tls: startTLS, user: testUser, password: testPassword})
	s := newSender(t, ts, testUser, testPassword)
	subject, text, html, err := RenderInvitation(Invitation{
		OrganizationName: "Acme",
		InviterName:      "Jane Doe",
		RoleName:         "Member",
		WorkspaceName:    "Design",
		Note:             "Welcome aboard!\nSee you on Monday.",
		AcceptURL:        "https://admit.example/invitations/accept?token=tok_123&org=acme",
		ExpiresAt:        time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatalf("RenderInvitation: %v", err)
	}
	m := Message{
		To:        "Bob Smith <bob@example.org>",
		Subject:   subject,
		Text:      text,
		HTML:      html,
		MessageID: "<delivery-42.abc@admit>",
	}
	before := time.Now()
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}

	mails, auths, _ := ts.snapshot()
	if len(auths) != 1 || auths[0] != testUser+":"+testPassword {
		t.Fatalf("want one AUTH with the URL's credentials, got %q", auths)
	}
	if len(mails) != 1 {
		t.Fatalf("want 1 message received, got %d", len(mails))
	}
	got := mails[0]
	if !got.tls {
		t.Fatalf("want the message sent after STARTTLS, got it in clear")
	}
	if got.from != "no-reply@example.com" {
		t.Fatalf("want MAIL FROM no-reply@example.com, got %q", got.from)
	}
	if len(got.to) != 1 || got.to[0] != "bob@example.org" {
		t.Fatalf("want RCPT TO [bob@example.org], got %q", got.to)
	}

	p := parseMessage(t, got.data)
	for _, c := range []struct{ header, want string }{
		{"From", `"Admit" <no-reply@example.com>`},
		{"To", `"Bob Smith" <bob@example.org>`},
		{"Subject", "Jane Doe invited you to join Acme on Admit"},
		{"Message-ID", "<delivery-42.abc@admit>"},
		{"MIME-Version", "1.0"},
	} {
		if g := p.header.Get(c.header); g != c.want {
			t.Fatalf("header %s: want %q, got %q", c.header, c.want, g)
		}
	}
	date, err := p.header.Date()
	if err != nil {
		t.Fatalf("Date header %q: %v", p.header.Get("Date"), err)
	}
	if date.Before(before.Add(-time.Second)) || date.After(time.Now().Add(time.Second)) {
		t.Fatalf("want a Date around %v, got %v", before, date)
	}
	if len(p.parts) != 2 {
		t.Fatalf("want 2 parts, got %d: %v", len(p.parts), p.cte)
	}
	if g := p.parts["text/plain; charset=utf-8"]; g != text {
		t.Fatalf("text part: want %q, got %q", text, g)
	}
	if g := p.parts["text/html; charset=utf-8"]; g != html {
		t.Fatalf("HTML part: want %q, got %q", html, g)
	}
}

// Every mode that should deliver does, over TLS whenever there is TLS.
func TestSendTransports(t *testing.T) {
	// The text has lines of dots: SMTP's dot-stuffing must carry them.
	tests := []struct {
		name     string
		server   serverOptions
		user     string
		html     string
		wantTLS  bool
		wantType string
	}{
		{"smtps with auth, text only", serverOptions{tls: implicitTLS, user: testUser, password: testPassword}, testUser, "", true, "text/plain; charset=utf-8"},
		{"smtps without auth", serverOptions{tls: implicitTLS}, "", "<p>Hi</p>", true, "text/html; charset=utf-8"},
		{"STARTTLS without auth", serverOptions{tls: startTLS}, "", "<p>Hi</p>", true, "text/html; charset=utf-8"},
		{"clear text without credentials", serverOptions{tls: plainTCP}, "", "", false, "text/plain; charset=utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, tt.server)
			s := newSender(t, ts, tt.user, testPassword)
			m := Message{To: "bob@example.org", Subject: "Hello", Text: "Hi Bob,\n.\n..line two starts with dots\n", HTML: tt.html, MessageID: "delivery-7@admit"}
			if err := s.Send(context.Background(), m); err != nil {
				t.Fatalf("Send: %v", err)
			}
			mails, _, _ := ts.snapshot()
			if len(mails) != 1 {
				t.Fatalf("want 1 message, got %d", len(mails))
			}
			if mails[0].tls != tt.wantTLS {
				t.Fatalf("want TLS %v, got %v", tt.wantTLS, mails[0].tls)
			}
			p := parseMessage(t, mails[0].data)
			if g := p.header.Get("Message-ID"); g != "<delivery-7@admit>" {
				t.Fatalf("want Message-ID <delivery-7@admit>, got %q", g)
			}
			if g := p.parts["text/plain; charset=utf-8"]; g != m.Text {
				t.Fatalf("text: want %q, got %q", m.Text, g)
			}
			if _, ok := p.parts[tt.wantType]; !ok {
				t.Fatalf("want a %s part, got %v", tt.wantType, p.cte)
			}
		})
	}
}

func TestSendRefusesPasswordWithoutSTARTTLS(t *testing.T) {
	ts := startServer(t, serverOptions{tls: plainTCP, user: testUser, password: testPassword})
	s := newSender(t, ts, testUser, testPassword)
	err := s.Send(context.Background(), Message{To: "bob@example.org", Subject: "Hi", Text: "Hi"})
	if err == nil {
		t.Fatalf("want an error, got nil")
	}
	if !IsPermanent(err) {
		t.Fatalf("want a permanent error, got transient %v", err)
	}
	mails, auths, conns := ts.snapshot()
	if conns != 1 {
		t.Fatalf("want the client to have connected once (and seen no STARTTLS), got %d connections", conns)
	}
	if len(auths) != 0 || len(mails) != 0 {
		t.Fatalf("want no AUTH and no message, got auths %q and %d messages", auths, len(mails))
	}
	// The AUTH PLAIN initial response is base64: look for both forms.
	script := ts.script.String()
	b64 := base64.StdEncoding.EncodeToString([]byte("\x00" + testUser + "\x00" + testPassword))
	if strings.Contains(script, testPassword) || strings.Contains(script, b64) || strings.Contains(script, "\nAUTH ") {
		t.Fatalf("want the password never sent, got conversation:\n%s", script)
	}
	if strings.Contains(err.Error(), testPassword) {
		t.Fatalf("want no password in the error, got %v", err)
	}
}

func TestSendWrongPasswordError(t *testing.T) {
	ts := startServer(t, serverOptions{tls: startTLS, user: testUser, password: "the-right-one"})
	s := newSender(t, ts, testUser, testPassword)
	err := s.Send(context.Background(), Message{To: "bob@example.org", Subject: "Hi", Text: "Hi"})
	if err == nil {
		t.Fatalf("want an error, got nil")
	}
	if _, auths, _ := ts.snapshot(); len(auths) != 1 {
		t.Fatalf("want 1 AUTH attempt, got %q", auths)
	}
	msg := err.Error()
	for _, secret := range []string{testPassword, url.UserPassword(testUser, testPassword).String(), ts.url(testUser, testPassword)} {
		if strings.Contains(msg, secret) {
			t.Fatalf("want the error without %q, got %q", secret, msg)
		}
	}
	if !IsPermanent(err) {
		t.Fatalf("want 535 to be permanent, got transient %v", err)
	}
}

// Reply codes decide whether the outbox retries.
func TestSendReplyCodes(t *testing.T) {
	tests := []struct {
		name     string
		opts     serverOptions
		wantCode int
		wantPerm bool
	}{
		{"550 to RCPT", serverOptions{rcptErr: &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}}, 550, true},
		{"451 to RCPT", serverOptions{rcptErr: &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}}, 451, false},
		{"554 after DATA", serverOptions{dataErr: &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Rejected"}}, 554, true},
		{"452 after DATA", serverOptions{dataErr: &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "Out of space"}}, 452, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.tls = startTLS
			ts := startServer(t, tt.opts)
			s := newSender(t, ts, "", "")
			err := s.Send(context.Background(), Message{To: "bob@example.org", Subject: "Hi", Text: "Hi"})
			var tp *textproto.Error
			if !errors.As(err, &tp) || tp.Code != tt.wantCode {
				t.Fatalf("want a %d reply error, got %v", tt.wantCode, err)
			}
			if IsPermanent(err) != tt.wantPerm {
				t.Fatalf("want IsPermanent %v, got %v for %v", tt.wantPerm, !tt.wantPerm, err)
			}
		})
	}
}

// hangingServer accepts TCP connections and never says a word.
func hangingServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

func TestSendSilentServerTimesOut(t *testing.T) {
	addr := hangingServer(t)
	tests := []struct {
		name    string
		scheme  string
		opts    []SMTPOption
		ctx     func() (context.Context, context.CancelFunc)
		max     time.Duration // the configured limit the send must respect
		wantErr error         // errors.Is target; nil → any timeout
	}{
		{
			name: "overall timeout", scheme: "smtp",
			opts: []SMTPOption{WithTimeout(100*time.Millisecond, 300*time.Millisecond)},
			ctx:  func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			max:  300 * time.Millisecond,
		},
		{
			name: "context deadline sooner", scheme: "smtp",
			opts: []SMTPOption{WithTimeout(time.Minute, time.Minute)},
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 200*time.Millisecond)
			},
			max: 200 * time.Millisecond,
		},
		{
			name: "context cancelled", scheme: "smtp",
			opts: []SMTPOption{WithTimeout(time.Minute, time.Minute)},
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(150*time.Millisecond, cancel)
				return ctx, cancel
			},
			max:     150 * time.Millisecond,
			wantErr: context.Canceled,
		},
		{
			// The TLS handshake of smtps never completes: the dial
			// timeout covers it.
			name: "smtps handshake within dial timeout", scheme: "smtps",
			opts: []SMTPOption{WithTimeout(150*time.Millisecond, time.Minute)},
			ctx:  func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			max:  150 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := NewSMTP(tt.scheme+"://"+addr, testFrom, tt.opts...)
			if err != nil {
				t.Fatalf("NewSMTP: %v", err)
			}
			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			err = s.Send(ctx, Message{To: "bob@example.org", Subject: "Hi", Text: "Hi"})
			elapsed := time.Since(start)
			if err == nil {
				t.Fatalf("want an error from a silent server, got nil")
			}
			// Generous slack for a loaded machine running -race; the
			// defaults (10s, 30s) and the other limit (1 min) are far
			// beyond it.
			if elapsed > tt.max+5*time.Second {
				t.Fatalf("want a failure within about %v, got one after %v", tt.max, elapsed)
			}
			if IsPermanent(err) {
				t.Fatalf("want a transient error, got permanent %v", err)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("want errors.Is(err, %v), got %v", tt.wantErr, err)
				}
			} else if !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("want a timeout error, got %v", err)
			}
		})
	}
}

// A line break in a header field would let untrusted text (an organization
// name in the subject, say) add headers such as Bcc. Such a message must
// fail permanently before anything reaches the server.
func TestSendRefusesHeaderInjection(t *testing.T) {
	tests := []struct {
		name string
		m    Message
	}{
		{"subject CRLF Bcc", Message{To: "bob@example.org", Subject: "Hello\r\nBcc: mallory@evil.example", Text: "Hi"}},
		{"subject LF", Message{To: "bob@example.org", Subject: "Hello\nBcc: mallory@evil.example", Text: "Hi"}},
		{"subject CR", Message{To: "bob@example.org", Subject: "Hello\rBcc: mallory@evil.example", Text: "Hi"}},
		{"to CRLF", Message{To: "bob@example.org\r\nBcc: mallory@evil.example", Subject: "Hi", Text: "Hi"}},
		{"message ID CRLF", Message{To: "bob@example.org", Subject: "Hi", Text: "Hi", MessageID: "<a@admit>\r\nBcc: mallory@evil.example"}},
		{"invalid recipient", Message{To: "not an address", Subject: "Hi", Text: "Hi"}},
	}
	ts := startServer(t, serverOptions{tls: startTLS})
	s := newSender(t, ts, "", "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Send(context.Background(), tt.m)
			if err == nil || !IsPermanent(err) {
				t.Fatalf("want a permanent error, got %v", err)
			}
		})
	}
	if mails, _, conns := ts.snapshot(); conns != 0 || len(mails) != 0 {
		t.Fatalf("want no connection and no message, got %d connections and %d messages", conns, len(mails))
	}
}

func TestSendEncodesNonASCIISubject(t *testing.T) {
	tests := []string{
		"Einladung für Zoë: Grüße aus Zürich",
		"日本語の招待状 — " + strings.Repeat("très long sujet ", 12), // several encoded words, folded
	}
	ts := startServer(t, serverOptions{tls: startTLS})
	s := newSender(t, ts, "", "")
	for i, subject := range tests {
		if err := s.Send(context.Background(), Message{To: "bob@example.org", Subject: subject, Text: "Hi"}); err != nil {
			t.Fatalf("Send %q: %v", subject, err)
		}
		mails, _, _ := ts.snapshot()
		raw := mails[i].data
		head := raw[:bytes.Index(raw, []byte("\r\n\r\n"))]
		for _, line := range bytes.Split(head, []byte("\r\n")) {
			if len(line) > 998 {
				t.Fatalf("want header lines of at most 998 bytes, got %d", len(line))
			}
			for _, c := range line {
				if c >= 0x80 {
					t.Fatalf("want an ASCII-only header, got %q", line)
				}
			}
		}
		p := parseMessage(t, raw)
		got, err := new(mime.WordDecoder).DecodeHeader(p.header.Get("Subject"))
		if err != nil {
			t.Fatalf("decode subject %q: %v", p.header.Get("Subject"), err)
		}
		if got != subject {
			t.Fatalf("want subject %q, got %q", subject, got)
		}
	}
}

func TestNewSMTP(t *testing.T) {
	const secret = "hunter2-Secret"
	tests := []struct {
		name    string
		url     string
		from    string
		want    string // String() of the sender; "" → want an error
		wantErr string // substring of the error
	}{
		{"smtp default port", "smtp://u:" + secret + "@mail.example.com", testFrom, "smtp://mail.example.com:587", ""},
		{"smtps default port", "smtps://u:" + secret + "@mail.example.com", testFrom, "smtps://mail.example.com:465", ""},
		{"explicit port", "smtp://mail.example.com:2525", "no-reply@example.com", "smtp://mail.example.com:2525", ""},
		{"IPv6 host", "smtps://[::1]:4650", testFrom, "smtps://[::1]:4650", ""},
		{"unparsable URL", "smtp://u:" + secret + "@mail.example.com:port", testFrom, "", "not a valid URL"},
		{"control character", "smtp://u:" + secret + "\x7f@mail.example.com", testFrom, "", "not a valid URL"},
		{"wrong scheme", "https://u:" + secret + "@mail.example.com", testFrom, "", "scheme"},
		{"no host", "smtp://u:" + secret + "@", testFrom, "", "no host"},
		{"path", "smtp://u:" + secret + "@mail.example.com/x", testFrom, "", "no path"},
		{"query", "smtp://u:" + secret + "@mail.example.com?tls=no", testFrom, "", "no path"},
		{"from not an address", "smtp://mail.example.com", "Admit", "", "from"},
		{"from with CRLF", "smtp://mail.example.com", "Admit <a@example.com>\r\nBcc: b@example.com", "", "line break"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSMTP(tt.url, tt.from)
			if tt.want != "" {
				if err != nil {
					t.Fatalf("want no error, got %v", err)
				}
				if g := s.String(); g != tt.want {
					t.Fatalf("want String() %q, got %q", tt.want, g)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error containing %q, got nil", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("want an error containing %q, got %q", tt.wantErr, err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("want no password in the error, got %q", err)
			}
		})
	}
}

// An explicit TLS config without ServerName still checks the certificate
// against the URL's host, and an untrusted certificate stops the send. A
// certificate error is transient: the fix (a renewed certificate, a new
// config) happens outside the outbox row, which should then go out.
func TestSendChecksCertificate(t *testing.T) {
	ts := startServer(t, serverOptions{tls: implicitTLS})
	_, port, _ := net.SplitHostPort(ts.addr)
	tests := []struct {
		name    string
		host    string // the host the URL names
		roots   *x509.CertPool
		wantErr bool
	}{
		{"IP in certificate", "127.0.0.1", ts.certs, false},
		{"name in certificate", "localhost", ts.certs, false},
		{"untrusted certificate", "127.0.0.1", x509.NewCertPool(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSMTP("smtps://"+net.JoinHostPort(tt.host, port), testFrom, WithTLSConfig(&tls.Config{RootCAs: tt.roots}))
			if err != nil {
				t.Fatalf("NewSMTP: %v", err)
			}
			err = s.Send(context.Background(), Message{To: "bob@example.org", Subject: "Hi", Text: "Hi"})
			if (err != nil) != tt.wantErr {
				t.Fatalf("want error %v, got %v", tt.wantErr, err)
			}
			if IsPermanent(err) {
				t.Fatalf("want a transient error, got permanent %v", err)
			}
		})
	}
}
