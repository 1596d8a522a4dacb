package graph_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"admit/ent"
	"admit/ent/auditevent"
	"admit/ent/delivery"
	"admit/ent/invitation"
	"admit/ent/invitelink"
	"admit/ent/user"
	"admit/internal/ratelimit"
	"admit/internal/server"
	"admit/internal/testutil"
)

// Helpers of this file are prefixed lk so they cannot clash with the other
// test files of the package.

// lkLink is an InviteLink as the API shows it to admins.
type lkLink struct {
	ID                string
	Kind              string
	Status            string
	URL               *string
	ExpiresAt         *time.Time
	MaxUses           *int
	UseCount          int
	RestrictToDomains bool
	Role              *struct{ Name string }
}

const lkLinkFields = `id kind status url expiresAt maxUses useCount restrictToDomains role { name }`

type lkUserError struct {
	Code       string
	Field      *string
	Message    string
	RetryAfter *int
}

type lkLinkPayload struct {
	Link   *lkLink
	Errors []lkUserError
}

type lkJoinPayload struct {
	Message *string
	Errors  []lkUserError
}

type lkPreview struct {
	OrganizationName    string
	Kind                string
	RoleName            string
	RestrictedToDomains bool
	Domains             []string
	ExpiresAt           *time.Time
}

const (
	lkCreateMutation  = `mutation($in: CreateInviteLinkInput!) { createInviteLink(input: $in) { link { ` + lkLinkFields + ` } errors { code field message retryAfter } } }`
	lkRefreshMutation = `mutation($id: ID!) { refreshInviteLink(input: {id: $id}) { link { ` + lkLinkFields + ` } errors { code field message retryAfter } } }`
	lkRevokeMutation  = `mutation($id: ID!) { revokeInviteLink(input: {id: $id}) { link { ` + lkLinkFields + ` } errors { code field message retryAfter } } }`
	lkJoinMutation    = `mutation($t: String!, $e: String!, $n: String) { joinWithInviteLink(input: {token: $t, email: $e, name: $n}) { message errors { code field message retryAfter } } }`
	lkPreviewQuery    = `query($t: String!) { inviteLinkPreview(token: $t) { organizationName kind roleName restrictedToDomains domains expiresAt } }`
	lkNodeQuery       = `query($id: ID!) { node(id: $id) { ... on InviteLink { ` + lkLinkFields + ` } } }`
	lkListQuery       = `{ inviteLinks(first: 50) { totalCount edges { node { ` + lkLinkFields + ` } } } }`
)

// lkCreate runs createInviteLink as token and returns the payload.
func lkCreate(t *testing.T, e *testutil.Env, token string, in map[string]any) lkLinkPayload {
	t.Helper()
	var out struct{ CreateInviteLink lkLinkPayload }
	e.Do(token, lkCreateMutation, map[string]any{"in": in}).MustData(&out)
	return out.CreateInviteLink
}

// lkCreateOK creates a link and fails unless it was created.
func lkCreateOK(t *testing.T, e *testutil.Env, token string, in map[string]any) *lkLink {
	t.Helper()
	p := lkCreate(t, e, token, in)
	if len(p.Errors) != 0 || p.Link == nil {
		t.Fatalf("createInviteLink(%v): want a link, got %+v", in, p)
	}
	return p.Link
}

// lkWantPayloadError fails unless p carries exactly one error with code and no link.
func lkWantPayloadError(t *testing.T, what string, p lkLinkPayload, code string) lkUserError {
	t.Helper()
	if len(p.Errors) != 1 || p.Errors[0].Code != code || p.Link != nil {
		t.Fatalf("%s: want only the error %s and no link, got %+v (link %+v)", what, code, p.Errors, p.Link)
	}
	return p.Errors[0]
}

// lkToken is the token in a link's URL.
func lkToken(t *testing.T, l *lkLink) string {
	t.Helper()
	if l == nil || l.URL == nil {
		t.Fatalf("link %+v has no URL", l)
	}
	u, err := url.Parse(*l.URL)
	if err != nil {
		t.Fatalf("link URL %q: %v", *l.URL, err)
	}
	tok := u.Query().Get("token")
	if !strings.HasPrefix(tok, "adl_") {
		t.Fatalf("link URL %q has no adl_ token", *l.URL)
	}
	return tok
}

func lkRefresh(t *testing.T, e *testutil.Env, token, id string) lkLinkPayload {
	t.Helper()
	var out struct{ RefreshInviteLink lkLinkPayload }
	e.Do(token, lkRefreshMutation, map[string]any{"id": id}).MustData(&out)
	return out.RefreshInviteLink
}

func lkRevoke(t *testing.T, e *testutil.Env, token, id string) lkLinkPayload {
	t.Helper()
	var out struct{ RevokeInviteLink lkLinkPayload }
	e.Do(token, lkRevokeMutation, map[string]any{"id": id}).MustData(&out)
	return out.RevokeInviteLink
}

// lkRead reads a link through node(id) as token.
func lkRead(t *testing.T, e *testutil.Env, token, id string) *lkLink {
	t.Helper()
	var out struct{ Node *lkLink }
	e.Do(token, lkNodeQuery, map[string]any{"id": id}).MustData(&out)
	if out.Node == nil {
		t.Fatalf("node(%s): want the link, got null", id)
	}
	return out.Node
}

// lkList lists inviteLinks as token.
func lkList(t *testing.T, e *testutil.Env, token string) (int, []lkLink) {
	t.Helper()
	var out struct {
		InviteLinks struct {
			TotalCount int
			Edges      []struct{ Node lkLink }
		}
	}
	e.Do(token, lkListQuery, nil).MustData(&out)
	var links []lkLink
	for _, ed := range out.InviteLinks.Edges {
		links = append(links, ed.Node)
	}
	return out.InviteLinks.TotalCount, links
}

func lkJoinVars(token, email string) map[string]any {
	return map[string]any{"t": token, "e": email, "n": "Joiner"}
}

// lkJoin joins anonymously through the link.
func lkJoin(t *testing.T, e *testutil.Env, token, email string) lkJoinPayload {
	t.Helper()
	var out struct{ JoinWithInviteLink lkJoinPayload }
	e.Do("", lkJoinMutation, lkJoinVars(token, email)).MustData(&out)
	return out.JoinWithInviteLink
}

// lkJoinFrom joins from a client address (RemoteAddr) with extra headers.
func lkJoinFrom(t *testing.T, e *testutil.Env, remote string, header map[string]string, token, email string) lkJoinPayload {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": lkJoinMutation, "variables": lkJoinVars(token, email)})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	req.RemoteAddr = remote
	var out struct{ JoinWithInviteLink lkJoinPayload }
	e.Serve(req).MustData(&out)
	return out.JoinWithInviteLink
}

func lkWantJoined(t *testing.T, what string, p lkJoinPayload) {
	t.Helper()
	if len(p.Errors) != 0 || p.Message == nil || *p.Message == "" {
		t.Fatalf("%s: want a message and no errors, got %+v", what, p)
	}
}

func lkWantJoinError(t *testing.T, what string, p lkJoinPayload, code string) lkUserError {
	t.Helper()
	if len(p.Errors) != 1 || p.Errors[0].Code != code || p.Message != nil {
		t.Fatalf("%s: want only the error %s, got %+v (message %v)", what, code, p.Errors, p.Message)
	}
	return p.Errors[0]
}

// lkPreviewOf previews a link anonymously and fails on any error.
func lkPreviewOf(t *testing.T, e *testutil.Env, token string) lkPreview {
	t.Helper()
	var out struct{ InviteLinkPreview lkPreview }
	e.Do("", lkPreviewQuery, map[string]any{"t": token}).MustData(&out)
	return out.InviteLinkPreview
}

// lkPreviewFails previews a link anonymously and wants the error code.
func lkPreviewFails(t *testing.T, e *testutil.Env, token, code string) testutil.GQLError {
	t.Helper()
	r := e.Do("", lkPreviewQuery, map[string]any{"t": token})
	if len(r.Errors) != 1 {
		t.Fatalf("inviteLinkPreview(%q): want one error %s, got HTTP %d: %s", token, code, r.Status, r.Body)
	}
	return r.MustFail(code)
}

func lkSetDomains(t *testing.T, e *testutil.Env, org *testutil.Org, domains ...string) {
	t.Helper()
	if err := e.DB.Client.Organization.UpdateOneID(org.ID).SetDomains(domains).Exec(testutil.System()); err != nil {
		t.Fatalf("set domains: %v", err)
	}
}

func lkLinkRows(t *testing.T, e *testutil.Env, orgID int) int {
	t.Helper()
	n, err := e.DB.Client.InviteLink.Query().Where(invitelink.OrganizationID(orgID)).Count(testutil.System())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func lkInvitations(t *testing.T, e *testutil.Env, orgID int) []*ent.Invitation {
	t.Helper()
	invs, err := e.DB.Client.Invitation.Query().Where(invitation.OrganizationID(orgID)).Order(ent.Asc(invitation.FieldID)).All(testutil.System())
	if err != nil {
		t.Fatal(err)
	}
	return invs
}

func lkDeliveries(t *testing.T, e *testutil.Env, orgID int) int {
	t.Helper()
	n, err := e.DB.Client.Delivery.Query().Where(delivery.OrganizationID(orgID)).Count(testutil.System())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func lkAudits(t *testing.T, e *testutil.Env, orgID int, action string) []*ent.AuditEvent {
	t.Helper()
	evs, err := e.DB.Client.AuditEvent.Query().Where(auditevent.OrganizationID(orgID), auditevent.Action(action)).All(testutil.System())
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func lkID(t *testing.T, l *lkLink) int {
	t.Helper()
	id, err := strconv.Atoi(l.ID)
	if err != nil {
		t.Fatalf("link ID %q: %v", l.ID, err)
	}
	return id
}

func lkUseCount(t *testing.T, e *testutil.Env, id int) int {
	t.Helper()
	l, err := e.DB.Client.InviteLink.Get(testutil.System(), id)
	if err != nil {
		t.Fatal(err)
	}
	return l.UseCount
}

// lkWithLimits replaces the join rate limits; the limiters run on the
// environment's clock (the invite service's Now is that clock).
func lkWithLimits(perLink, perAddress int) testutil.Option {
	return func(o *server.Options) {
		now := o.Invites.Now
		if perLink > 0 {
			o.LinkLimits.PerLink = &ratelimit.Limiter{Limit: perLink, Window: time.Hour, Now: now}
		}
		if perAddress > 0 {
			o.LinkLimits.PerAddress = &ratelimit.Limiter{Limit: perAddress, Window: time.Hour, Now: now}
		}
	}
}

// lkMAC is the MAC part of adl_<id>_<gen>_<mac> (the MAC may hold '_').
func lkMAC(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.SplitN(strings.TrimPrefix(tok, "adl_"), "_", 3)
	if len(parts) != 3 || len(parts[2]) != 43 {
		t.Fatalf("token %q is not adl_<id>_<gen>_<43-character MAC>", tok)
	}
	return parts[2]
}

// lkDeref shows an optional int in failure messages.
func lkDeref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

func lkCloseTo(a, b time.Time, d time.Duration) bool {
	diff := a.Sub(b)
	return diff <= d && diff >= -d
}

// --- 1. createInviteLink ---------------------------------------------------

func TestCreateInviteLinkRules(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	other := e.NewOrg("Globex")

	// A company link needs a domain; nothing is written without one.
	p := lkCreate(t, e, org.AdminToken, map[string]any{"kind": "INTERNAL", "restrictToDomains": true})
	lkWantPayloadError(t, "company link without domains", p, "NO_DOMAINS")
	if n := lkLinkRows(t, e, org.ID); n != 0 {
		t.Fatalf("NO_DOMAINS: want no invite_links row, got %d", n)
	}
	if evs := lkAudits(t, e, org.ID, "invite_link.created"); len(evs) != 0 {
		t.Fatalf("NO_DOMAINS: want no audit event, got %d", len(evs))
	}

	lkSetDomains(t, e, org, "acme.test")
	company := lkCreateOK(t, e, org.AdminToken, map[string]any{"kind": "INTERNAL", "restrictToDomains": true})
	want := e.Clock.Now().Add(10 * 24 * time.Hour)
	if company.ExpiresAt == nil || !lkCloseTo(*company.ExpiresAt, want, time.Minute) {
		t.Fatalf("company link expiresAt: want ≈ %v (now+10 days), got %v", want, company.ExpiresAt)
	}
	if company.Status != "ACTIVE" || !company.RestrictToDomains || company.MaxUses != nil || company.UseCount != 0 ||
		company.Kind != "INTERNAL" || company.Role == nil || company.Role.Name != "Member" {
		t.Fatalf("company link: got %+v", company)
	}

	// A company link with an explicit expiry keeps it.
	explicit := e.Clock.Now().Add(72 * time.Hour).UTC().Truncate(time.Second)
	c2 := lkCreateOK(t, e, org.AdminToken, map[string]any{"kind": "CLIENT", "restrictToDomains": true, "expiresAt": explicit.Format(time.RFC3339)})
	if c2.ExpiresAt == nil || !c2.ExpiresAt.Equal(explicit) || c2.Kind != "CLIENT" {
		t.Fatalf("company link with expiresAt %v: got %+v", explicit, c2)
	}

	shareable := lkCreateOK(t, e, org.AdminToken, map[string]any{"kind": "INTERNAL"})
	if shareable.ExpiresAt != nil || shareable.MaxUses != nil || shareable.Status != "ACTIVE" || shareable.RestrictToDomains || shareable.URL == nil {
		t.Fatalf("shareable link: want no expiry, no max uses, ACTIVE, unrestricted, got %+v", shareable)
	}
	limited := lkCreateOK(t, e, org.AdminToken, map[string]any{"kind": "INTERNAL", "maxUses": 7})
	if limited.MaxUses == nil || *limited.MaxUses != 7 || limited.ExpiresAt != nil {
		t.Fatalf("link with maxUses 7: got %+v", limited)
	}
	created := 4
	if n := lkLinkRows(t, e, org.ID); n != created {
		t.Fatalf("want %d links, got %d", created, n)
	}

	// Refused input writes nothing.
	refusals := []struct {
		name  string
		in    map[string]any
		code  string
		field string
	}{
		{"expiresAt in the past", map[string]any{"kind": "INTERNAL", "expiresAt": e.Clock.Now().Add(-time.Hour).Format(time.RFC3339)}, "INVALID_INPUT", "input.expiresAt"},
		{"expiresAt in the past on a company link", map[string]any{"kind": "INTERNAL", "restrictToDomains": true, "expiresAt": e.Clock.Now().Add(-time.Minute).Format(time.RFC3339)}, "INVALID_INPUT", "input.expiresAt"},
		{"maxUses 0", map[string]any{"kind": "INTERNAL", "maxUses": 0}, "INVALID_INPUT", "input.maxUses"},
		{"maxUses -1", map[string]any{"kind": "CLIENT", "maxUses": -1}, "INVALID_INPUT", "input.maxUses"},
	}
	for _, tt := range refusals {
		ue := lkWantPayloadError(t, tt.name, lkCreate(t, e, org.AdminToken, tt.in), tt.code)
		if ue.Field == nil || *ue.Field != tt.field {
			t.Fatalf("%s: want field %s, got %v", tt.name, tt.field, ue.Field)
		}
	}
	if n := lkLinkRows(t, e, org.ID); n != created {
		t.Fatalf("after refused input: want %d links, got %d", created, n)
	}

	// The role ceiling: a custom admin role of rank 50 may make links for
	// the Member role but not for the Admin role (rank 100).
	lead := e.NewRole(org, "Lead", true, 50)
	e.NewUser(org, "lead@acme.test", lead.ID)
	leadToken := e.SignIn("lead@acme.test", testutil.DefaultPassword)
	e.Do(leadToken, lkCreateMutation, map[string]any{"in": map[string]any{"kind": "INTERNAL", "roleID": testutil.ID(org.AdminRoleID)}}).MustFail("FORBIDDEN")
	lkCreateOK(t, e, leadToken, map[string]any{"kind": "INTERNAL", "roleID": testutil.ID(org.MemberRoleID)})
	created++

	// Members may not create links at all.
	e.NewUser(org, "mem@acme.test", org.MemberRoleID)
	memToken := e.SignIn("mem@acme.test", testutil.DefaultPassword)
	e.Do(memToken, lkCreateMutation, map[string]any{"in": map[string]any{"kind": "INTERNAL"}}).MustFail("FORBIDDEN")

	// Another organization's role reads as missing.
	e.Do(org.AdminToken, lkCreateMutation, map[string]any{"in": map[string]any{"kind": "INTERNAL", "roleID": testutil.ID(other.MemberRoleID)}}).MustFail("NOT_FOUND")

	if n := lkLinkRows(t, e, org.ID); n != created {
		t.Fatalf("after refused creations: want %d links, got %d", created, n)
	}
	if n := lkLinkRows(t, e, other.ID); n != 0 {
		t.Fatalf("Globex: want no links, got %d", n)
	}
	if evs := lkAudits(t, e, org.ID, "invite_link.created"); len(evs) != created {
		t.Fatalf("want %d invite_link.created events, got %d", created, len(evs))
	}
}

func TestInviteLinkListShowsTheSameURLAndStaysInItsOrganization(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	other := e.NewOrg("Globex")
	a := lkCreateOK(t, e, org.AdminToken, map[string]any{"kind": "INTERNAL"})
	b := lkCreateOK(t, e, org.AdminToken, map[string]any{"kind": "CLIENT", "maxUses": 5})

	for _, l := range []*lkLink{a, b} {
		tok := lkToken(t, l)
		if *l.URL != testutil.JoinURL(tok) || !strings.HasPrefix(*l.URL, "https://admit.test/join?token=adl_") {
			t.Fatalf("link URL %q: want the configured template https://admit.test/join?token=adl_...", *l.URL)
		}
	}
	if *a.URL == *b.URL {
		t.Fatalf("two links share the URL %q", *a.URL)
	}

	// Copy link: every read shows the same URL.
	for i := range 3 {
		total, links := lkList(t, e, org.AdminToken)
		if total != 2 || len(links) != 2 {
			t.Fatalf("read %d: want 2 links, got %d (%+v)", i, total, links)
		}
		for _, l := range links {
			var want *lkLink
			switch l.ID {
			case a.ID:
				want = a
			case b.ID:
				want = b
			default:
				t.Fatalf("unexpected link %+v", l)
			}
			if l.URL == nil || *l.URL != *want.URL || l.Status != "ACTIVE" || l.UseCount != 0 {
				t.Fatalf("read %d of link %s: want URL %q, ACTIVE, useCount 0, got %+v", i, l.ID, *want.URL, l)
			}
			if (l.MaxUses == nil) != (want.MaxUses == nil) || l.MaxUses != nil && *l.MaxUses != *want.MaxUses {
				t.Fatalf("read %d of link %s: maxUses %v, want %v", i, l.ID, l.MaxUses, want.MaxUses)
			}
		}
		if got := lkRead(t, e, org.AdminToken, a.ID); got.URL == nil || *got.URL != *a.URL {
			t.Fatalf("node(%s): want URL %q, got %v", a.ID, *a.URL, got.URL)
		}
	}

	// Members may not see links.
	e.NewUser(org, "mem@acme.test", org.MemberRoleID)
	memToken := e.SignIn("mem@acme.test", testutil.DefaultPassword)
	e.Do(memToken, lkListQuery, nil).MustFail("FORBIDDEN")

	// Another organization's admin sees none of them.
	if total, links := lkList(t, e, other.AdminToken); total != 0 || len(links) != 0 {
		t.Fatalf("Globex's admin: want no links, got %d %+v", total, links)
	}
	r := e.Do(other.AdminToken, lkNodeQuery, map[string]any{"id": a.ID})
	r.MustFail("NOT_FOUND")
	if strings.Contains(string(r.Body), "adl_") {
		t.Fatalf("node of a foreign link leaks its token: %s", r.Body)
	}
	// Nor can they change them.
	for _, m := range []string{lkRefreshMutation, lkRevokeMutation} {
		e.Do(other.AdminToken, m, map[string]any{"id": a.ID}).MustFail("NOT_FOUND")
	}
	if got := lkRead(t, e, org.AdminToken, a.ID); got.URL == nil || *got.URL != *a.URL || got.Status != "ACTIVE" {
		t.Fatalf("after Globex's attempts: want link %s unchanged, got %+v", a.ID, got)
	}
}

func TestInviteLinkTokenIsNotStored(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	l := lkCreateOK(t, e, org.AdminToken, map[string]any{"kind": "INTERNAL"})
	ref := lkRefresh(t, e, org.AdminToken, l.ID)
	if len(ref.Errors) != 0 || ref.Link == nil {
		t.Fatalf("refresh: %+v", ref)
	}
	tokens := []string{lkToken(t, l), lkToken(t, ref.Link)}

	// Every spelling of the token or its MAC that could be stored.
	var needles [][]byte
	for _, tok := range tokens {
		mac := lkMAC(t, tok)
		raw, err := base64.RawURLEncoding.DecodeString(mac)
		if err != nil || len(raw) != 32 {
			t.Fatalf("token %q: MAC %q is not 32 bytes of base64url", tok, mac)
		}
		needles = append(needles, []byte(tok), []byte(mac), raw, []byte(base64.StdEncoding.EncodeToString([]byte(tok))),
			[]byte(hex.EncodeToString(raw)), []byte(base64.StdEncoding.EncodeToString(raw)))
	}

	rows, err := e.DB.SQL.Query(fmt.Sprintf("SELECT * FROM invite_links WHERE id = %d", lkID(t, l)))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for rows.Next() {
		found++
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			var cell []byte
			switch v := v.(type) {
			case []byte:
				cell = v
			case string:
				cell = []byte(v)
			default:
				cell = []byte(fmt.Sprint(v))
			}
			for _, n := range needles {
				if bytes.Contains(cell, n) || bytes.Contains(bytes.ToLower(cell), bytes.ToLower(n)) {
					t.Fatalf("column %s of invite_links holds the token (or its MAC) %q", cols[i], n)
				}
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if found != 1 || len(cols) < 5 {
		t.Fatalf("want the link's row with its columns, got %d rows of %v", found, cols)
	}
}

// --- 2. refresh, revoke, bad tokens, expiry --------------------------------

func TestInviteLinkRefreshAndRevoke(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	l := lkCreateOK(t, e, org.AdminToken, map[string]any{"kind": "INTERNAL"})
	oldToken := lkToken(t, l)
	lkPreviewOf(t, e, oldToken)

	ref := lkRefresh(t, e, org.AdminToken, l.ID)
	if len(ref.Errors) != 0 || ref.Link == nil || ref.Link.ID != l.ID || ref.Link.Status != "ACTIVE" {
		t.Fatalf("refresh: %+v", ref)
	}
	newToken := lkToken(t, ref.Link)
	if newToken == oldToken {
		t.Fatalf("refresh kept the token %q", oldToken)
	}
	if got := lkRead(t, e, org.AdminToken, l.ID); got.URL == nil || *got.URL != *ref.Link.URL {
		t.Fatalf("after refresh the link shows %v, want %q", got.URL, *ref.Link.URL)
	}
	refreshedErr := lkPreviewFails(t, e, oldToken, "LINK_REFRESHED")
	lkWantJoinError(t, "join with the old URL", lkJoin(t, e, oldToken, "old@example.test"), "LINK_REFRESHED")
	if p := lkPreviewOf(t, e, newToken); p.OrganizationName != "Acme" {
		t.Fatalf("preview of the new URL: %+v", p)
	}
	lkWantJoined(t, "join with the new URL", lkJoin(t, e, newToken, "new@example.test"))
	if invs := lkInvitations(t, e, org.ID); len(invs) != 1 || *invs[0].Email != "new@example.test" {
		t.Fatalf("want one invitation, for new@example.test, got %d", len(invs))
	}

	rev := lkRevoke(t, e, org.AdminToken, l.ID)
	if len(rev.Errors) != 0 || rev.Link == nil || rev.Link.Status != "REVOKED" || rev.Link.URL != nil {
		t.Fatalf("revoke: want REVOKED and no URL, got %+v", rev)
	}
	if got := lkRead(t, e, org.AdminToken, l.ID); got.Status != "REVOKED" || got.URL != nil {
		t.Fatalf("revoked link reads as %+v, want REVOKED and url null", got)
	}
	_, links := lkList(t, e, org.AdminToken)
	if len(links) != 1 || links[0].Status != "REVOKED" || links[0].URL != nil {
		t.Fatalf("inviteLinks after revoke: %+v", links)
	}
	revokedErr := lkPreviewFails(t, e, newToken, "LINK_REVOKED")
	lkWantJoinError(t, "join through a revoked link", lkJoin(t, e, newToken, "late@example.test"), "LINK_REVOKED")
	if invs := lkInvitations(t, e, org.ID); len(invs) != 1 {
		t.Fatalf("after refused joins: want 1 invitation, got %d", len(invs))
	}

	lkWantPayloadError(t, "refresh a revoked link", lkRefresh(t, e, org.AdminToken, l.ID), "LINK_REVOKED")
	lkWantPayloadError(t, "revoke a revoked link", lkRevoke(t, e, org.AdminToken, l.ID), "LINK_REVOKED")
	lkPreviewFails(t, e, newToken, "LINK_REVOKED") // the refused refresh minted no live URL
	if got := lkRead(t, e, org.AdminToken, l.ID); got.URL != nil {
		t.Fatalf("refused refresh gave the revoked link a URL %q", *got.URL)
	}
	if refreshedErr.Message == revokedErr.Message {
		t.Fatalf("refreshed and revoked links answer the same message %q", revokedErr.Message)
	}

	// Audit: who did what.
	for _, action := range []string{"invite_link.created", "invite_link.refreshed", "invite_link.revoked"} {
		evs := lkAudits(t, e, org.ID, action)
		if len(evs) != 1 || evs[0].ActorID == nil || *evs[0].ActorID != org.AdminID ||
			evs[0].TargetID == nil || *evs[0].TargetID != lkID(t, l) || evs[0].TargetType != "InviteLink" {
			t.Fatalf("%s: want one event by the admin on link %s, got %+v", action, l.ID, evs)
		}
	}
	used := lkAudits(t, e, org.ID, "invite_link.used")
	if len(used) != 1 || used[0].Summary != "new@example.test" || used[0].TargetID == nil || *used[0].TargetID != lkID(t, l) {
		t.Fatalf("invite_link.used: want one event for new@example.test, got %+v", used)
	}
}

func TestInviteLinkUnknownAndForeignTokens(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	l := lkCreateOK(t, e, org.AdminToken, map[string]any{"kind": "INTERNAL"})
	tok := lkToken(t, l)
	id := lkID(t, l)
	mac := lkMAC(t, tok)

	// An invitation token, from a real invitation message.
	var inv struct {
		InviteUsers struct {
			Errors []struct{ Code string }
		}
	}
	e.Do(org.AdminToken, `mutation { inviteUsers(input: {emails: ["invitee@example.test"]}) { errors { code } } }`, nil).MustData(&inv)
	if len(inv.InviteUsers.Errors) != 0 {
		t.Fatalf("inviteUsers: %+v", inv.InviteUsers.Errors)
	}
	e.Deliver()
	msgs := e.Mail.To("invitee@example.test")
	if len(msgs) != 1 {
		t.Fatalf("want one invitation message, got %d", len(msgs))
	}
	invToken := testutil.TokenIn(t, msgs[0])

	badMAC := []byte(mac)
	if badMAC[0] == 'A' {
		badMAC[0] = 'B'
	} else {
		badMAC[0] = 'A'
	}
	tests := []struct{ name, token string }{
		{"empty", ""},
		{"garbage", "not-a-token"},
		{"prefix only", "adl_"},
		{"unknown link", fmt.Sprintf("adl_%d_1_%s", id+100000, mac)},
		{"bad MAC", fmt.Sprintf("adl_%d_1_%s", id, badMAC)},
		{"short MAC", fmt.Sprintf("adl_%d_1_%s", id, mac[:42])},
		{"future generation", fmt.Sprintf("adl_%d_2_%s", id, mac)},
		{"generation zero", fmt.Sprintf("adl_%d_0_%s", id, mac)},
		{"leading zero", fmt.Sprintf("adl_0%d_1_%s", id, mac)},
		{"whole URL", *l.URL},
		{"invitation token", invToken},
		{"invitation token as adl_", "adl_" + strings.TrimPrefix(invToken, "adi_")},
		{"session token", org.AdminToken},
		{"session token as adl_", "adl_" + strings.TrimPrefix(org.AdminToken, "ads_")},
	}
	var first string
	for _, tt := range tests {
		if tt.token == tok {
			t.Fatalf("%s: the case is the real token", tt.name)
		}
		ge := lkPreviewFails(t, e, tt.token, "LINK_NOT_FOUND")
		if first == "" {
			first = ge.Message
		} else if ge.Message != first {
			t.Fatalf("%s: message %q differs from %q: unknown tokens should answer alike", tt.name, ge.Message, first)
		}
		lkWantJoinError(t, tt.name, lkJoin(t, e, tt.token, "someone@example.test"), "LINK_NOT_FOUND")
	}
	if lkUseCount(t, e, id) != 0 {
		t.Fatalf("bad tokens counted uses")
	}
	if invs := lkInvitations(t, e, org.ID); len(invs) != 1 {
		t.Fatalf("bad tokens made invitations: %d", len(invs))
	}
	// The real token still works, and the link token is no invitation token.
	lkPreviewOf(t, e, tok)
	var acc struct {
		AcceptInvitation struct {
			Token  *string
			Errors []struct{ Code string }
		}
	}
	e.Do("", `mutation($t: String!) { acceptInvitation(input: {token: $t, name: "X", password: "long enough password"}) { token errors { code } } }`,
		map[string]any{"t": tok}).MustData(&acc)
	if acc.AcceptInvitation.Token != nil || len(acc.AcceptInvitation.Errors) != 1 || acc.AcceptInvitation.Errors[0].Code != "INVITATION_NOT_FOUND" {
		t.Fatalf("link token accepted as an invitation: %+v", acc.AcceptInvitation)
	}
}

func TestInviteLinkExpiresWithTheClock(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	l := lkCreateOK(t, e, org.AdminToken, map[string]any{"kind": "INTERNAL", "expiresAt": e.Clock.Now().Add(time.Hour).Format(time.RFC3339Nano)})
	tok := lkToken(t, l)
	if l.Status != "ACTIVE" {
		t.Fatalf("new link: %+v", l)
	}
	lkPreviewOf(t, e, tok)
	e.Clock.Advance(59 * time.Minute)
	lkWantJoined(t, "join before expiry", lkJoin(t, e, tok, "early@example.test"))

	e.Clock.Advance(time.Hour)
	lkPreviewFails(t, e, tok, "LINK_EXPIRED")
	lkWantJoinError(t, "join after expiry", lkJoin(t, e, tok, "late@example.test"), "LINK_EXPIRED")
	got := lkRead(t, e, org.AdminToken, l.ID)
	if got.Status != "EXPIRED" || got.UseCount != 1 {
		t.Fatalf("expired link: want EXPIRED with useCount 1, got %+v", got)
	}
	if invs := lkInvitations(t, e, org.ID); len(invs) != 1 || *invs[0].Email != "early@example.test" {
		t.Fatalf("want only early@example.test invited, got %d invitations", len(invs))
	}
}

func TestInviteLinkErrorCodesAreDistinct(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	mk := func(in map[string]any) (*lkLink, string) {
		l := lkCreateOK(t, e, org.AdminToken, in)
		return l, lkToken(t, l)
	}

	_, expTok := mk(map[string]any{"kind": "INTERNAL", "expiresAt": e.Clock.Now().Add(time.Hour).Format(time.RFC3339Nano)})
	refLink, refTok := mk(map[string]any{"kind": "INTERNAL"})
	revLink, revTok := mk(map[string]any{"kind": "INTERNAL"})
	_, exhTok := mk(map[string]any{"kind": "INTERNAL", "maxUses": 1})

	if p := lkRefresh(t, e, org.AdminToken, refLink.ID); len(p.Errors) != 0 {
		t.Fatalf("refresh: %+v", p)
	}
	if p := lkRevoke(t, e, org.AdminToken, revLink.ID); len(p.Errors) != 0 {
		t.Fatalf("revoke: %+v", p)
	}
	lkWantJoined(t, "use the one use", lkJoin(t, e, exhTok, "one@example.test"))
	e.Clock.Advance(2 * time.Hour)

	cases := []struct{ what, token, code string }{
		{"unknown", "adl_999999_1_" + strings.Repeat("A", 43), "LINK_NOT_FOUND"},
		{"refreshed", refTok, "LINK_REFRESHED"},
		{"revoked", revTok, "LINK_REVOKED"},
		{"expired", expTok, "LINK_EXPIRED"},
		{"exhausted", exhTok, "LINK_EXHAUSTED"},
	}
	codes := map[string]string{}
	messages := map[string]string{}
	for _, c := range cases {
		ge := lkPreviewFails(t, e, c.token, c.code)
		ue := lkWantJoinError(t, c.what, lkJoin(t, e, c.token, "two@example.test"), c.code)
		if prev, dup := codes[c.code]; dup {
			t.Fatalf("%s and %s share the code %s", prev, c.what, c.code)
		}
		codes[c.code] = c.what
		if prev, dup := messages[ge.Message]; dup {
			t.Fatalf("%s and %s share the message %q", prev, c.what, ge.Message)
		}
		messages[ge.Message] = c.what
		if ue.Message == "" {
			t.Fatalf("%s: join error has no message", c.what)
		}
	}
	if len(codes) != 5 {
		t.Fatalf("want 5 distinct codes, got %v", codes)
	}
}

// --- 3. preview -----------------------------------------------------------

func TestInviteLinkPreviewShowsOnlyPublicFacts(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	lkSetDomains(t, e, org, "acme.test", "acme.example")
	contractor := e.NewRole(org, "Contractor", false, 10)

	company := lkCreateOK(t, e, org.AdminToken, map[string]any{"kind": "CLIENT", "restrictToDomains": true, "roleID": testutil.ID(contractor.ID)})
	p := lkPreviewOf(t, e, lkToken(t, company))
	slices.Sort(p.Domains)
	// The stored expiry (PostgreSQL keeps microseconds, so compare with a
	// fresh read rather than the nanoseconds createInviteLink echoed).
	stored := lkRead(t, e, org.AdminToken, company.ID)
	if p.OrganizationName != "Acme" || p.Kind != "CLIENT" || p.RoleName != "Contractor" || !p.RestrictedToDomains ||
		!slices.Equal(p.Domains, []string{"acme.example", "acme.test"}) || p.ExpiresAt == nil || stored.ExpiresAt == nil ||
		!p.ExpiresAt.Equal(*stored.ExpiresAt) || !lkCloseTo(*p.ExpiresAt, *company.ExpiresAt, time.Millisecond) {
		t.Fatalf("company link preview: got %+v (link %+v, stored expiry %v)", p, company, stored.ExpiresAt)
	}

	shareable := lkCreateOK(t, e, org.AdminToken, map[string]any{"kind": "INTERNAL", "maxUses": 4})
	p = lkPreviewOf(t, e, lkToken(t, shareable))
	if p.OrganizationName != "Acme" || p.Kind != "INTERNAL" || p.RoleName != "Member" || p.RestrictedToDomains ||
		p.Domains == nil || len(p.Domains) != 0 || p.ExpiresAt != nil {
		t.Fatalf("shareable link preview: want no domains (the link is not restricted) and no expiry, got %+v", p)
	}
	if n := lkUseCount(t, e, lkID(t, shareable)); n != 0 {
		t.Fatalf("preview counted a use: %d", n)
	}

	// The type has exactly the public fields.
	var intro struct {
		Type struct{ Fields []struct{ Name string } } `json:"__type"`
	}
	e.Do("", `{ __type(name: "InviteLinkPreview") { fields { name } } }`, nil).MustData(&intro)
	var names []string
	for _, f := range intro.Type.Fields {
		names = append(names, f.Name)
	}
	slices.Sort(names)
	want := []string{"domains", "expiresAt", "kind", "organizationName", "restrictedToDomains", "roleName"}
	if !slices.Equal(names, want) {
		t.Fatalf("InviteLinkPreview fields: want %v, got %v", want, names)
	}

	// The answer carries nothing else about the organization or the link.
	r := e.Do("", `query($t: String!) { inviteLinkPreview(token: $t) { organizationName kind roleName restrictedToDomains domains expiresAt } }`,
		map[string]any{"t": lkToken(t, shareable)})
	for _, secret := range []string{org.AdminEmail, "adl_", "maxUses", "useCount"} {
		if strings.Contains(string(r.Body), secret) {
			t.Fatalf("preview answer contains %q: %s", secret, r.Body)
		}
	}
}

// --- 4. domain matching --------------------------------------------------

func TestInviteLinkDomainMatching(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	lkSetDomains(t, e, org, "acme.test")
	l := lkCreateOK(t, e, org.AdminToken, map[string]any{"kind": "INTERNAL", "restrictToDomains": true})
	tok, id := lkToken(t, l), lkID(t, l)

	allowed := []struct{ input, stored string }{
		{"pat@acme.test", "pat@acme.test"},
		{"Kim@ACME.TEST", "kim@acme.test"},
		{"lee@acme.test.", "lee@acme.test"},
		{"pat+tag@acme.test", "pat+tag@acme.test"},
	}
	for i, a := range allowed {
		lkWantJoined(t, a.input, lkJoin(t, e, tok, a.input))
		if n := lkUseCount(t, e, id); n != i+1 {
			t.Fatalf("%s: want useCount %d, got %d", a.input, i+1, n)
		}
		invs := lkInvitations(t, e, org.ID)
		if len(invs) != i+1 || *invs[i].Email != a.stored || invs[i].Source != invitation.SourceLINK {
			t.Fatalf("%s: want a LINK invitation for %s, got %d invitations", a.input, a.stored, len(invs))
		}
	}

	wantUses := len(allowed)
	deliveries := lkDeliveries(t, e, org.ID)
	refused := []struct{ input, code string }{
		{"pat@sub.acme.test", "DOMAIN_NOT_ALLOWED"},
		{"pat@acme.test.evil.com", "DOMAIN_NOT_ALLOWED"},
		{"pat@evilacme.test", "DOMAIN_NOT_ALLOWED"},
		{"pat@\u0430cme.test", "DOMAIN_NOT_ALLOWED"}, // Cyrillic а
		{"pat@acme.tests", "DOMAIN_NOT_ALLOWED"},
		{"not an address", "INVALID_ADDRESS"},
		{"pat@acme.test, eve@evil.test", "INVALID_ADDRESS"},
	}
	for _, r := range refused {
		ue := lkWantJoinError(t, r.input, lkJoin(t, e, tok, r.input), r.code)
		if ue.Field == nil || *ue.Field != "input.email" {
			t.Fatalf("%s: want field input.email, got %v", r.input, ue.Field)
		}
		if n := lkUseCount(t, e, id); n != wantUses {
			t.Fatalf("%s: refusal counted a use (useCount %d, want %d)", r.input, n, wantUses)
		}
		if invs := lkInvitations(t, e, org.ID); len(invs) != len(allowed) {
			t.Fatalf("%s: refusal wrote an invitation (%d)", r.input, len(invs))
		}
		if n := lkDeliveries(t, e, org.ID); n != deliveries {
			t.Fatalf("%s: refusal queued a message", r.input)
		}
	}
	if got := lkRead(t, e, org.AdminToken, l.ID); got.UseCount != wantUses {
		t.Fatalf("useCount through the API: want %d, got %d", wantUses, got.UseCount)
	}
	if evs := lkAudits(t, e, org.ID, "invite_link.used"); len(evs) != wantUses {
		t.Fatalf("want %d invite_link.used events, got %d", wantUses, len(evs))
	}
}

// --- 5. joining -----------------------------------------------------------

type lkAccepted struct {
	AcceptInvitation struct {
		Token *string
		User  *struct {
			Email string
			Kind  string
			Role  struct{ Name string }
		}
		Errors []struct{ Code string }
	}
}

func lkAccept(t *testing.T, e *testutil.Env, token string) lkAccepted {
	t.Helper()
	var acc lkAccepted
	e.Do("", `mutation($t: String!) { acceptInvitation(input: {token: $t, name: "Sam Joiner", password: "long enough password"}) { token user { email kind role { name } } errors { code } } }`,
		map[string]any{"t": token}).MustData(&acc)
	return acc
}

func TestJoinWithInviteLinkCreatesAPendingInvitation(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	engineer := e.NewRole(org, "Engineer", false, 20)
	l := lkCreateOK(t, e, org.AdminToken, map[string]any{"kind": "INTERNAL", "roleID": testutil.ID(engineer.ID)})
	tok := lkToken(t, l)

	lkWantJoined(t, "join", lkJoin(t, e, tok, "Sam@Example.test"))
	invs := lkInvitations(t, e, org.ID)
	if len(invs) != 1 {
		t.Fatalf("want one invitation, got %d", len(invs))
	}
	inv := invs[0]
	if *inv.Email != "sam@example.test" || inv.Status != invitation.StatusPENDING || inv.Source != invitation.SourceLINK ||
		inv.Kind != invitation.KindINTERNAL || inv.RoleID != engineer.ID || inv.InviteLinkID == nil || *inv.InviteLinkID != lkID(t, l) || inv.Admin {
		t.Fatalf("invitation: want pending, LINK, INTERNAL, role Engineer, from link %s, got %+v", l.ID, inv)
	}
	e.Deliver()
	msgs := e.Mail.To("sam@example.test")
	if len(msgs) != 1 {
		t.Fatalf("want one confirmation message, got %d", len(msgs))
	}
	if n := len(e.Mail.Messages()); n != 1 {
		t.Fatalf("want one message in all, got %d", n)
	}

	acc := lkAccept(t, e, testutil.TokenIn(t, msgs[0]))
	if acc.AcceptInvitation.Token == nil || acc.AcceptInvitation.User == nil || len(acc.AcceptInvitation.Errors) != 0 {
		t.Fatalf("accept: %+v", acc.AcceptInvitation)
	}
	if u := acc.AcceptInvitation.User; u.Email != "sam@example.test" || u.Kind != "INTERNAL" || u.Role.Name != "Engineer" {
		t.Fatalf("accepted user: want sam@example.test, INTERNAL, Engineer, got %+v", u)
	}
	var me meResult
	e.Do(*acc.AcceptInvitation.Token, meQuery, nil).MustData(&me)
	if me.Me.Email != "sam@example.test" || me.Me.Role.Name != "Engineer" || me.Me.Organization.Name != "Acme" {
		t.Fatalf("me after accepting: %+v", me.Me)
	}

	created := lkAudits(t, e, org.ID, "invite_link.created")
	if len(created) != 1 || created[0].ActorID == nil || *created[0].ActorID != org.AdminID {
		t.Fatalf("invite_link.created: want one by the admin, got %+v", created)
	}
	used := lkAudits(t, e, org.ID, "invite_link.used")
	if len(used) != 1 || used[0].Summary != "sam@example.test" || used[0].TargetID == nil || *used[0].TargetID != lkID(t, l) {
		t.Fatalf("invite_link.used: want one for sam@example.test on the link, got %+v", used)
	}
}

func TestJoinWithClientInviteLinkMakesAClient(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	l := lkCreateOK(t, e, org.AdminToken, map[string]any{"kind": "CLIENT"})
	lkWantJoined(t, "join", lkJoin(t, e, lkToken(t, l), "client@example.test"))
	invs := lkInvitations(t, e, org.ID)
	if len(invs) != 1 || invs[0].Kind != invitation.KindCLIENT || invs[0].Source != invitation.SourceLINK || invs[0].RoleID != org.MemberRoleID {
		t.Fatalf("want one CLIENT LINK invitation with the Member role, got %+v", invs)
	}
	e.Deliver()
	msgs := e.Mail.To("client@example.test")
	if len(msgs) != 1 {
		t.Fatalf("want one message, got %d", len(msgs))
	}
	acc := lkAccept(t, e, testutil.TokenIn(t, msgs[0]))
	if acc.AcceptInvitation.Token == nil || acc.AcceptInvitation.User == nil ||
		acc.AcceptInvitation.User.Kind != "CLIENT" || acc.AcceptInvitation.User.Role.Name != "Member" {
		t.Fatalf("accept through a CLIENT link: want a CLIENT Member, got %+v", acc.AcceptInvitation)
	}
	u, err := e.DB.Client.User.Query().Where(user.OrganizationID(org.ID), user.Email("client@example.test")).Only(testutil.System())
	if err != nil {
		t.Fatal(err)
	}
	if u.Kind != user.KindCLIENT || u.Status != user.StatusACTIVE {
		t.Fatalf("stored user: want an active CLIENT, got %s %s", u.Kind, u.Status)
	}
}

func TestJoinWithInviteLinkHidesExistingAccounts(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	e.NewUser(org, "ann@example.test", org.MemberRoleID)
	l := lkCreateOK(t, e, org.AdminToken, map[string]any{"kind": "INTERNAL"})
	tok := lkToken(t, l)

	member := e.Do("", lkJoinMutation, lkJoinVars(tok, "ann@example.test"))
	stranger := e.Do("", lkJoinMutation, lkJoinVars(tok, "bob@example.test"))
	var m, s struct{ JoinWithInviteLink lkJoinPayload }
	member.MustData(&m)
	stranger.MustData(&s)
	lkWantJoined(t, "member", m.JoinWithInviteLink)
	lkWantJoined(t, "stranger", s.JoinWithInviteLink)
	mb := strings.ReplaceAll(string(member.Body), "ann@example.test", "<addr>")
	sb := strings.ReplaceAll(string(stranger.Body), "bob@example.test", "<addr>")
	if mb != sb || member.Status != stranger.Status {
		t.Fatalf("answers differ for a member and a stranger:\n%d %s\n%d %s", member.Status, member.Body, stranger.Status, stranger.Body)
	}

	invs := lkInvitations(t, e, org.ID)
	if len(invs) != 1 || *invs[0].Email != "bob@example.test" {
		t.Fatalf("want one invitation, for bob@example.test, got %d", len(invs))
	}

	e.Deliver()
	annMsgs, bobMsgs := e.Mail.To("ann@example.test"), e.Mail.To("bob@example.test")
	if len(annMsgs) != 1 || len(bobMsgs) != 1 {
		t.Fatalf("want one message each, got %d for ann and %d for bob", len(annMsgs), len(bobMsgs))
	}
	ann, bob := annMsgs[0], bobMsgs[0]
	if ann.Subject == bob.Subject || ann.Text == bob.Text {
		t.Fatalf("the member got the invitation message:\n%s\n%s", ann.Subject, ann.Text)
	}
	if !strings.Contains(strings.ToLower(ann.Subject), "already have") {
		t.Fatalf("member's message subject %q does not say the account exists", ann.Subject)
	}
	for _, part := range []string{ann.Subject, ann.Text, ann.HTML} {
		if strings.Contains(part, "token=") || strings.Contains(part, "adi_") || strings.Contains(part, "adl_") {
			t.Fatalf("member's message carries a token:\n%s", part)
		}
	}
	if !strings.Contains(bob.Text, "adi_") && !strings.Contains(bob.Text, "token=") {
		t.Fatalf("stranger's message has no invitation link:\n%s", bob.Text)
	}
}

func TestJoinWithInviteLinkTwiceSendsOneMessage(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	l := lkCreateOK(t, e, org.AdminToken, map[string]any{"kind": "INTERNAL"})
	tok := lkToken(t, l)

	lkWantJoined(t, "first join", lkJoin(t, e, tok, "sam@example.test"))
	e.Deliver()
	e.Clock.Advance(30 * time.Second)
	lkWantJoined(t, "second join", lkJoin(t, e, tok, "sam@example.test"))
	lkWantJoined(t, "third join, other spelling", lkJoin(t, e, tok, "SAM@example.test"))
	e.Deliver()
	if invs := lkInvitations(t, e, org.ID); len(invs) != 1 {
		t.Fatalf("want one invitation, got %d", len(invs))
	}
	msgs := e.Mail.To("sam@example.test")
	if len(msgs) != 1 {
		t.Fatalf("want one message within a minute, got %d", len(msgs))
	}
	first := testutil.TokenIn(t, msgs[0])

	// After the cooldown the pending invitation is sent again (still one
	// invitation), and its link works.
	e.Clock.Advance(2 * time.Minute)
	lkWantJoined(t, "join after the cooldown", lkJoin(t, e, tok, "sam@example.test"))
	e.Deliver()
	if invs := lkInvitations(t, e, org.ID); len(invs) != 1 || invs[0].Status != invitation.StatusPENDING {
		t.Fatalf("after the cooldown: want one pending invitation, got %+v", invs)
	}
	msgs = e.Mail.To("sam@example.test")
	if len(msgs) != 2 {
		t.Fatalf("after the cooldown: want 2 messages, got %d", len(msgs))
	}
	if tok2 := testutil.TokenIn(t, msgs[1]); tok2 != first {
		// The same invitation is sent again; its link is unchanged.
		t.Fatalf("resent message has a different token %q, want %q", tok2, first)
	}
	acc := lkAccept(t, e, first)
	if acc.AcceptInvitation.Token == nil {
		t.Fatalf("accept: %+v", acc.AcceptInvitation)
	}
}

// --- 6. use counting ------------------------------------------------------

func TestInviteLinkMaxUses(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	l := lkCreateOK(t, e, org.AdminToken, map[string]any{"kind": "INTERNAL", "maxUses": 3})
	tok := lkToken(t, l)
	for i := range 3 {
		lkWantJoined(t, fmt.Sprint("join ", i+1), lkJoin(t, e, tok, fmt.Sprintf("user%d@example.test", i)))
		if got := lkRead(t, e, org.AdminToken, l.ID); got.UseCount != i+1 {
			t.Fatalf("after join %d: useCount %d", i+1, got.UseCount)
		}
	}
	lkWantJoinError(t, "fourth join", lkJoin(t, e, tok, "user4@example.test"), "LINK_EXHAUSTED")
	lkPreviewFails(t, e, tok, "LINK_EXHAUSTED")
	got := lkRead(t, e, org.AdminToken, l.ID)
	if got.Status != "EXHAUSTED" || got.UseCount != 3 || got.MaxUses == nil || *got.MaxUses != 3 || got.URL == nil {
		t.Fatalf("used-up link: want EXHAUSTED, useCount 3 of 3, URL still shown, got %+v", got)
	}
	if invs := lkInvitations(t, e, org.ID); len(invs) != 3 {
		t.Fatalf("want 3 invitations, got %d", len(invs))
	}
	// A known member joining also counts a use: the answer must not differ.
	e.NewUser(org, "ann@example.test", org.MemberRoleID)
	lkWantJoinError(t, "member on a used-up link", lkJoin(t, e, tok, "ann@example.test"), "LINK_EXHAUSTED")
}

func TestInviteLinkConcurrentJoinsRespectMaxUses(t *testing.T) {
	t.Parallel()
	const maxUses, joiners = 5, 20
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	l := lkCreateOK(t, e, org.AdminToken, map[string]any{"kind": "INTERNAL", "maxUses": maxUses})
	tok := lkToken(t, l)

	type result struct {
		status int
		body   string
		codes  []string
		ok     bool
	}
	results := make([]result, joiners)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range joiners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, _ := json.Marshal(map[string]any{"query": lkJoinMutation, "variables": lkJoinVars(tok, fmt.Sprintf("racer%02d@example.test", i))})
			req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.RemoteAddr = fmt.Sprintf("198.51.100.%d:1234", i+1)
			<-start
			rec := httptest.NewRecorder()
			e.Server.ServeHTTP(rec, req)
			var out struct {
				Data   *struct{ JoinWithInviteLink *lkJoinPayload }
				Errors []struct {
					Extensions map[string]any
				}
			}
			r := result{status: rec.Code, body: rec.Body.String()}
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err == nil {
				for _, ge := range out.Errors {
					r.codes = append(r.codes, fmt.Sprint(ge.Extensions["code"]))
				}
				if out.Data != nil && out.Data.JoinWithInviteLink != nil {
					p := out.Data.JoinWithInviteLink
					for _, ue := range p.Errors {
						r.codes = append(r.codes, ue.Code)
					}
					r.ok = len(p.Errors) == 0 && len(out.Errors) == 0 && p.Message != nil
				}
			}
			results[i] = r
		}()
	}
	close(start)
	wg.Wait()

	ok, exhausted := 0, 0
	for i, r := range results {
		switch {
		case r.ok:
			ok++
		case len(r.codes) == 1 && r.codes[0] == "LINK_EXHAUSTED":
			exhausted++
		default:
			t.Errorf("joiner %d: want success or LINK_EXHAUSTED, got HTTP %d: %s", i, r.status, r.body)
		}
	}
	if ok != maxUses || exhausted != joiners-maxUses {
		t.Logf("server log:\n%s", e.LogText())
		t.Fatalf("want %d joins and %d LINK_EXHAUSTED, got %d and %d", maxUses, joiners-maxUses, ok, exhausted)
	}
	got := lkRead(t, e, org.AdminToken, l.ID)
	if got.UseCount != maxUses || got.Status != "EXHAUSTED" {
		t.Fatalf("link after the race: want useCount %d and EXHAUSTED, got %+v", maxUses, got)
	}
	invs := lkInvitations(t, e, org.ID)
	if len(invs) != maxUses {
		t.Fatalf("want %d invitations, got %d", maxUses, len(invs))
	}
	for _, inv := range invs {
		if inv.Status != invitation.StatusPENDING || inv.Source != invitation.SourceLINK || inv.InviteLinkID == nil || *inv.InviteLinkID != lkID(t, l) {
			t.Fatalf("invitation %+v: want pending, source LINK, from the link", inv)
		}
	}
	if evs := lkAudits(t, e, org.ID, "invite_link.used"); len(evs) != maxUses {
		t.Fatalf("want %d invite_link.used events, got %d", maxUses, len(evs))
	}
}

// --- 7. rate limits -------------------------------------------------------

func TestJoinWithInviteLinkRateLimitedPerClientAddress(t *testing.T) {
	t.Parallel()
	e := testutil.New(t, lkWithLimits(0, 3))
	org := e.NewOrg("Acme")
	l := lkCreateOK(t, e, org.AdminToken, map[string]any{"kind": "INTERNAL"})
	tok, id := lkToken(t, l), lkID(t, l)
	const client = "203.0.113.7:1234"

	for i := range 3 {
		lkWantJoined(t, fmt.Sprint("join ", i+1), lkJoinFrom(t, e, client, nil, tok, fmt.Sprintf("a%d@example.test", i)))
	}
	ue := lkWantJoinError(t, "fourth join from the same address", lkJoinFrom(t, e, client, nil, tok, "a4@example.test"), "RATE_LIMITED")
	if ue.RetryAfter == nil || *ue.RetryAfter <= 0 || *ue.RetryAfter > 3600 {
		// Errorf: the rest of the test still runs.
		t.Errorf("retryAfter: want 1..3600 seconds (the window is one hour), got %v", lkDeref(ue.RetryAfter))
	}
	if n := lkUseCount(t, e, id); n != 3 {
		t.Fatalf("a rate-limited join counted a use: useCount %d", n)
	}
	if invs := lkInvitations(t, e, org.ID); len(invs) != 3 {
		t.Fatalf("a rate-limited join wrote an invitation: %d", len(invs))
	}

	// Neither another port nor forwarding headers choose another bucket.
	lkWantJoinError(t, "same address, other port", lkJoinFrom(t, e, "203.0.113.7:40000", nil, tok, "a5@example.test"), "RATE_LIMITED")
	for _, h := range []map[string]string{
		{"X-Forwarded-For": "198.51.100.99"},
		{"X-Forwarded-For": "198.51.100.99, 203.0.113.8"},
		{"X-Real-IP": "198.51.100.98"},
		{"Forwarded": "for=198.51.100.97"},
	} {
		lkWantJoinError(t, fmt.Sprint("same address with ", h), lkJoinFrom(t, e, client, h, tok, "a6@example.test"), "RATE_LIMITED")
	}

	// Another client address is not limited.
	lkWantJoined(t, "another address", lkJoinFrom(t, e, "203.0.113.8:1234", nil, tok, "b@example.test"))

	// The wait shrinks as the window passes, then the address may join again.
	e.Clock.Advance(30 * time.Minute)
	ue = lkWantJoinError(t, "half an hour later", lkJoinFrom(t, e, client, nil, tok, "a7@example.test"), "RATE_LIMITED")
	if ue.RetryAfter == nil || *ue.RetryAfter < 1799 || *ue.RetryAfter > 1801 {
		t.Fatalf("retryAfter half-way through the window: want ≈1800, got %v", lkDeref(ue.RetryAfter))
	}
	e.Clock.Advance(31 * time.Minute)
	lkWantJoined(t, "after the window", lkJoinFrom(t, e, client, nil, tok, "a8@example.test"))
}

func TestJoinWithInviteLinkRateLimitedPerLink(t *testing.T) {
	t.Parallel()
	e := testutil.New(t, lkWithLimits(3, 0))
	org := e.NewOrg("Acme")
	l := lkCreateOK(t, e, org.AdminToken, map[string]any{"kind": "INTERNAL"})
	other := lkCreateOK(t, e, org.AdminToken, map[string]any{"kind": "INTERNAL"})
	tok := lkToken(t, l)

	for i := range 3 {
		lkWantJoined(t, fmt.Sprint("join ", i+1), lkJoinFrom(t, e, fmt.Sprintf("203.0.113.%d:1234", i+1), nil, tok, fmt.Sprintf("p%d@example.test", i)))
	}
	ue := lkWantJoinError(t, "fourth join through the link", lkJoinFrom(t, e, "203.0.113.50:1234", nil, tok, "p4@example.test"), "RATE_LIMITED")
	if ue.RetryAfter == nil || *ue.RetryAfter <= 0 || *ue.RetryAfter > 3600 {
		// Errorf: the rest of the test still runs.
		t.Errorf("retryAfter: want 1..3600 seconds (the window is one hour), got %v", lkDeref(ue.RetryAfter))
	}
	if n := lkUseCount(t, e, lkID(t, l)); n != 3 {
		t.Fatalf("a rate-limited join counted a use: useCount %d", n)
	}
	// Another link is not limited.
	lkWantJoined(t, "another link", lkJoinFrom(t, e, "203.0.113.51:1234", nil, lkToken(t, other), "q@example.test"))
	e.Clock.Advance(time.Hour + time.Second)
	lkWantJoined(t, "after the window", lkJoinFrom(t, e, "203.0.113.52:1234", nil, tok, "p5@example.test"))
}
