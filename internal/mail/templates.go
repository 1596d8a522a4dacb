package mail

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"net/url"
	"strings"
	texttemplate "text/template"
	"time"
)

// Invitation is the data of an invitation email.
type Invitation struct {
	OrganizationName string
	InviterName      string // may be ""
	RoleName         string // may be ""
	WorkspaceName    string // may be ""
	// Note is a personal message from the inviter, may be "". It is
	// untrusted text: escaped in the HTML body, kept as is in the text body.
	Note      string
	AcceptURL string    // the link with the token
	ExpiresAt time.Time // zero → no expiry sentence
	Resent    bool      // a reminder of an earlier invitation
}

// AccountExists is the data of the email sent when someone uses an invite
// link with an address that already has an account: the email goes to that
// address, so only its owner learns that the account exists.
type AccountExists struct {
	OrganizationName string
	SignInURL        string
}

// PasswordReset is the data of a password reset email.
type PasswordReset struct {
	OrganizationName string
	ResetURL         string // the link with the token
}

// invitationView is what the invitation templates see: the data plus the
// sentences that are easier to get right in Go than in a template.
type invitationView struct {
	Invitation
	Subject string
	Lead    string // the first sentence
	Expires string // "" or "This invitation expires on 6 December 2026."
}

// RenderInvitation returns the subject, text and HTML bodies of an
// invitation. The HTML is built with html/template, so every field is
// escaped for where it lands (the AcceptURL both as an href and as visible
// text). Errors, for a missing organization or a link that is not http(s),
// are permanent.
func RenderInvitation(d Invitation) (subject, text, html string, err error) {
	if strings.TrimSpace(d.OrganizationName) == "" {
		return "", "", "", permanentf("mail: invitation has no organization name")
	}
	if err := checkLink(d.AcceptURL); err != nil {
		return "", "", "", permanentf("mail: invitation accept URL: %w", err)
	}
	// Names go into the subject, so they lose their line breaks
	// everywhere, for the bodies to say the same.
	d.OrganizationName = oneLine(d.OrganizationName)
	d.InviterName = oneLine(d.InviterName)
	d.WorkspaceName = oneLine(d.WorkspaceName)
	d.RoleName = oneLine(d.RoleName)
	org, inviter := d.OrganizationName, d.InviterName
	v := invitationView{Invitation: d}
	if inviter != "" {
		v.Subject = fmt.Sprintf("%s invited you to join %s on Admit", inviter, org)
		v.Lead = fmt.Sprintf("%s invited you to join %s on Admit", inviter, org)
	} else {
		v.Subject = fmt.Sprintf("You're invited to join %s", org)
		v.Lead = fmt.Sprintf("You're invited to join %s on Admit", org)
	}
	if d.Resent {
		v.Subject = "Reminder: " + v.Subject
		v.Lead = "A reminder: " + lowerFirstIfYou(v.Lead)
	}
	if ws := d.WorkspaceName; ws != "" {
		v.Lead += fmt.Sprintf(", in the workspace %s", ws)
	}
	if role := d.RoleName; role != "" {
		v.Lead += fmt.Sprintf(", as %s", role)
	}
	v.Lead += "."
	if !d.ExpiresAt.IsZero() {
		// UTC and a spelled-out month: the reader's time zone is unknown
		// and "06/12" reads differently on each side of the Atlantic.
		v.Expires = "This invitation expires on " + d.ExpiresAt.UTC().Format("2 January 2006") + "."
	}
	text, html, err = render(invitationText, invitationHTML, v)
	if err != nil {
		return "", "", "", err
	}
	return v.Subject, text, html, nil
}

// RenderAccountExists returns the subject, text and HTML bodies of the
// email sent when an invite link is used with an address that already has
// an account. Errors, for a missing organization or a link that is not
// http(s), are permanent.
func RenderAccountExists(d AccountExists) (subject, text, html string, err error) {
	if strings.TrimSpace(d.OrganizationName) == "" {
		return "", "", "", permanentf("mail: account-exists email has no organization name")
	}
	if err := checkLink(d.SignInURL); err != nil {
		return "", "", "", permanentf("mail: account-exists sign-in URL: %w", err)
	}
	d.OrganizationName = oneLine(d.OrganizationName)
	text, html, err = render(accountExistsText, accountExistsHTML, d)
	if err != nil {
		return "", "", "", err
	}
	return "You already have an Admit account", text, html, nil
}

// RenderPasswordReset returns the subject, text and HTML bodies of a
// password reset email. Errors, for a missing organization or a link that
// is not http(s), are permanent.
func RenderPasswordReset(d PasswordReset) (subject, text, html string, err error) {
	if strings.TrimSpace(d.OrganizationName) == "" {
		return "", "", "", permanentf("mail: password reset has no organization name")
	}
	if err := checkLink(d.ResetURL); err != nil {
		return "", "", "", permanentf("mail: password reset URL: %w", err)
	}
	d.OrganizationName = oneLine(d.OrganizationName)
	text, html, err = render(passwordResetText, passwordResetHTML, d)
	if err != nil {
		return "", "", "", err
	}
	return "Reset your Admit password", text, html, nil
}

// render executes a text and an HTML template on the same data.
func render(t *texttemplate.Template, h *htmltemplate.Template, data any) (text, html string, err error) {
	var tb, hb bytes.Buffer
	if err := t.Execute(&tb, data); err != nil {
		return "", "", permanentf("mail: render %s: %w", t.Name(), err)
	}
	if err := h.Execute(&hb, data); err != nil {
		return "", "", permanentf("mail: render %s: %w", h.Name(), err)
	}
	return tb.String(), hb.String(), nil
}

// checkLink accepts only absolute http(s) URLs: html/template would turn
// anything else in an href into "#ZgotmplZ", a dead button.
func checkLink(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a valid URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("not an absolute http or https URL")
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return errors.New("contains white space")
	}
	return nil
}

// oneLine collapses runs of white space, line breaks included, into single
// spaces: names go into the subject, where a line break would make the
// message unsendable.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// lowerFirstIfYou turns "You're invited…" into "you're invited…" after a
// prefix; a lead that starts with the inviter's name keeps its case.
func lowerFirstIfYou(s string) string {
	if rest, ok := strings.CutPrefix(s, "You're"); ok {
		return "you're" + rest
	}
	return s
}

// The templates are parsed once at start-up; Must turns a broken template
// into a failure of every test rather than of a send in production.
var (
	invitationText    = texttemplate.Must(texttemplate.New("invitation.txt").Parse(invitationTextSrc))
	invitationHTML    = htmltemplate.Must(htmltemplate.New("invitation.html").Parse(invitationHTMLSrc))
	accountExistsText = texttemplate.Must(texttemplate.New("account-exists.txt").Parse(accountExistsTextSrc))
	accountExistsHTML = htmltemplate.Must(htmltemplate.New("account-exists.html").Parse(accountExistsHTMLSrc))
	passwordResetText = texttemplate.Must(texttemplate.New("password-reset.txt").Parse(passwordResetTextSrc))
	passwordResetHTML = htmltemplate.Must(htmltemplate.New("password-reset.html").Parse(passwordResetHTMLSrc))
)

const invitationTextSrc = `{{.Lead}}
{{if .Note}}
{{if .InviterName}}{{.InviterName}} wrote{{else}}The invitation says{{end}}:

{{.Note}}
{{end}}
Accept the invitation:
{{.AcceptURL}}
{{if .Expires}}
{{.Expires}}
{{end}}
If you were not expecting this invitation, you can ignore this email.
`

// The HTML keeps to inline styles and a single table-free column, which
// mail clients render alike. white-space: pre-line keeps the line breaks of
// the note without trusting it with any markup.
const invitationHTMLSrc = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Subject}}</title>
</head>
<body style="margin:0;padding:24px;background:#f6f7f9;font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1f2328;">
<div style="max-width:560px;margin:0 auto;background:#ffffff;border-radius:8px;padding:32px;">
<p style="font-size:16px;line-height:1.5;margin:0 0 16px;">{{.Lead}}</p>
{{- if .Note}}
<p style="font-size:14px;color:#57606a;margin:0 0 4px;">{{if .InviterName}}{{.InviterName}} wrote{{else}}The invitation says{{end}}:</p>
<blockquote style="margin:0 0 16px;padding:8px 16px;border-left:4px solid #d0d7de;white-space:pre-line;">{{.Note}}</blockquote>
{{- end}}
<p style="margin:24px 0;"><a href="{{.AcceptURL}}" style="display:inline-block;background:#1f6feb;color:#ffffff;text-decoration:none;padding:12px 20px;border-radius:6px;font-weight:600;">Accept the invitation</a></p>
<p style="font-size:13px;color:#57606a;margin:0 0 16px;">Or paste this link into your browser:<br><a href="{{.AcceptURL}}" style="color:#1f6feb;word-break:break-all;">{{.AcceptURL}}</a></p>
{{- if .Expires}}
<p style="font-size:13px;color:#57606a;margin:0 0 16px;">{{.Expires}}</p>
{{- end}}
<p style="font-size:13px;color:#57606a;margin:0;">If you were not expecting this invitation, you can ignore this email.</p>
</div>
</body>
</html>
`

const accountExistsTextSrc = `Someone used an invitation to {{.OrganizationName}} on Admit with this email address, which already has an Admit account.

If it was you, sign in with your existing account to continue:
{{.SignInURL}}

If it was not you, you can ignore this email: nothing has changed on your account.
`

const accountExistsHTMLSrc = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>You already have an Admit account</title>
</head>
<body style="margin:0;padding:24px;background:#f6f7f9;font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1f2328;">
<div style="max-width:560px;margin:0 auto;background:#ffffff;border-radius:8px;padding:32px;">
<p style="font-size:16px;line-height:1.5;margin:0 0 16px;">Someone used an invitation to {{.OrganizationName}} on Admit with this email address, which already has an Admit account.</p>
<p style="font-size:16px;line-height:1.5;margin:0 0 16px;">If it was you, sign in with your existing account to continue.</p>
<p style="margin:24px 0;"><a href="{{.SignInURL}}" style="display:inline-block;background:#1f6feb;color:#ffffff;text-decoration:none;padding:12px 20px;border-radius:6px;font-weight:600;">Sign in</a></p>
<p style="font-size:13px;color:#57606a;margin:0 0 16px;">Or paste this link into your browser:<br><a href="{{.SignInURL}}" style="color:#1f6feb;word-break:break-all;">{{.SignInURL}}</a></p>
<p style="font-size:13px;color:#57606a;margin:0;">If it was not you, you can ignore this email: nothing has changed on your account.</p>
</div>
</body>
</html>
`

const passwordResetTextSrc = `Someone asked to reset the password of your Admit account at {{.OrganizationName}}.

Choose a new password (the link works once, for one hour):
{{.ResetURL}}

If it was not you, you can ignore this email: your password has not changed.
`

const passwordResetHTMLSrc = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Reset your Admit password</title>
</head>
<body style="margin:0;padding:24px;background:#f6f7f9;font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1f2328;">
<div style="max-width:560px;margin:0 auto;background:#ffffff;border-radius:8px;padding:32px;">
<p style="font-size:16px;line-height:1.5;margin:0 0 16px;">Someone asked to reset the password of your Admit account at {{.OrganizationName}}.</p>
<p style="margin:24px 0;"><a href="{{.ResetURL}}" style="display:inline-block;background:#1f6feb;color:#ffffff;text-decoration:none;padding:12px 20px;border-radius:6px;font-weight:600;">Choose a new password</a></p>
<p style="font-size:13px;color:#57606a;margin:0 0 16px;">Or paste this link into your browser:<br><a href="{{.ResetURL}}" style="color:#1f6feb;word-break:break-all;">{{.ResetURL}}</a></p>
<p style="font-size:13px;color:#57606a;margin:0 0 16px;">The link works once, for one hour.</p>
<p style="font-size:13px;color:#57606a;margin:0;">If it was not you, you can ignore this email: your password has not changed.</p>
</div>
</body>
</html>
`

// JoinRequestConfirm is the data of the email that proves a join
// requester's address.
type JoinRequestConfirm struct {
	OrganizationName string
	WorkspaceName    string
	ConfirmURL       string
}

// RenderJoinRequestConfirm returns the subject, text and HTML bodies of the
// email asking someone who requested to join a workspace to confirm their
// address. Errors are permanent.
func RenderJoinRequestConfirm(d JoinRequestConfirm) (subject, text, html string, err error) {
	if strings.TrimSpace(d.OrganizationName) == "" || strings.TrimSpace(d.WorkspaceName) == "" {
		return "", "", "", permanentf("mail: join request email has no organization or workspace name")
	}
	if err := checkLink(d.ConfirmURL); err != nil {
		return "", "", "", permanentf("mail: join request confirm URL: %w", err)
	}
	d.OrganizationName = oneLine(d.OrganizationName)
	d.WorkspaceName = oneLine(d.WorkspaceName)
	text, html, err = render(joinConfirmText, joinConfirmHTML, d)
	if err != nil {
		return "", "", "", err
	}
	return fmt.Sprintf("Confirm your request to join %s", d.WorkspaceName), text, html, nil
}

var (
	joinConfirmText = texttemplate.Must(texttemplate.New("join-confirm.txt").Parse(joinConfirmTextSrc))
	joinConfirmHTML = htmltemplate.Must(htmltemplate.New("join-confirm.html").Parse(joinConfirmHTMLSrc))
)

const joinConfirmTextSrc = `Someone asked to join the workspace {{.WorkspaceName}} of {{.OrganizationName}} on Admit with this email address.

If it was you, confirm the request; the workspace's owners will then decide on it:
{{.ConfirmURL}}

The same link shows your request while it waits, and lets you withdraw it.

If it was not you, you can ignore this email: nothing happens until the request is confirmed.
`

const joinConfirmHTMLSrc = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Confirm your request to join {{.WorkspaceName}}</title>
</head>
<body style="margin:0;padding:24px;background:#f6f7f9;font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1f2328;">
<div style="max-width:560px;margin:0 auto;background:#ffffff;border-radius:8px;padding:32px;">
<p style="font-size:16px;line-height:1.5;margin:0 0 16px;">Someone asked to join the workspace {{.WorkspaceName}} of {{.OrganizationName}} on Admit with this email address.</p>
<p style="font-size:16px;line-height:1.5;margin:0 0 16px;">If it was you, confirm the request; the workspace's owners will then decide on it.</p>
<p style="margin:24px 0;"><a href="{{.ConfirmURL}}" style="display:inline-block;background:#1f6feb;color:#ffffff;text-decoration:none;padding:12px 20px;border-radius:6px;font-weight:600;">Confirm the request</a></p>
<p style="font-size:13px;color:#57606a;margin:0 0 16px;">Or paste this link into your browser:<br><a href="{{.ConfirmURL}}" style="color:#1f6feb;word-break:break-all;">{{.ConfirmURL}}</a></p>
<p style="font-size:13px;color:#57606a;margin:0;">If it was not you, you can ignore this email: nothing happens until the request is confirmed.</p>
</div>
</body>
</html>
`
