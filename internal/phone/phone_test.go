package phone_test

import (
	"errors"
	"strings"
	"testing"

	"admit/internal/phone"
)

func TestNormalize(t *testing.T) {
	for _, tt := range []struct {
		in, region, want string
	}{
		{"+44 20 7946 0958", "", "+442079460958"},
		{"020 7946 0958", "GB", "+442079460958"},
		{"0044 20 7946 0958", "US", "+442079460958"},
		{"(202) 555-0143", "US", "+12025550143"},
		{"+1 202-555-0143", "GB", "+12025550143"},
		{"030 901820", "DE", "+4930901820"},
		{"06 12 34 56 78", "fr", "+33612345678"},
	} {
		got, err := phone.Normalize(tt.in, tt.region)
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q, %q) = %q, %v; want %q", tt.in, tt.region, got, err, tt.want)
		}
	}
	for _, tt := range []struct{ in, region string }{
		{"", "GB"}, {"12", "GB"}, {"not a number", "GB"}, {"020 7946 0958", ""},
		{"+44 20 7946 09589999", ""}, {"+999 123", ""}, {"+44 20 7946 0958 ext. 12345678901234567890", ""},
	} {
		if got, err := phone.Normalize(tt.in, tt.region); err == nil {
			t.Errorf("Normalize(%q, %q) = %q; want an error", tt.in, tt.region, got)
		}
	}
	if !phone.ValidRegion("gb") || phone.ValidRegion("XX") {
		t.Error("ValidRegion")
	}
}

func TestCheckTextable(t *testing.T) {
	if err := phone.CheckTextable("+442079460958", nil); err != nil {
		t.Errorf("a London number: %v", err)
	}
	// libphonenumber's example premium-rate numbers (UK 09, US 900).
	for _, n := range []string{"+449098765432", "+19002345678"} {
		if err := phone.CheckTextable(n, nil); !errors.Is(err, phone.ErrNotTextable) {
			t.Errorf("%s: want ErrNotTextable, got %v", n, err)
		}
	}
	if err := phone.CheckTextable("+16502530000", []string{"gb", "IE"}); !errors.Is(err, phone.ErrNotTextable) || !strings.Contains(err.Error(), "US") {
		t.Errorf("outside the allowed regions: %v", err)
	}
	if err := phone.CheckTextable("+442079460958", []string{"gb", "IE"}); err != nil {
		t.Errorf("inside the allowed regions: %v", err)
	}
	if phone.CountryCode("+442079460958") != 44 || phone.CountryCode("nonsense") != 0 {
		t.Error("CountryCode")
	}
}
