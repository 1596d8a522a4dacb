package graph_test

import (
	"slices"
	"strings"
	"testing"

	"admit/internal/testutil"
)

const (
	addDomainMutation    = `mutation($d: String!) { addOrganizationDomain(input: {domain: $d}) { organization { domains } errors { code field message } } }`
	removeDomainMutation = `mutation($d: String!) { removeOrganizationDomain(input: {domain: $d}) { organization { domains } errors { code field message } } }`
)

type organizationPayload struct {
	Organization *struct{ Domains []string }
	Errors       []payloadError
}

func addDomain(t *testing.T, e *testutil.Env, token, domain string) organizationPayload {
	t.Helper()
	var out struct{ AddOrganizationDomain organizationPayload }
	wantData(t, e.Do(token, addDomainMutation, map[string]any{"d": domain}), &out)
	return out.AddOrganizationDomain
}

func removeDomain(t *testing.T, e *testutil.Env, token, domain string) organizationPayload {
	t.Helper()
	var out struct{ RemoveOrganizationDomain organizationPayload }
	wantData(t, e.Do(token, removeDomainMutation, map[string]any{"d": domain}), &out)
	return out.RemoveOrganizationDomain
}

// domainsOf returns the viewer's organization's domains as `organization` reads them.
func domainsOf(t *testing.T, e *testutil.Env, token string) []string {
	t.Helper()
	var out struct{ Organization struct{ Domains []string } }
	wantData(t, e.Do(token, `{ organization { domains } }`, nil), &out)
	return out.Organization.Domains
}

// domainCases are inputs and the single spelling each is stored as.
var domainCases = []struct{ in, want string }{
	{"Example.COM", "example.com"},
	{"example.com.", "example.com"},
	{" Sub.Example.com ", "sub.example.com"},
	{"bücher.example", "xn--bcher-kva.example"},
	{"ＥＸＡＭＰＬＥ.org", "example.org"}, // full-width letters
}

func TestAddOrganizationDomainNormalizes(t *testing.T) {
	t.Parallel()
	for _, tc := range domainCases {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			e := testutil.New(t)
			org := e.NewOrg("Acme")
			p := addDomain(t, e, org.AdminToken, tc.in)
			wantNoPayloadErrors(t, p.Errors)
			if p.Organization == nil || !slices.Equal(p.Organization.Domains, []string{tc.want}) {
				t.Fatalf("addOrganizationDomain(%q): want [%s], got %+v", tc.in, tc.want, p.Organization)
			}
			if got := domainsOf(t, e, org.AdminToken); !slices.Equal(got, []string{tc.want}) {
				t.Fatalf("organization.domains: want [%s], got %v", tc.want, got)
			}
			_, events := auditLog(t, e, org.AdminToken, nil)
			if !hasAudit(events, "organization.domain_added", tc.want, org.AdminEmail) {
				t.Fatalf("want an organization.domain_added audit event for %s by the admin, got %+v", tc.want, events)
			}
		})
	}
}

func TestOrganizationDomainsStaySortedAndNormalized(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	var want []string
	for _, in := range []string{"zeta.test", " Sub.Example.com ", "bücher.example", "ＥＸＡＭＰＬＥ.org", "Example.COM", "alpha.test."} {
		p := addDomain(t, e, org.AdminToken, in)
		wantNoPayloadErrors(t, p.Errors)
		got := domainsOf(t, e, org.AdminToken)
		if len(got) != len(want)+1 || !slices.IsSorted(got) {
			t.Fatalf("after adding %q: want %d sorted domains, got %v", in, len(want)+1, got)
		}
		if p.Organization == nil || !slices.Equal(p.Organization.Domains, got) {
			t.Fatalf("after adding %q: the payload says %+v but organization says %v", in, p.Organization, got)
		}
		want = got
	}
	if final := []string{"alpha.test", "example.com", "example.org", "sub.example.com", "xn--bcher-kva.example", "zeta.test"}; !slices.Equal(want, final) {
		t.Fatalf("domains: want %v, got %v", final, want)
	}
}

func TestAddOrganizationDomainRefusesInvalidDomains(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	wantNoPayloadErrors(t, addDomain(t, e, org.AdminToken, "acme.test").Errors)
	auditBefore := auditCountOf(t, e, org.AdminToken)

	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 58) + ".com"
	if len(long) != 254 {
		t.Fatalf("fixture: want a 254-character domain, got %d", len(long))
	}
	for _, in := range []string{
		"", "   ", ".", "localhost", "exa mple.com", "1.2.3.4", "[1.2.3.4]", "a@b.com", "-bad.com", "bad-.com",
		"http://x.com", "x.com/path", "exam_ple.com", "example..com", ".example.com", "example.com..", long,
		strings.Repeat("a", 64) + ".com",
	} {
		t.Run(in, func(t *testing.T) {
			p := addDomain(t, e, org.AdminToken, in)
			wantPayloadError(t, p.Errors, "INVALID_DOMAIN", "input.domain")
			if p.Organization != nil {
				t.Fatalf("want no organization in a refused payload, got %+v", p.Organization)
			}
		})
	}
	if got := domainsOf(t, e, org.AdminToken); !slices.Equal(got, []string{"acme.test"}) {
		t.Fatalf("domains after refused adds: want [acme.test], got %v", got)
	}
	if got := auditCountOf(t, e, org.AdminToken); got != auditBefore {
		t.Fatalf("refused adds wrote audit events: want %d, got %d", auditBefore, got)
	}

	// The longest valid domain, 253 characters, is accepted.
	longest := strings.TrimSuffix(long, "d.com") + ".com"
	if len(longest) != 253 {
		t.Fatalf("fixture: want a 253-character domain, got %d", len(longest))
	}
	wantNoPayloadErrors(t, addDomain(t, e, org.AdminToken, longest).Errors)
}

func TestOrganizationDomainSpellingsAndLookAlikes(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	wantNoPayloadErrors(t, addDomain(t, e, org.AdminToken, "example.com").Errors)
	auditBefore := auditCountOf(t, e, org.AdminToken)

	for _, in := range []string{"EXAMPLE.com.", "example.com", " Example.Com ", "ｅｘａｍｐｌｅ.com"} {
		t.Run(in, func(t *testing.T) {
			p := addDomain(t, e, org.AdminToken, in)
			wantPayloadError(t, p.Errors, "DOMAIN_EXISTS", "input.domain")
		})
	}
	if got := domainsOf(t, e, org.AdminToken); !slices.Equal(got, []string{"example.com"}) {
		t.Fatalf("domains after DOMAIN_EXISTS: want [example.com], got %v", got)
	}
	if got := auditCountOf(t, e, org.AdminToken); got != auditBefore {
		t.Fatalf("refused adds wrote audit events: want %d, got %d", auditBefore, got)
	}

	// "exаmple.com" with a Cyrillic а (U+0430) is another domain, stored as
	// its own punycode.
	p := addDomain(t, e, org.AdminToken, "ex\u0430mple.com")
	wantNoPayloadErrors(t, p.Errors)
	got := domainsOf(t, e, org.AdminToken)
	if len(got) != 2 || got[0] != "example.com" || !strings.HasPrefix(got[1], "xn--") || !strings.HasSuffix(got[1], ".com") {
		t.Fatalf("domains with the look-alike: want example.com and an xn-- name, got %v", got)
	}
	lookAlike := got[1]
	// Its punycode spelling names the same domain.
	wantPayloadError(t, addDomain(t, e, org.AdminToken, strings.ToUpper(lookAlike)).Errors, "DOMAIN_EXISTS", "input.domain")

	// Removing with another spelling removes the canonical one only.
	r := removeDomain(t, e, org.AdminToken, "EXAMPLE.Com.")
	wantNoPayloadErrors(t, r.Errors)
	if r.Organization == nil || !slices.Equal(r.Organization.Domains, []string{lookAlike}) {
		t.Fatalf("removeOrganizationDomain: want [%s], got %+v", lookAlike, r.Organization)
	}
	if got := domainsOf(t, e, org.AdminToken); !slices.Equal(got, []string{lookAlike}) {
		t.Fatalf("domains after remove: want [%s], got %v", lookAlike, got)
	}

	auditBefore = auditCountOf(t, e, org.AdminToken)
	for _, in := range []string{"example.com", "absent.example"} {
		t.Run("remove absent "+in, func(t *testing.T) {
			wantPayloadError(t, removeDomain(t, e, org.AdminToken, in).Errors, "DOMAIN_NOT_FOUND", "input.domain")
		})
	}
	wantPayloadError(t, removeDomain(t, e, org.AdminToken, "exa mple.com").Errors, "INVALID_DOMAIN", "input.domain")
	if got := auditCountOf(t, e, org.AdminToken); got != auditBefore {
		t.Fatalf("refused removes wrote audit events: want %d, got %d", auditBefore, got)
	}

	_, events := auditLog(t, e, org.AdminToken, nil)
	for _, want := range []struct{ action, summary string }{
		{"organization.domain_added", "example.com"},
		{"organization.domain_added", lookAlike},
		{"organization.domain_removed", "example.com"},
	} {
		if !hasAudit(events, want.action, want.summary, org.AdminEmail) {
			t.Fatalf("want audit event %s %s by the admin, got %+v", want.action, want.summary, events)
		}
	}
}

func TestOrganizationDomainsAreOwnedPerOrganization(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	a := e.NewOrg("Acme")
	b := e.NewOrg("Globex")
	wantNoPayloadErrors(t, addDomain(t, e, b.AdminToken, "globex.test").Errors)
	// A cannot remove B's domain: for A it does not exist.
	wantPayloadError(t, removeDomain(t, e, a.AdminToken, "globex.test").Errors, "DOMAIN_NOT_FOUND", "input.domain")
	if got := domainsOf(t, e, b.AdminToken); !slices.Equal(got, []string{"globex.test"}) {
		t.Fatalf("B's domains: want [globex.test], got %v", got)
	}
	if got := domainsOf(t, e, a.AdminToken); len(got) != 0 {
		t.Fatalf("A's domains: want none, got %v", got)
	}
}
