// Package address parses email addresses as people type or paste them into
// an invite box. It is deliberately stricter than net/mail: an invitation
// goes to exactly one mailbox, so anything that a mail system could read as
// a second recipient, a header, an IP literal or an encoded word is refused
// rather than interpreted.
package address

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"admit/internal/emaildomain"
)

// ErrInvalid matches (with errors.Is) every error Parse returns.
var ErrInvalid = errors.New("invalid email address")

// Error says why one entry is not a usable address. Reason is a clause a
// person can act on, so callers may show Error() as is.
type Error struct {
	Input  string // the entry, trimmed of surrounding white space
	Reason string // why it was refused, e.g. "the domain is an IP address"
}

// maxQuoted bounds how much of the input an error message repeats, so that
// pasting a whole document does not produce a page-long error.
const maxQuoted = 80

// Error returns a sentence such as
// `"x" is not a valid email address: the domain is an IP address`.
// The input is %q-quoted so control characters cannot reach a log or page raw.
func (e *Error) Error() string {
	in := e.Input
	if len(in) > maxQuoted {
		cut := maxQuoted
		for cut > 0 && !utf8.RuneStart(in[cut]) {
			cut--
		}
		in = in[:cut] + "…"
	}
	return fmt.Sprintf("%q is not a valid email address: %s", in, e.Reason)
}

// Is reports whether target is ErrInvalid, so callers need not know the type.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Limits from RFC 5321 (local part) and RFC 5321 errata 1690 (whole path).
const (
	maxLocal   = 64
	maxAddress = 254
)

// Split breaks free text into candidate entries. Commas, semicolons and any
// white space (including newlines, CR and tabs) separate entries, except
// that "Jane Doe <jane@x.com>" stays one entry although the name has spaces,
// and a double-quoted display name may contain commas and semicolons
// (`"Doe, Jane" <jane@x.com>`). Empty pieces are dropped and order is kept.
// Entries are not validated; pass each one to Parse.
//
// Words without an '@' that are not followed by a <...> part are kept
// together as one entry, so a stray "Jane Doe" is reported once, not twice.
// A line break always ends an entry, even inside quotes or brackets, so one
// unbalanced quote cannot swallow the rest of a pasted list.
func Split(s string) []string {
	var (
		out []string
		// Current word: [wordStart, i). hasAt and hasAngle look only
		// outside quotes, because a quoted name may mention '@' or '<'.
		wordStart         = -1
		hasAt, hasAngle   bool
		inQuote, inAngle  bool
		escaped           bool
		groupStart, group = -1, -1 // pending name words: [groupStart, group)
	)
	emit := func(piece string) {
		if t := strings.TrimSpace(piece); t != "" {
			out = append(out, t)
		}
	}
	flushGroup := func() {
		if groupStart >= 0 {
			emit(s[groupStart:group])
			groupStart = -1
		}
	}
	endWord := func(end int) {
		if wordStart < 0 {
			return
		}
		switch {
		case hasAngle:
			// "Name words <addr>": the pending words are the display name.
			start := wordStart
			if groupStart >= 0 {
				start = groupStart
			}
			emit(s[start:end])
			groupStart = -1
		case hasAt:
			// A bare address ends any pending name words, which become
			// their own (invalid) entry.
			flushGroup()
			emit(s[wordStart:end])
		default:
			if groupStart < 0 {
				groupStart = wordStart
			}
			group = end
		}
		wordStart, hasAt, hasAngle = -1, false, false
	}
	for i, r := range s {
		if r == '\n' || r == '\r' {
			endWord(i)
			flushGroup()
			inQuote, inAngle, escaped = false, false, false
			continue
		}
		if inQuote {
			switch {
			case escaped:
				escaped = false
			case r == '\\':
				escaped = true
			case r == '"':
				inQuote = false
			}
			continue
		}
		if inAngle {
			if r == '>' {
				inAngle = false
			}
			continue
		}
		if r == ',' || r == ';' {
			endWord(i)
			flushGroup()
			continue
		}
		if unicode.IsSpace(r) {
			endWord(i)
			continue
		}
		if wordStart < 0 {
			wordStart = i
		}
		switch r {
		case '"':
			inQuote = true
		case '<':
			inAngle, hasAngle = true, true
		case '@':
			hasAt = true
		}
	}
	endWord(len(s))
	flushGroup()
	return out
}

// Parse validates exactly one entry and returns the normalized address
// (local part lower-cased, domain normalized by emaildomain.Normalize) and
// the display name ("" if none). It accepts `local@domain`,
// `Display Name <local@domain>` and `"Quoted Name" <local@domain>`.
// Every error is an *Error and matches ErrInvalid.
func Parse(entry string) (email, name string, err error) {
	in := strings.TrimSpace(entry)
	fail := func(reason string) (string, string, error) {
		return "", "", &Error{Input: in, Reason: reason}
	}
	if in == "" {
		return fail("it is empty")
	}
	if !utf8.ValidString(in) {
		return fail("it contains bytes that are not valid text")
	}
	for _, r := range in {
		if isControl(r) {
			return fail("it contains a control character")
		}
	}
	// An RFC 2047 encoded word can smuggle any bytes (a different name, a
	// newline) past a reader that decodes it, so it is refused anywhere.
	if strings.Contains(in, "=?") {
		return fail("it contains an encoded word (=?...?=)")
	}

	addr := in
	if strings.ContainsAny(in, "<>") {
		lt, gt := strings.IndexByte(in, '<'), strings.LastIndexByte(in, '>')
		switch {
		case strings.Count(in, "<") > 1 || strings.Count(in, ">") > 1:
			return fail("it contains more than one <...> part; enter one address per entry")
		case lt < 0 || gt < 0 || gt < lt:
			return fail("the < and > around the address do not match")
		case gt != len(in)-1:
			return fail("there is text after the closing >")
		}
		var reason string
		name, reason = parseName(in[:lt])
		if reason != "" {
			return fail(reason)
		}
		addr = strings.TrimSpace(in[lt+1 : gt])
		if addr == "" {
			return fail("there is no address between < and >")
		}
	}

	email, reason := normalizeAddr(addr)
	if reason != "" {
		return fail(reason)
	}
	return email, name, nil
}

// parseName checks a display name (the text before '<') and returns it
// without quotes, or a reason it is refused.
func parseName(raw string) (name, reason string) {
	n := strings.TrimSpace(raw)
	if n == "" {
		return "", ""
	}
	if n[0] == '"' {
		var b strings.Builder
		i, closed := 1, false
		for i < len(n) {
			c := n[i]
			if c == '\\' {
				if i+1 >= len(n) {
					break
				}
				b.WriteByte(n[i+1])
				i += 2
				continue
			}
			i++
			if c == '"' {
				closed = true
				break
			}
			b.WriteByte(c)
		}
		if !closed {
			return "", "the quotation marks around the name are not closed"
		}
		if i != len(n) {
			return "", "there is text after the quoted name"
		}
		name = strings.TrimSpace(b.String())
	} else {
		if strings.ContainsAny(n, "\"\\") {
			return "", "the name contains a stray quotation mark or backslash"
		}
		// Unquoted, these make a header list or group (a second recipient).
		if strings.ContainsAny(n, ",;:") {
			return "", "a name with a comma, semicolon or colon must be in double quotes"
		}
		name = n
	}
	if strings.ContainsAny(name, "<>@") {
		return "", "the name contains <, > or @"
	}
	return name, ""
}

// normalizeAddr validates a bare local@domain and returns its normalized
// form, or a reason it is refused.
func normalizeAddr(addr string) (email, reason string) {
	ats := strings.Count(addr, "@")
	hasSpace := strings.IndexFunc(addr, unicode.IsSpace) >= 0
	switch {
	case ats > 1 && (hasSpace || strings.ContainsAny(addr, ",;")):
		return "", "it contains more than one address; enter one address per entry"
	case hasSpace:
		return "", "it contains a space"
	case ats == 0:
		return "", "it has no @"
	case ats > 1:
		return "", "it has more than one @"
	}
	at := strings.IndexByte(addr, '@')
	local, domain := addr[:at], addr[at+1:]

	if r := checkLocal(local); r != "" {
		return "", r
	}

	if domain == "" {
		return "", "the domain (after @) is empty"
	}
	if domain[0] == '[' || isDottedNumbers(domain) {
		return "", "the domain is an IP address"
	}
	d, err := emaildomain.Normalize(domain)
	if err != nil {
		if !strings.Contains(strings.TrimSuffix(domain, "."), ".") {
			return "", "the domain has no dot (like example.com)"
		}
		return "", "the domain is not valid"
	}
	// A stored address must parse back to itself, so that looking up a
	// stored invitation by a re-parsed address always finds it; refuse the
	// rare domain whose normalized form is not a fixed point.
	if again, err := emaildomain.Normalize(d); err != nil || again != d {
		return "", "the domain is not valid"
	}

	email = strings.ToLower(local) + "@" + d
	if len(email) > maxAddress {
		return "", fmt.Sprintf("it is longer than %d characters", maxAddress)
	}
	return email, ""
}

// checkLocal returns why local is not an acceptable dot-atom local part,
// or "". Quoted local parts and comments are refused: real mailboxes do not
// need them and they are how one string becomes two recipients.
func checkLocal(local string) string {
	switch {
	case local == "":
		return "the part before @ is empty"
	case len(local) > maxLocal:
		return fmt.Sprintf("the part before @ is longer than %d characters", maxLocal)
	case local[0] == '.' || local[len(local)-1] == '.':
		return "the part before @ starts or ends with a dot"
	case strings.Contains(local, ".."):
		return "the part before @ has two dots in a row"
	}
	for _, r := range local {
		if r >= utf8.RuneSelf {
			return "the part before @ must use only ASCII letters, digits and !#$%&'*+/=?^_`{|}~-."
		}
		if r != '.' && !isAtext(byte(r)) {
			return fmt.Sprintf("the part before @ contains %q", r)
		}
	}
	return ""
}

// isAtext reports whether c is an RFC 5322 atext character.
func isAtext(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+/=?^_`{|}~-", c) >= 0
}

// isDottedNumbers reports whether d looks like an IPv4 address (every
// label all digits), so the reason can say so instead of "not valid".
func isDottedNumbers(d string) bool {
	d = strings.TrimSuffix(d, ".")
	if d == "" {
		return false
	}
	for _, l := range strings.Split(d, ".") {
		if l == "" || strings.Trim(l, "0123456789") != "" {
			return false
		}
	}
	return true
}

// CleanName makes a display name from a file cell safe to show: control
// and text-reordering characters (see isControl) become spaces, and runs of
// spaces collapse to one. Typed entries never get here with such
// characters, since Parse refuses them; file cells are free text.
func CleanName(name string) string {
	return strings.Join(strings.FieldsFunc(name, func(r rune) bool {
		return isControl(r) || unicode.IsSpace(r)
	}), " ")
}

// isControl reports C0 and C1 controls, DEL, and the invisible characters
// that reorder or break text (bidi overrides and isolates, line and
// paragraph separators), which make an address display differently from
// what it is.
func isControl(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f,
		r >= 0x202a && r <= 0x202e,
		r >= 0x2066 && r <= 0x2069,
		r == 0x2028, r == 0x2029:
		return true
	}
	return false
}
