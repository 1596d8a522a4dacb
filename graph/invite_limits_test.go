package graph_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"admit/internal/testutil"
)

// The personal message limit is 2,000 characters, not bytes: a note in a
// script of two-byte letters may use all of them.
func TestInviteMessageLimitCountsCharacters(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	long := strings.Repeat("é", 2000) // 4,000 bytes
	p := bulkInvite(t, e, org.AdminToken, map[string]any{"emails": []string{"ana@example.com"}, "message": long})
	if len(p.Results) != 1 {
		t.Fatalf("want 1 result, got %+v", p)
	}
	wantResult(t, p.Results[0], "ana@example.com", "")
	if got := sqlCount(t, e, "SELECT COUNT(*) FROM invitations WHERE message = "+sqlQuote(long)); got != 1 {
		t.Fatalf("want the 2,000-character message stored whole, found %d rows with it", got)
	}

	e.Deliver()
	before := bulkCount(t, e)
	r := bulkInviteRaw(e, org.AdminToken, map[string]any{"emails": []string{"bo@example.com"}, "message": long + "é"})
	if g := r.MustFail("BAD_USER_INPUT"); !strings.Contains(g.Message, "2000 characters") {
		t.Fatalf("want the limit named, got %q", g.Message)
	}
	wantNothingWritten(t, e, before)
}

// A name column cell longer than the 200-character limit is shortened, not
// a reason to refuse the address beside it or the whole file.
func TestImportClipsOverlongNames(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	long := strings.Repeat("ñ", 300)
	p := importFile(t, e, org.AdminToken, "people.csv", "email,name\nana@example.com,"+long+"\nbo@example.com,Bo\n", nil)
	if len(p.Errors) != 0 || p.Counts.Invited != 2 {
		t.Fatalf("want both rows invited, got %+v", p)
	}
	names := map[string]string{}
	for _, r := range p.Results {
		if r.Invitation == nil {
			t.Fatalf("want an invitation, got %s", r)
		}
		names[*r.Invitation.Email] = r.Invitation.Name
	}
	if got := names["ana@example.com"]; got != strings.Repeat("ñ", 200) {
		t.Fatalf("want the name clipped to 200 characters, got %d characters", utf8.RuneCountInString(got))
	}
	if names["bo@example.com"] != "Bo" {
		t.Fatalf("want Bo's name kept, got %q", names["bo@example.com"])
	}
}

// A name cell is free text: characters that reorder or break what an admin
// or invitee reads are taken out before it is stored. (C0 controls other
// than tab make the whole file "not text" already.)
func TestImportCleansNames(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	p := importFile(t, e, org.AdminToken, "people.csv",
		"email,name\nana@example.com,\"Ana\u202e \tMaría\u2028 Luz \"\nbo@example.com,\"\u2066\u2069\"\n", nil)
	if len(p.Errors) != 0 || p.Counts.Invited != 2 {
		t.Fatalf("want both rows invited, got %+v", p)
	}
	want := map[string]string{"ana@example.com": "Ana María Luz", "bo@example.com": ""}
	for _, r := range p.Results {
		if r.Invitation == nil || r.Invitation.Name != want[*r.Email] {
			t.Fatalf("want %s named %q, got %s", *r.Email, want[*r.Email], r)
		}
	}
}
