// Package phone parses phone numbers as people type them and normalizes
// them to E.164, with libphonenumber's rules (github.com/nyaruka/phonenumbers,
// its Go port): a local form needs the organization's default region.
package phone

import (
	"errors"
	"fmt"
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

// ErrNotTextable is returned by CheckTextable.
var ErrNotTextable = errors.New("this number cannot be sent text messages")

// CheckTextable refuses numbers Admit must not text, whoever asks: premium
// -rate and shared-cost numbers, which SMS pumping uses to bill the sender,
// and, when allowed lists regions (ISO 3166 codes), every number outside
// them.
func CheckTextable(e164 string, allowed []string) error {
	n, err := phonenumbers.Parse(e164, "ZZ")
	if err != nil {
		return ErrInvalid
	}
	switch phonenumbers.GetNumberType(n) {
	case phonenumbers.PREMIUM_RATE, phonenumbers.SHARED_COST:
		return fmt.Errorf("%w: premium-rate and shared-cost numbers are never texted", ErrNotTextable)
	}
	if len(allowed) == 0 {
		return nil
	}
	region := phonenumbers.GetRegionCodeForNumber(n)
	for _, a := range allowed {
		if strings.EqualFold(a, region) {
			return nil
		}
	}
	return fmt.Errorf("%w: text messages to %s numbers are not enabled on this server (SMS_ALLOWED_REGIONS)", ErrNotTextable, region)
}

// CountryCode returns the calling code of an E.164 number (44 for
// +442079460958), or 0.
func CountryCode(e164 string) int {
	n, err := phonenumbers.Parse(e164, "ZZ")
	if err != nil {
		return 0
	}
	return int(n.GetCountryCode())
}
