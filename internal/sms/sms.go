// Package sms sends text messages: through Twilio's Messages REST API when
// it is configured, or to the log (like email without SMTP_URL). Errors
// that retrying cannot fix are marked permanent (mail.IsPermanent), so the
// outbox fails them at once and retries the rest.
package sms

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"admit/internal/mail"
)

// Message is one text message.
type Message struct {
	To   string // E.164
	Body string
}

// Sender sends text messages.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// LogSender prints messages instead of sending them.
type LogSender struct{ Log *slog.Logger }

// Send logs m and returns nil.
func (s LogSender) Send(ctx context.Context, m Message) error {
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	log.InfoContext(ctx, "sms: not sent, no SMS provider configured", slog.String("to", m.To), slog.String("text", m.Body))
	return nil
}

// Twilio sends through Twilio's Messages resource: a form-encoded POST to
// /2010-04-01/Accounts/{AccountSid}/Messages.json with HTTP Basic auth
// (account SID and auth token), From or MessagingServiceSid, To and Body.
type Twilio struct {
	AccountSID          string
	AuthToken           string
	From                string // a Twilio number or sender ID
	MessagingServiceSID string // used instead of From when set
	// APIBase is https://api.twilio.com unless set (a regional host, a
	// test server).
	APIBase string
	Client  *http.Client
}

// Error is Twilio's error answer: its HTTP status and its error code
// (21211: invalid To number, 21610: the recipient unsubscribed, …).
type Error struct {
	Status  int
	Code    int
	Message string
}

func (e *Error) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("twilio: %d %s (HTTP %d)", e.Code, e.Message, e.Status)
	}
	return fmt.Sprintf("twilio: HTTP %d %s", e.Status, e.Message)
}

// Send posts m. 429 and 5xx answers (and network errors) are temporary;
// other 4xx answers, such as an invalid or unsubscribed number, are
// permanent.
func (t *Twilio) Send(ctx context.Context, m Message) error {
	base := strings.TrimRight(t.APIBase, "/")
	if base == "" {
		base = "https://api.twilio.com"
	}
	form := url.Values{"To": {m.To}, "Body": {m.Body}}
	if t.MessagingServiceSID != "" {
		form.Set("MessagingServiceSid", t.MessagingServiceSID)
	} else {
		form.Set("From", t.From)
	}
	endpoint := base + "/2010-04-01/Accounts/" + url.PathEscape(t.AccountSID) + "/Messages.json"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return mail.Permanent(fmt.Errorf("twilio: %w", err))
	}
	req.SetBasicAuth(t.AccountSID, t.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	c := t.Client
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	res, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("twilio: %w", err) // temporary
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		return nil
	}
	e := &Error{Status: res.StatusCode, Message: http.StatusText(res.StatusCode)}
	var answer struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &answer) == nil && answer.Message != "" {
		e.Code, e.Message = answer.Code, answer.Message
	}
	if res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500 {
		return e
	}
	return mail.Permanent(e)
}

// Segments is how many SMS segments body takes: 160 GSM-7 characters in
// one, 153 a segment beyond; any other character makes it UCS-2, 70 in one
// and 67 a segment beyond.
func Segments(body string) int {
	n, gsm := 0, true
	for _, r := range body {
		n++
		if !strings.ContainsRune(gsm7, r) {
			gsm = false
		}
	}
	single, multi := 160, 153
	if !gsm {
		single, multi = 70, 67
	}
	if n <= single {
		return 1
	}
	return (n + multi - 1) / multi
}

// gsm7 is the GSM 03.38 basic character set (the extension table counts
// double and is left out: it is not used in Admit's texts).
const gsm7 = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"

// InvitationText is the text of an invitation by SMS: who invites, to
// what, and the link, in one segment where it fits. The inviter's name and
// the workspace go first when it does not, then the organization's name is
// shortened; the link is always whole. The personal note is left out: it
// would take most texts past one segment, and it is on the accept page's
// invitation by email only.
func InvitationText(organization, inviter, workspace, acceptURL string) string {
	variants := []string{}
	to := organization
	if workspace != "" {
		to = workspace + " (" + organization + ")"
	}
	if inviter != "" {
		variants = append(variants, inviter+" invited you to join "+to+". Accept: "+acceptURL)
	}
	variants = append(variants,
		"You are invited to join "+to+". Accept: "+acceptURL,
		"You are invited to join "+organization+". Accept: "+acceptURL)
	for _, v := range variants {
		if Segments(v) == 1 {
			return v
		}
	}
	// Shorten the organization's name to what fits beside the link.
	prefix, suffix := "Join ", ": "+acceptURL
	limit := 160
	if !isGSM(prefix + organization + suffix) {
		limit = 70
	}
	room := limit - len([]rune(prefix+suffix))
	if room < 4 {
		return "Join " + acceptURL
	}
	name := []rune(organization)
	if len(name) > room {
		name = append(name[:room-3], []rune("...")...)
	}
	return prefix + string(name) + suffix
}

func isGSM(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune(gsm7, r) {
			return false
		}
	}
	return true
}
