// Package phone parses phone numbers as people type them and normalizes
// them to E.164, with libphonenumber's rules (github.com/nyaruka/phonenumbers,
// its Go port): a local form needs the organization's default region.
package phone

import (
	"errors"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// ErrInvalid is returned for anything that is not a valid, dialable number.
var ErrInvalid = errors.New("not a valid phone number")

// Normalize returns number in E.164 (+442079460958). A number without an
// international prefix is read in region (an ISO 3166 code such as "GB");
// with no region it must start with + or 00.
func Normalize(number, region string) (string, error) {
	number = strings.TrimSpace(number)
	if number == "" || len(number) > 40 {
		return "", ErrInvalid
	}
	if strings.HasPrefix(number, "00") {
		number = "+" + number[2:]
	}
	region = strings.ToUpper(strings.TrimSpace(region))
	if region == "" && !strings.HasPrefix(number, "+") {
		return "", errors.New("not a valid phone number: give it with its country code (+44 …), or set the organization's default region")
	}
	if region == "" {
		region = "ZZ" // unknown: the number must carry its country code
	}
	n, err := phonenumbers.Parse(number, region)
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return "", ErrInvalid
	}
	return phonenumbers.Format(n, phonenumbers.E164), nil
}

// ValidRegion reports whether region is a region libphonenumber knows.
func ValidRegion(region string) bool {
	region = strings.ToUpper(strings.TrimSpace(region))
	return phonenumbers.GetSupportedRegions()[region]
}
