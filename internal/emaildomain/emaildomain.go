// Package emaildomain normalizes email domains so that one domain has one
// spelling: lower case, IDNA to ASCII (so a look-alike Unicode domain gets
// its own, different punycode name), no trailing dot.
package emaildomain

import (
	"errors"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// ErrInvalid is returned for a string that is not a usable email domain.
var ErrInvalid = errors.New("not a valid email domain")

// profile maps (case, width) and validates labels as browsers and mail
// systems do for lookups.
var profile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.ValidateLabels(true),
	idna.StrictDomainName(true),
	idna.Transitional(false),
)

// Normalize returns the canonical form of domain or ErrInvalid.
func Normalize(domain string) (string, error) {
	d := strings.TrimSpace(domain)
	d = strings.TrimSuffix(d, ".")
	if d == "" || !utf8.ValidString(d) || strings.ContainsAny(d, "@/:[] \t\r\n\\") {
		return "", ErrInvalid // invalid UTF-8 would be read as U+FFFD
	}
	a, err := profile.ToASCII(d)
	if err != nil {
		return "", ErrInvalid
	}
	a = strings.ToLower(a)
	if len(a) > 253 {
		return "", ErrInvalid
	}
	labels := strings.Split(a, ".")
	if len(labels) < 2 {
		return "", ErrInvalid
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", ErrInvalid
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", ErrInvalid
			}
		}
	}
	// A numeric top-level label means an IP address, not a domain.
	tld := labels[len(labels)-1]
	if strings.Trim(tld, "0123456789") == "" {
		return "", ErrInvalid
	}
	// One domain, one spelling: the result must be its own normal form
	// (punycode that decodes to something invalid is refused).
	if again, err := profile.ToASCII(a); err != nil || again != a {
		return "", ErrInvalid
	}
	return a, nil
}
