// Package mail renders Admit's emails and sends them.
//
// Admit writes every outgoing email as an outbox row first and a worker
// sends it later, so a send may be retried after a crash or a transient
// failure. That shapes this package: a Message carries a Message-ID that is
// stable per outbox row (a retry is the same message to the recipient's
// mail system), and a Sender's errors say whether a retry can help.
package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"net/textproto"
	"strings"
	"time"
)

// Message is one email ready to send.
type Message struct {
	To      string // one address, already validated
	Subject string
	Text    string // text/plain body
	HTML    string // text/html body ("" → text only)
	// MessageID is stable per outbox row so that a retry after a crash is
	// the same message, e.g. "<delivery-42.abc@admit>". A Sender sets the
	// Message-ID header from it; angle brackets are added when missing and
	// an empty one gets a random ID.
	MessageID string
}

// Sender delivers a message. Errors are transient unless IsPermanent(err).
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// IsPermanent reports whether retrying cannot help: an SMTP 5xx reply, an
// invalid recipient or header, a message that cannot be built, or a server
// that would make us send the password in clear. Everything else (4xx
// replies, network errors, timeouts, a cancelled context) is transient.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	var p *permanentError
	if errors.As(err, &p) {
		return true
	}
	var tp *textproto.Error
	if errors.As(err, &tp) {
		return tp.Code >= 500
	}
	return false
}

// permanentError marks an error that retrying cannot fix, so the outbox
// worker can stop retrying and record the failure.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// permanent wraps err so that IsPermanent reports true.
func permanent(err error) error { return &permanentError{err: err} }

// Permanent marks err as one that retrying cannot fix, for other senders
// (SMS) whose errors the outbox reads the same way.
func Permanent(err error) error { return permanent(err) }

// permanentf is fmt.Errorf for errors that retrying cannot fix.
func permanentf(format string, args ...any) error {
	return permanent(fmt.Errorf(format, args...))
}

// LogSender prints messages to a slog.Logger instead of sending them: it is
// the Sender when SMTP_URL is unset, so a developer can follow the links of
// the emails Admit would send. It logs the recipient, the subject and the
// text body, and keeps nothing else. It never fails.
type LogSender struct {
	Log *slog.Logger // nil → slog.Default()
}

var _ Sender = LogSender{}

// Send logs m and returns nil.
func (s LogSender) Send(ctx context.Context, m Message) error {
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	log.InfoContext(ctx, "mail: not sent, no SMTP server configured",
		slog.String("to", m.To),
		slog.String("subject", m.Subject),
		slog.String("text", m.Text),
	)
	return nil
}

// hasLineBreak reports whether s could end a header line early and so
// inject headers of its own. NUL is refused too: it is not allowed in
// messages at all and some servers truncate at it.
func hasLineBreak(s string) bool {
	return strings.ContainsAny(s, "\r\n\x00")
}

// parseAddress parses one address of a header that the caller fills in,
// refusing line breaks first because net/mail accepts folding whitespace.
func parseAddress(field, s string) (*netmail.Address, error) {
	if hasLineBreak(s) {
		return nil, fmt.Errorf("%s address contains a line break", field)
	}
	a, err := netmail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%s address %q: %w", field, s, err)
	}
	return a, nil
}

// messageID returns the Message-ID header value for m: id in angle brackets,
// or a random one on from's domain when id is empty.
func messageID(id string, from *netmail.Address) (string, error) {
	if hasLineBreak(id) {
		return "", errors.New("message ID contains a line break")
	}
	id = strings.TrimSpace(id)
	if id == "" {
		var b [16]byte
		_, _ = rand.Read(b[:]) // never fails, see crypto/rand.Read
		domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
		return "<" + hex.EncodeToString(b[:]) + "@" + domain + ">", nil
	}
	if strings.ContainsAny(id, " \t") {
		return "", fmt.Errorf("message ID %q contains white space", id)
	}
	if !strings.HasPrefix(id, "<") {
		id = "<" + id
	}
	if !strings.HasSuffix(id, ">") {
		id += ">"
	}
	return id, nil
}

// encodeSubject RFC 2047-encodes a subject that is not plain ASCII. Long
// subjects become several encoded words; they are folded onto continuation
// lines so no header line grows past what servers accept.
func encodeSubject(s string) string {
	enc := mime.QEncoding.Encode("utf-8", s)
	if enc == s {
		return s
	}
	return strings.ReplaceAll(enc, "?= =?", "?=\r\n =?")
}

// buildMessage renders m as an RFC 5322 message with CRLF line endings. All
// errors it returns are permanent: the same message would fail again.
func buildMessage(from, to *netmail.Address, m Message, now time.Time) ([]byte, error) {
	if hasLineBreak(m.Subject) {
		return nil, permanentf("mail: subject contains a line break")
	}
	id, err := messageID(m.MessageID, from)
	if err != nil {
		return nil, permanentf("mail: %w", err)
	}

	var body bytes.Buffer
	var contentType string
	if m.HTML == "" {
		contentType = "text/plain; charset=utf-8"
		if err := writeQP(&body, m.Text); err != nil {
			return nil, permanentf("mail: encode text body: %w", err)
		}
	} else {
		// multipart.NewWriter picks a random boundary, so a body cannot
		// guess it and close the part early.
		mw := multipart.NewWriter(&body)
		contentType = mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()})
		// Plain text first: clients show the last alternative they can.
		for _, p := range []struct{ typ, content string }{
			{"text/plain; charset=utf-8", m.Text},
			{"text/html; charset=utf-8", m.HTML},
		} {
			w, err := mw.CreatePart(textproto.MIMEHeader{
				"Content-Type":              {p.typ},
				"Content-Transfer-Encoding": {"quoted-printable"},
			})
			if err != nil {
				return nil, permanentf("mail: build part: %w", err)
			}
			if err := writeQP(w, p.content); err != nil {
				return nil, permanentf("mail: encode part: %w", err)
			}
		}
		if err := mw.Close(); err != nil {
			return nil, permanentf("mail: build message: %w", err)
		}
	}

	var msg bytes.Buffer
	header := func(k, v string) { msg.WriteString(k + ": " + v + "\r\n") }
	header("From", from.String())
	header("To", to.String())
	header("Subject", encodeSubject(m.Subject))
	header("Date", now.Format(time.RFC1123Z))
	header("Message-ID", id)
	header("MIME-Version", "1.0")
	header("Content-Type", contentType)
	if m.HTML == "" {
		header("Content-Transfer-Encoding", "quoted-printable")
	}
	msg.WriteString("\r\n")
	msg.Write(body.Bytes())
	return msg.Bytes(), nil
}

// writeQP writes s quoted-printable encoded: it keeps lines short and the
// body 7-bit, which every server relays unchanged.
func writeQP(w io.Writer, s string) error {
	qp := quotedprintable.NewWriter(w)
	if _, err := qp.Write([]byte(s)); err != nil {
		return err
	}
	return qp.Close()
}
