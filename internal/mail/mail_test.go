package mail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"net/textproto"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

func TestRenderInvitationSubject(t *testing.T) {
	tests := []struct {
		name string
		d    Invitation
		want string
	}{
		{"with inviter", Invitation{OrganizationName: "Acme", InviterName: "Jane"}, "Jane invited you to join Acme on Admit"},
		{"without inviter", Invitation{OrganizationName: "Acme"}, "You're invited to join Acme"},
		{"reminder", Invitation{OrganizationName: "Acme", InviterName: "Jane", Resent: true}, "Reminder: Jane invited you to join Acme on Admit"},
		{"reminder without inviter", Invitation{OrganizationName: "Acme", Resent: true}, "Reminder: You're invited to join Acme"},
		// Names are user input; a line break would make the message unsendable.
		{"line breaks in names", Invitation{OrganizationName: "Acme\r\nBcc: x@evil.example", InviterName: " Jane\n Doe "}, "Jane Doe invited you to join Acme Bcc: x@evil.example on Admit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.d.AcceptURL = "https://admit.example/accept?token=t"
			subject, _, _, err := RenderInvitation(tt.d)
			if err != nil {
				t.Fatalf("want no error, got %v", err)
			}
			if subject != tt.want {
				t.Fatalf("want subject %q, got %q", tt.want, subject)
			}
		})
	}
}

func TestRenderInvitationBodies(t *testing.T) {
	base := Invitation{
		OrganizationName: "Acme",
		InviterName:      "Jane",
		RoleName:         "Member",
		AcceptURL:        "https://admit.example/accept?token=t",
		// Evening in New York is already the next day in UTC.
		ExpiresAt: time.Date(2026, 12, 5, 20, 0, 0, 0, time.FixedZone("EST", -5*3600)),
	}
	tests := []struct {
		name    string
		edit    func(*Invitation)
		want    []string // in both bodies
		notWant []string // in neither
	}{
		{"expiry in UTC", func(*Invitation) {}, []string{"This invitation expires on 6 December 2026.", "Jane invited you to join Acme on Admit", "as Member"}, []string{"workspace", "reminder"}},
		{"workspace", func(d *Invitation) { d.WorkspaceName = "Design" }, []string{"in the workspace Design"}, nil},
		{"reminder", func(d *Invitation) { d.Resent = true }, []string{"A reminder: Jane invited you"}, nil},
		{"reminder without inviter", func(d *Invitation) { d.Resent, d.InviterName = true, "" }, []string{"A reminder: you're invited to join Acme on Admit"}, nil},
		{"no expiry", func(d *Invitation) { d.ExpiresAt = time.Time{} }, nil, []string{"expires"}},
		{"note", func(d *Invitation) { d.Note = "See you Monday" }, []string{"Jane wrote", "See you Monday"}, nil},
		{"no note", func(*Invitation) {}, nil, []string{"wrote"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := base
			tt.edit(&d)
			_, text, htmlBody, err := RenderInvitation(d)
			if err != nil {
				t.Fatalf("want no error, got %v", err)
			}
			for name, body := range map[string]string{"text": text, "HTML": htmlText(t, htmlBody)} {
				for _, w := range tt.want {
					if !strings.Contains(body, w) {
						t.Fatalf("%s body: want %q in it, got:\n%s", name, w, body)
					}
				}
				for _, w := range tt.notWant {
					if strings.Contains(strings.ToLower(body), strings.ToLower(w)) {
						t.Fatalf("%s body: want no %q in it, got:\n%s", name, w, body)
					}
				}
			}
			if !strings.Contains(text, d.AcceptURL) {
				t.Fatalf("text body: want the accept URL %q in it, got:\n%s", d.AcceptURL, text)
			}
		})
	}
}

// htmlText returns the visible text of an HTML document with runs of white
// space collapsed, so assertions read like what a person sees.
func htmlText(t *testing.T, s string) string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		t.Fatalf("parse HTML: %v", err)
	}
	var b strings.Builder
	for n := range doc.Descendants() {
		if n.Type == html.TextNode && n.Parent != nil && n.Parent.Data != "title" {
			b.WriteString(n.Data + " ")
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// links returns the href and the visible text of every <a> in an HTML
// document, and whether it has any element named tag.
func links(t *testing.T, s, tag string) (hrefs, texts []string, hasTag bool) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		t.Fatalf("parse HTML: %v", err)
	}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		if n.Data == tag {
			hasTag = true
		}
		if n.Data != "a" {
			continue
		}
		for _, a := range n.Attr {
			if a.Key == "href" {
				hrefs = append(hrefs, a.Val)
			}
		}
		var text strings.Builder
		for c := range n.Descendants() {
			if c.Type == html.TextNode {
				text.WriteString(c.Data)
			}
		}
		texts = append(texts, strings.TrimSpace(text.String()))
	}
	return hrefs, texts, hasTag
}

func TestRenderInvitationEscapesHTML(t *testing.T) {
	const acceptURL = "https://admit.example/invitations/accept?token=a1+b2/c3=&org=acme%2Fx&next=/home"
	d := Invitation{
		OrganizationName: `Acme <script>alert("org")</script> & Sons`,
		InviterName:      `<img src=x onerror=alert(1)>`,
		WorkspaceName:    `<b>Design</b>`,
		Note:             "Hi!\n<script>alert('note')</script>",
		AcceptURL:        acceptURL,
	}
	_, text, htmlBody, err := RenderInvitation(d)
	if err != nil {
		t.Fatalf("want no error, got %v", err)
	}
	for _, raw := range []string{"<script", "<img", "<b>"} {
		if strings.Contains(htmlBody, raw) {
			t.Fatalf("HTML: want %q escaped, got:\n%s", raw, htmlBody)
		}
	}
	if !strings.Contains(htmlBody, "&lt;script&gt;alert(&#39;note&#39;)&lt;/script&gt;") {
		t.Fatalf("HTML: want the note escaped and shown, got:\n%s", htmlBody)
	}
	hrefs, texts, hasScript := links(t, htmlBody, "script")
	if hasScript {
		t.Fatalf("HTML: want no <script> element, got:\n%s", htmlBody)
	}
	if len(hrefs) == 0 {
		t.Fatalf("HTML: want links, got none in:\n%s", htmlBody)
	}
	for _, h := range hrefs {
		if h != acceptURL {
			t.Fatalf("HTML: want every href to be %q, got %q", acceptURL, h)
		}
	}
	if !slices.Contains(texts, acceptURL) {
		t.Fatalf("HTML: want the URL as visible link text, got link texts %q", texts)
	}
	// In the markup itself the query's & must be an entity, or a strict
	// parser reads "&org" as a (broken) character reference.
	if !regexp.MustCompile(`href="[^"]*c3=&amp;org=`).MatchString(htmlBody) {
		t.Fatalf("HTML: want & written as &amp; in the href, got:\n%s", htmlBody)
	}
	// Plain text is not HTML: the note and URL stay as written.
	for _, w := range []string{"<script>alert('note')</script>", acceptURL, `Acme <script>alert("org")</script> & Sons`} {
		if !strings.Contains(text, w) {
			t.Fatalf("text: want %q verbatim, got:\n%s", w, text)
		}
	}
}

func TestRenderInvitationRejects(t *testing.T) {
	tests := []struct {
		name string
		d    Invitation
	}{
		{"no organization", Invitation{OrganizationName: " ", AcceptURL: "https://admit.example/a"}},
		{"no URL", Invitation{OrganizationName: "Acme"}},
		{"javascript URL", Invitation{OrganizationName: "Acme", AcceptURL: "javascript:alert(1)"}},
		{"relative URL", Invitation{OrganizationName: "Acme", AcceptURL: "/accept?token=t"}},
		{"URL with space", Invitation{OrganizationName: "Acme", AcceptURL: "https://admit.example/a b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := RenderInvitation(tt.d)
			if err == nil || !IsPermanent(err) {
				t.Fatalf("want a permanent error, got %v", err)
			}
		})
	}
}

func TestRenderAccountExists(t *testing.T) {
	const signIn = "https://admit.example/sign-in?email=bob%40example.org&next=/"
	tests := []struct {
		name    string
		d       AccountExists
		wantErr bool
	}{
		{"ok", AccountExists{OrganizationName: "Acme <b>&</b>", SignInURL: signIn}, false},
		{"no organization", AccountExists{SignInURL: signIn}, true},
		{"bad URL", AccountExists{OrganizationName: "Acme", SignInURL: "ftp://admit.example/"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subject, text, htmlBody, err := RenderAccountExists(tt.d)
			if tt.wantErr {
				if err == nil || !IsPermanent(err) {
					t.Fatalf("want a permanent error, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("want no error, got %v", err)
			}
			if subject != "You already have an Admit account" {
				t.Fatalf("want the account-exists subject, got %q", subject)
			}
			if !strings.Contains(text, signIn) || !strings.Contains(text, "Acme <b>&</b>") {
				t.Fatalf("text: want the sign-in URL and organization verbatim, got:\n%s", text)
			}
			hrefs, _, hasB := links(t, htmlBody, "b")
			if hasB {
				t.Fatalf("HTML: want the organization escaped, got:\n%s", htmlBody)
			}
			if len(hrefs) == 0 || hrefs[0] != signIn {
				t.Fatalf("HTML: want href %q, got %q", signIn, hrefs)
			}
			if got := htmlText(t, htmlBody); !strings.Contains(got, "invitation to Acme <b>&</b> on Admit") {
				t.Fatalf("HTML: want the organization shown as text, got %q", got)
			}
		})
	}
}

func TestLogSenderLogsRecipientSubjectAndText(t *testing.T) {
	var buf bytes.Buffer
	s := LogSender{Log: slog.New(slog.NewTextHandler(&buf, nil))}
	m := Message{
		To:        "bob@example.org",
		Subject:   "Jane invited you to join Acme on Admit",
		Text:      "Accept: https://admit.example/accept?token=t",
		HTML:      "<p>secret-html-marker</p>",
		MessageID: "<delivery-1@admit>",
	}
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatalf("want nil from LogSender, got %v", err)
	}
	got := buf.String()
	for _, w := range []string{
		"to=bob@example.org",
		`subject="Jane invited you to join Acme on Admit"`,
		`text="Accept: https://admit.example/accept?token=t"`,
	} {
		if !strings.Contains(got, w) {
			t.Fatalf("want %q in the log, got %q", w, got)
		}
	}
	if strings.Contains(got, "secret-html-marker") {
		t.Fatalf("want no HTML body in the log, got %q", got)
	}
}

func TestIsPermanent(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain error", errors.New("connection reset"), false},
		{"550 reply", &textproto.Error{Code: 550, Msg: "no such user"}, true},
		{"wrapped 554 reply", fmt.Errorf("send: %w", &textproto.Error{Code: 554, Msg: "rejected"}), true},
		{"451 reply", &textproto.Error{Code: 451, Msg: "try later"}, false},
		{"context deadline", context.DeadlineExceeded, false},
		{"marked permanent", permanentf("bad recipient"), true},
		{"wrapped marked permanent", fmt.Errorf("outbox: %w", permanentf("bad recipient")), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsPermanent(tt.err); got != tt.want {
				t.Fatalf("want IsPermanent %v, got %v", tt.want, got)
			}
		})
	}
}

func TestBuildMessageMessageID(t *testing.T) {
	from, err := netmail.ParseAddress(testFrom)
	if err != nil {
		t.Fatal(err)
	}
	to := &netmail.Address{Address: "bob@example.org"}
	tests := []struct {
		name    string
		id      string
		want    *regexp.Regexp
		wantErr bool
	}{
		{"kept", "<delivery-42.abc@admit>", regexp.MustCompile(`^<delivery-42\.abc@admit>$`), false},
		{"brackets added", "delivery-42.abc@admit", regexp.MustCompile(`^<delivery-42\.abc@admit>$`), false},
		{"generated on the From domain", "", regexp.MustCompile(`^<[0-9a-f]{32}@example\.com>$`), false},
		{"white space", "<a b@admit>", nil, true},
		{"line break", "<a@admit>\nBcc: x@evil.example", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := buildMessage(from, to, Message{To: to.Address, Subject: "Hi", Text: "Hi", MessageID: tt.id}, time.Now())
			if tt.wantErr {
				if err == nil || !IsPermanent(err) {
					t.Fatalf("want a permanent error, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("want no error, got %v", err)
			}
			msg, err := netmail.ReadMessage(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("read message: %v", err)
			}
			if got := msg.Header.Get("Message-ID"); !tt.want.MatchString(got) {
				t.Fatalf("want Message-ID matching %s, got %q", tt.want, got)
			}
		})
	}
}
