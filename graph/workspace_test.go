package graph_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"admit/ent/joinrequest"
	"admit/ent/membership"
	"admit/internal/testutil"
)

// Helpers of this file are prefixed ws.

// wsData runs an operation that must not fail at the GraphQL level and
// returns its data as generic JSON.
func wsData(t *testing.T, e *testutil.Env, token, query string, vars map[string]any) map[string]any {
	t.Helper()
	r := e.Do(token, query, vars)
	if len(r.Errors) > 0 {
		t.Fatalf("unexpected GraphQL errors: %s", r.Body)
	}
	var out map[string]any
	if err := json.Unmarshal(r.Data, &out); err != nil {
		t.Fatalf("decode %s: %v", r.Data, err)
	}
	return out
}

// wsGet walks a dotted path (numbers index lists) through generic JSON.
func wsGet(t *testing.T, v any, path string) any {
	t.Helper()
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			var i int
			if _, err := fmt.Sscan(p, &i); err != nil || i >= len(x) {
				t.Fatalf("path %s: no element %s in %v", path, p, x)
			}
			v = x[i]
		default:
			t.Fatalf("path %s: cannot descend into %v at %q", path, v, p)
		}
	}
	return v
}

func wsStr(t *testing.T, v any, path string) string {
	t.Helper()
	s, _ := wsGet(t, v, path).(string)
	return s
}

// wsNoErrors fails unless the payload at path has an empty errors list.
func wsNoErrors(t *testing.T, data map[string]any, field string) map[string]any {
	t.Helper()
	p, _ := data[field].(map[string]any)
	if errs, _ := p["errors"].([]any); len(errs) > 0 {
		t.Fatalf("%s: want no errors, got %v", field, errs)
	}
	return p
}

// wsErrorCode returns the first payload error's code.
func wsErrorCode(t *testing.T, data map[string]any, field string) string {
	t.Helper()
	p, _ := data[field].(map[string]any)
	errs, _ := p["errors"].([]any)
	if len(errs) == 0 {
		t.Fatalf("%s: want a payload error, got %v", field, p)
	}
	return wsStr(t, errs[0], "code")
}

const (
	wsCreate      = `mutation($in: CreateWorkspaceInput!) { createWorkspace(input: $in) { workspace { id name type description owner { email } } errors { code field message } } }`
	wsLinkUpdate  = `mutation($in: UpdateWorkspaceLinkInput!) { updateWorkspaceLink(input: $in) { link { url enabled allowsViewing } errors { code field message } } }`
	wsLinkRefresh = `mutation($id: ID!) { refreshWorkspaceLink(input: {workspaceID: $id}) { link { url enabled allowsViewing } errors { code field message } } }`
	wsRequest     = `mutation($in: RequestToJoinWorkspaceInput!) { requestToJoinWorkspace(input: $in) { message requesterToken request { status email } errors { code field message retryAfter } } }`
	wsConfirm     = `mutation($t: String!) { confirmJoinRequest(input: {token: $t}) { request { status email name workspaceName organizationName workspace { name description members { name kind role status } } } errors { code message } } }`
	wsRequests    = `query { joinRequests(first: 50) { totalCount edges { node { id email name status message workspace { id } } } } }`
	wsApprove     = `mutation($in: ApproveJoinRequestInput!) { approveJoinRequest(input: $in) { joinRequest { id status decidedAs decidedBy { email } } membership { id status user { email kind status } } errors { code field message } } }`
	wsDeny        = `mutation($id: ID!, $r: String) { denyJoinRequest(input: {id: $id, reason: $r}) { joinRequest { status denyReason } errors { code message } } }`
	wsMembers     = `query($id: ID!, $where: MembershipWhereInput) { workspace(id: $id) { name members(first: 100, where: $where) { totalCount edges { node { id role status user { email kind status } pendingInvitation { id email kind } } } } } }`
	wsInvite      = `mutation($in: InviteWorkspaceMembersInput!) { inviteWorkspaceMembers(input: $in) { results { input field email phone outcome code message membership { status } invitation { kind } } counts { total invited added alreadyMember } errors { code field message } } }`
	wsResendAll   = `mutation($id: ID!) { resendWorkspaceInvitations(input: {workspaceID: $id}) { sent skipped { code membership { user { email } } } errors { code message } } }`
	wsPreview     = `query($t: String!) { workspaceLinkPreview(token: $t) { workspaceName organizationName allowsViewing } }`
	wsAccept      = `mutation($t: String!, $n: String, $p: String) { acceptInvitation(input: {token: $t, name: $n, password: $p}) { token user { email kind } errors { code message } } }`
)

// wsSetup is an organization with a FLOW workspace owned by a non-admin
// internal user, its link on.
type wsSetup struct {
	org        *testutil.Org
	ownerToken string
	ownerEmail string
	wsID       string
	linkURL    string
	linkToken  string
}

func wsNew(t *testing.T, e *testutil.Env, name string, viewing bool) *wsSetup {
	t.Helper()
	org := e.NewOrg(name)
	ownerEmail := "owner@" + strings.ToLower(name) + ".test"
	e.NewUser(org, ownerEmail, org.MemberRoleID)
	s := &wsSetup{org: org, ownerEmail: ownerEmail, ownerToken: e.SignIn(ownerEmail, testutil.DefaultPassword)}
	d := wsData(t, e, s.ownerToken, wsCreate, map[string]any{"in": map[string]any{"name": name + " Flow", "type": "FLOW", "description": "Client onboarding"}})
	p := wsNoErrors(t, d, "createWorkspace")
	s.wsID = wsStr(t, p, "workspace.id")
	if got := wsStr(t, p, "workspace.owner.email"); got != ownerEmail {
		t.Fatalf("owner: want %s, got %s", ownerEmail, got)
	}
	d = wsData(t, e, s.ownerToken, wsLinkUpdate, map[string]any{"in": map[string]any{"workspaceID": s.wsID, "enabled": true, "allowsViewing": viewing}})
	p = wsNoErrors(t, d, "updateWorkspaceLink")
	s.linkURL = wsStr(t, p, "link.url")
	s.linkToken = tokenFromURL(t, s.linkURL)
	return s
}

func tokenFromURL(t *testing.T, u string) string {
	t.Helper()
	parsed, err := url.Parse(u)
	if err != nil || parsed.Query().Get("token") == "" {
		t.Fatalf("link URL %q has no token (%v)", u, err)
	}
	return parsed.Query().Get("token")
}

// wsStrangerRequest makes an anonymous request and confirms it through the
// emailed link, returning the requester token.
func wsStrangerRequest(t *testing.T, e *testutil.Env, s *wsSetup, email, name string) string {
	t.Helper()
	d := wsData(t, e, "", wsRequest, map[string]any{"in": map[string]any{"token": s.linkToken, "email": email, "name": name, "message": "Hi, I'm your accountant"}})
	p := wsNoErrors(t, d, "requestToJoinWorkspace")
	if p["request"] != nil || p["requesterToken"] != nil {
		t.Fatalf("an anonymous requester must learn nothing but the message, got %v", p)
	}
	e.Deliver()
	msgs := e.Mail.To(email)
	if len(msgs) == 0 {
		t.Fatalf("no confirmation email to %s", email)
	}
	token := testutil.TokenIn(t, msgs[len(msgs)-1])
	d = wsData(t, e, "", wsConfirm, map[string]any{"t": token})
	wsNoErrors(t, d, "confirmJoinRequest")
	if got := wsStr(t, d, "confirmJoinRequest.request.status"); got != "PENDING" {
		t.Fatalf("after confirming: want PENDING, got %s", got)
	}
	return token
}

// wsPendingID returns the ID of the one pending request of email.
func wsPendingID(t *testing.T, e *testutil.Env, token, email string) string {
	t.Helper()
	d := wsData(t, e, token, wsRequests, nil)
	for _, edge := range wsGet(t, d, "joinRequests.edges").([]any) {
		if wsStr(t, edge, "node.email") == email && wsStr(t, edge, "node.status") == "PENDING" {
			return wsStr(t, edge, "node.id")
		}
	}
	t.Fatalf("no pending request of %s in %v", email, d)
	return ""
}

func TestWorkspaceFlowLinkRequestApproveAccept(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	s := wsNew(t, e, "Portal", true)

	// The preview shows names and the viewing flag, nothing else.
	d := wsData(t, e, "", wsPreview, map[string]any{"t": s.linkToken})
	if wsStr(t, d, "workspaceLinkPreview.workspaceName") != "Portal Flow" || wsStr(t, d, "workspaceLinkPreview.organizationName") != "Portal" || wsGet(t, d, "workspaceLinkPreview.allowsViewing") != true {
		t.Fatalf("preview: %v", d)
	}

	// A stranger asks; approvers see nothing until the address is proven.
	d = wsData(t, e, "", wsRequest, map[string]any{"in": map[string]any{"token": s.linkToken, "email": "Stranger <Stranger@Example.com>", "message": "Hi"}})
	wsNoErrors(t, d, "requestToJoinWorkspace")
	if n := wsGet(t, wsData(t, e, s.ownerToken, wsRequests, nil), "joinRequests.totalCount"); n != float64(0) {
		t.Fatalf("an unconfirmed request must be invisible to approvers, got %v", n)
	}
	e.Deliver()
	msgs := e.Mail.To("stranger@example.com")
	if len(msgs) != 1 || !strings.Contains(msgs[0].Subject, "Portal Flow") {
		t.Fatalf("want one confirmation email, got %+v", msgs)
	}
	token := testutil.TokenIn(t, msgs[0])
	if !strings.HasPrefix(token, "adj_") {
		t.Fatalf("want a requester token, got %q", token)
	}
	// Asking again returns the same request and sends no second email
	// within the cooldown.
	d = wsData(t, e, "", wsRequest, map[string]any{"in": map[string]any{"token": s.linkToken, "email": "stranger@example.com"}})
	wsNoErrors(t, d, "requestToJoinWorkspace")
	e.Deliver()
	if n := len(e.Mail.To("stranger@example.com")); n != 1 {
		t.Fatalf("want still one email within the cooldown, got %d", n)
	}

	// Confirming shows the workspace to the waiting requester (viewing on).
	d = wsData(t, e, "", wsConfirm, map[string]any{"t": token})
	wsNoErrors(t, d, "confirmJoinRequest")
	if wsStr(t, d, "confirmJoinRequest.request.status") != "PENDING" || wsStr(t, d, "confirmJoinRequest.request.workspace.description") != "Client onboarding" {
		t.Fatalf("confirm: %v", d)
	}
	if m := wsGet(t, d, "confirmJoinRequest.request.workspace.members").([]any); len(m) != 1 || wsStr(t, m[0], "role") != "OWNER" {
		t.Fatalf("members seen by the requester: %v", m)
	}
	id := wsPendingID(t, e, s.ownerToken, "stranger@example.com")
	// The admin sees it too; a plain member of the organization does not.
	wsPendingID(t, e, s.org.AdminToken, "stranger@example.com")
	e.NewUser(s.org, "bystander@portal.test", s.org.MemberRoleID)
	by := e.SignIn("bystander@portal.test", testutil.DefaultPassword)
	if n := wsGet(t, wsData(t, e, by, wsRequests, nil), "joinRequests.totalCount"); n != float64(0) {
		t.Fatalf("a non-owner member sees %v join requests", n)
	}
	if r := e.Do(by, wsApprove, map[string]any{"in": map[string]any{"id": id, "as": "CLIENT"}}); len(r.Errors) == 0 || r.Errors[0].Code() != "FORBIDDEN" {
		t.Fatalf("a non-owner must not approve: %s", r.Body)
	}

	// A non-admin owner may not make someone new an internal user.
	if r := e.Do(s.ownerToken, wsApprove, map[string]any{"in": map[string]any{"id": id, "as": "INTERNAL"}}); len(r.Errors) == 0 || r.Errors[0].Code() != "FORBIDDEN" {
		t.Fatalf("owner approving a newcomer as INTERNAL: want FORBIDDEN, got %s", r.Body)
	}
	// Approved as a client: an invitation goes out, the member is NOT_JOINED.
	d = wsData(t, e, s.ownerToken, wsApprove, map[string]any{"in": map[string]any{"id": id, "as": "CLIENT"}})
	wsNoErrors(t, d, "approveJoinRequest")
	if wsStr(t, d, "approveJoinRequest.joinRequest.status") != "APPROVED" || wsStr(t, d, "approveJoinRequest.joinRequest.decidedAs") != "CLIENT" ||
		wsStr(t, d, "approveJoinRequest.joinRequest.decidedBy.email") != s.ownerEmail || wsStr(t, d, "approveJoinRequest.membership.status") != "NOT_JOINED" {
		t.Fatalf("approve: %v", d)
	}
	// A second decision is a conflict.
	if r := e.Do(s.org.AdminToken, wsDeny, map[string]any{"id": id}); len(r.Errors) == 0 || r.Errors[0].Code() != "CONFLICT" {
		t.Fatalf("deciding twice: want CONFLICT, got %s", r.Body)
	}
	d = wsData(t, e, s.ownerToken, wsMembers, map[string]any{"id": s.wsID, "where": map[string]any{"status": "NOT_JOINED"}})
	if wsGet(t, d, "workspace.members.totalCount") != float64(1) || wsStr(t, d, "workspace.members.edges.0.node.pendingInvitation.kind") != "CLIENT" {
		t.Fatalf("not-joined members: %v", d)
	}
	e.Deliver()
	inv := e.Mail.To("stranger@example.com")
	if len(inv) != 2 {
		t.Fatalf("want the invitation email, got %d messages", len(inv))
	}
	acc := wsData(t, e, "", wsAccept, map[string]any{"t": testutil.TokenIn(t, inv[1]), "n": "Stan Ger", "p": "a long enough password"})
	wsNoErrors(t, acc, "acceptInvitation")
	if wsStr(t, acc, "acceptInvitation.user.kind") != "CLIENT" {
		t.Fatalf("accepted: %v", acc)
	}
	d = wsData(t, e, s.ownerToken, wsMembers, map[string]any{"id": s.wsID, "where": map[string]any{"kind": "CLIENT"}})
	if wsGet(t, d, "workspace.members.totalCount") != float64(1) || wsStr(t, d, "workspace.members.edges.0.node.status") != "JOINED" ||
		wsStr(t, d, "workspace.members.edges.0.node.user.status") != "ACTIVE" || wsGet(t, d, "workspace.members.edges.0.node.pendingInvitation") != nil {
		t.Fatalf("after accepting: %v", d)
	}
	d = wsData(t, e, s.ownerToken, wsMembers, map[string]any{"id": s.wsID, "where": map[string]any{"kind": "INTERNAL"}})
	if wsGet(t, d, "workspace.members.totalCount") != float64(1) {
		t.Fatalf("internal members: %v", d)
	}
}

func TestWorkspaceRequestAnswerHidesAccounts(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	s := wsNew(t, e, "Hide", false)
	e.NewUser(s.org, "member@hide.test", s.org.MemberRoleID)
	var answers []string
	for _, email := range []string{"member@hide.test", "nobody@hide.test"} {
		d := wsData(t, e, "", wsRequest, map[string]any{"in": map[string]any{"token": s.linkToken, "email": email}})
		p := wsNoErrors(t, d, "requestToJoinWorkspace")
		answers = append(answers, strings.ReplaceAll(fmt.Sprint(p), email, "X"))
	}
	if answers[0] != answers[1] {
		t.Fatalf("answers differ for an existing account: %q vs %q", answers[0], answers[1])
	}
	// The existing user, once confirmed, is approved straight in.
	e.Deliver()
	token := testutil.TokenIn(t, e.Mail.To("member@hide.test")[0])
	d := wsData(t, e, "", wsConfirm, map[string]any{"t": token})
	wsNoErrors(t, d, "confirmJoinRequest")
	if d["confirmJoinRequest"].(map[string]any)["request"].(map[string]any)["workspace"] != nil {
		t.Fatalf("without viewing permission the requester must not see the workspace: %v", d)
	}
	id := wsPendingID(t, e, s.ownerToken, "member@hide.test")
	d = wsData(t, e, s.ownerToken, wsApprove, map[string]any{"in": map[string]any{"id": id, "as": "CLIENT"}})
	wsNoErrors(t, d, "approveJoinRequest")
	if wsStr(t, d, "approveJoinRequest.membership.status") != "JOINED" || wsStr(t, d, "approveJoinRequest.membership.user.email") != "member@hide.test" {
		t.Fatalf("existing user approved: %v", d)
	}
}

func TestWorkspaceLinkRulesAndRefresh(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	s := wsNew(t, e, "Links", false)
	other := e.NewOrg("Other")
	e.NewUser(s.org, "plain@links.test", s.org.MemberRoleID)
	plain := e.SignIn("plain@links.test", testutil.DefaultPassword)

	// Only admins and owners see the URL; others do not see the workspace.
	for _, tt := range []struct {
		name, token string
		wantURL     bool
	}{{"owner", s.ownerToken, true}, {"admin", s.org.AdminToken, true}} {
		d := wsData(t, e, tt.token, `query($id: ID!) { workspace(id: $id) { link { url } } }`, map[string]any{"id": s.wsID})
		if got := wsStr(t, d, "workspace.link.url"); (got != "") != tt.wantURL || got != s.linkURL {
			t.Fatalf("%s: link %v", tt.name, d)
		}
	}
	for name, token := range map[string]string{"non-member": plain, "other tenant": other.AdminToken} {
		d := wsData(t, e, token, `query($id: ID!) { workspace(id: $id) { id link { url } } }`, map[string]any{"id": s.wsID})
		if d["workspace"] != nil {
			t.Fatalf("%s sees the workspace: %v", name, d)
		}
		r := e.Do(token, wsLinkRefresh, map[string]any{"id": s.wsID})
		if len(r.Errors) == 0 || (r.Errors[0].Code() != "NOT_FOUND" && r.Errors[0].Code() != "FORBIDDEN") {
			t.Fatalf("%s refreshing the link: %s", name, r.Body)
		}
		if strings.Contains(string(r.Body), "adw_") {
			t.Fatalf("%s was shown a link token: %s", name, r.Body)
		}
	}

	// Refresh: the old URL stops working at once.
	d := wsData(t, e, s.ownerToken, wsLinkRefresh, map[string]any{"id": s.wsID})
	newURL := wsStr(t, wsNoErrors(t, d, "refreshWorkspaceLink"), "link.url")
	if newURL == s.linkURL {
		t.Fatal("refresh kept the URL")
	}
	d = wsData(t, e, "", wsRequest, map[string]any{"in": map[string]any{"token": s.linkToken, "email": "a@b.test"}})
	if code := wsErrorCode(t, d, "requestToJoinWorkspace"); code != "LINK_REFRESHED" {
		t.Fatalf("old link: want LINK_REFRESHED, got %s", code)
	}
	fresh := tokenFromURL(t, newURL)
	wsNoErrors(t, wsData(t, e, "", wsRequest, map[string]any{"in": map[string]any{"token": fresh, "email": "a@b.test"}}), "requestToJoinWorkspace")

	// Turned off, then archived.
	wsNoErrors(t, wsData(t, e, s.ownerToken, wsLinkUpdate, map[string]any{"in": map[string]any{"workspaceID": s.wsID, "enabled": false}}), "updateWorkspaceLink")
	d = wsData(t, e, "", wsRequest, map[string]any{"in": map[string]any{"token": fresh, "email": "c@b.test"}})
	if code := wsErrorCode(t, d, "requestToJoinWorkspace"); code != "LINK_REVOKED" {
		t.Fatalf("disabled link: want LINK_REVOKED, got %s", code)
	}
	wsNoErrors(t, wsData(t, e, s.ownerToken, wsLinkUpdate, map[string]any{"in": map[string]any{"workspaceID": s.wsID, "enabled": true}}), "updateWorkspaceLink")
	wsNoErrors(t, wsData(t, e, s.ownerToken, `mutation($id: ID!) { archiveWorkspace(input: {id: $id}) { workspace { archivedAt } errors { code message } } }`, map[string]any{"id": s.wsID}), "archiveWorkspace")
	d = wsData(t, e, "", wsRequest, map[string]any{"in": map[string]any{"token": fresh, "email": "c@b.test"}})
	if code := wsErrorCode(t, d, "requestToJoinWorkspace"); code != "WORKSPACE_ARCHIVED" {
		t.Fatalf("archived workspace: want WORKSPACE_ARCHIVED, got %s", code)
	}
	e.Do("", wsPreview, map[string]any{"t": fresh}).MustFail("WORKSPACE_ARCHIVED")
	e.Do("", wsPreview, map[string]any{"t": "adw_1_1_" + strings.Repeat("A", 43)}).MustFail("LINK_NOT_FOUND")
}

func TestWorkspaceRequesterCannotDecideOwnRequest(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	s := wsNew(t, e, "Self", false)
	// An admin who is not a member asks as themselves: pending at once.
	d := wsData(t, e, s.org.AdminToken, wsRequest, map[string]any{"in": map[string]any{"token": s.linkToken}})
	p := wsNoErrors(t, d, "requestToJoinWorkspace")
	if wsStr(t, p, "request.status") != "PENDING" || p["requesterToken"] == nil {
		t.Fatalf("signed-in request: %v", p)
	}
	id := wsPendingID(t, e, s.ownerToken, s.org.AdminEmail)
	r := e.Do(s.org.AdminToken, wsApprove, map[string]any{"in": map[string]any{"id": id, "as": "INTERNAL"}})
	if len(r.Errors) == 0 || r.Errors[0].Code() != "FORBIDDEN" {
		t.Fatalf("deciding one's own request: want FORBIDDEN, got %s", r.Body)
	}
	// Asking again returns the same request.
	d = wsData(t, e, s.org.AdminToken, wsRequest, map[string]any{"in": map[string]any{"token": s.linkToken}})
	if got := wsStr(t, d, "requestToJoinWorkspace.requesterToken"); got != *strOf(p["requesterToken"]) {
		t.Fatalf("a second request must return the first: %v vs %v", got, p["requesterToken"])
	}
	n, err := e.DB.Client.JoinRequest.Query().Count(testutil.System())
	if err != nil || n != 1 {
		t.Fatalf("want one join request, got %d (%v)", n, err)
	}
	// The owner decides it; the requester cancels nothing after that.
	d = wsData(t, e, s.ownerToken, wsDeny, map[string]any{"id": id, "r": "not now"})
	wsNoErrors(t, d, "denyJoinRequest")
	d = wsData(t, e, "", `mutation($t: String!) { cancelJoinRequest(input: {token: $t}) { request { status } errors { code } } }`, map[string]any{"t": *strOf(p["requesterToken"])})
	if code := wsErrorCode(t, d, "cancelJoinRequest"); code != "JOIN_REQUEST_CLOSED" {
		t.Fatalf("cancelling a decided request: want JOIN_REQUEST_CLOSED, got %s", code)
	}
}

func strOf(v any) *string {
	s, ok := v.(string)
	if !ok {
		return new(string)
	}
	return &s
}

func TestWorkspaceConcurrentApprovalsDecideOnce(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	s := wsNew(t, e, "Race", false)
	wsStrangerRequest(t, e, s, "race@example.com", "Race")
	id := wsPendingID(t, e, s.ownerToken, "race@example.com")
	const n = 6
	var wg sync.WaitGroup
	codes := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			token := s.ownerToken
			if i%2 == 1 {
				token = s.org.AdminToken
			}
			r := e.Do(token, wsApprove, map[string]any{"in": map[string]any{"id": id, "as": "CLIENT"}})
			if len(r.Errors) > 0 {
				codes[i] = r.Errors[0].Code()
				return
			}
			codes[i] = "OK"
		}()
	}
	wg.Wait()
	ok := 0
	for _, c := range codes {
		switch c {
		case "OK":
			ok++
		case "CONFLICT":
		default:
			t.Fatalf("want OK or CONFLICT, got %v", codes)
		}
	}
	if ok != 1 {
		t.Fatalf("want exactly one approval, got %v", codes)
	}
	ms, err := e.DB.Client.Membership.Query().Where(membership.StatusEQ(membership.StatusNOT_JOINED)).Count(testutil.System())
	if err != nil || ms != 1 {
		t.Fatalf("want one membership, got %d (%v)", ms, err)
	}
	jr, err := e.DB.Client.JoinRequest.Query().Only(testutil.System())
	if err != nil || jr.Status != joinrequest.StatusAPPROVED {
		t.Fatalf("request: %+v %v", jr, err)
	}
	invs, err := e.DB.Client.Invitation.Query().Count(testutil.System())
	if err != nil || invs != 1 {
		t.Fatalf("want one invitation, got %d (%v)", invs, err)
	}
}

func TestInviteWorkspaceMembers(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	s := wsNew(t, e, "Team", false)
	existing := e.NewUser(s.org, "colleague@team.test", s.org.MemberRoleID)
	group := wsStr(t, wsNoErrors(t, wsData(t, e, s.org.AdminToken, wsCreate, map[string]any{"in": map[string]any{"name": "Group", "type": "GROUP"}}), "createWorkspace"), "workspace.id")

	// The owner (not an admin) adds a colleague and invites clients.
	d := wsData(t, e, s.ownerToken, wsInvite, map[string]any{"in": map[string]any{
		"workspaceID": s.wsID,
		"userIDs":     []string{testutil.ID(existing.ID), testutil.ID(existing.ID), "1"},
		"invitees": []map[string]any{
			{"name": "Client One", "email": "one@client.test"},
			{"name": "Phone Only", "phone": "+44 20 7946 0958"},
			{"name": "Bad", "email": "not-an-address"},
			{"name": "Again", "email": "ONE@client.test"},
		},
	}})
	p := wsNoErrors(t, d, "inviteWorkspaceMembers")
	want := []struct{ outcome, code string }{
		{"ADDED", ""}, {"SKIPPED", "DUPLICATE_IN_REQUEST"}, {"SKIPPED", "USER_NOT_FOUND"},
		{"INVITED", ""}, {"INVITED", ""}, {"SKIPPED", "INVALID_ADDRESS"}, {"SKIPPED", "DUPLICATE_IN_REQUEST"},
	}
	results := wsGet(t, p, "results").([]any)
	if len(results) != len(want) {
		t.Fatalf("want %d results, got %v", len(want), results)
	}
	for i, w := range want {
		code, _ := wsGet(t, results[i], "code").(string)
		if wsStr(t, results[i], "outcome") != w.outcome || code != w.code {
			t.Fatalf("result %d: want %s %s, got %v", i, w.outcome, w.code, results[i])
		}
	}
	if wsStr(t, results[3], "invitation.kind") != "CLIENT" || wsStr(t, results[3], "membership.status") != "NOT_JOINED" || wsStr(t, results[0], "membership.status") != "JOINED" {
		t.Fatalf("results: %v", results)
	}
	if wsStr(t, results[4], "phone") != "+442079460958" || wsStr(t, results[4], "membership.status") != "NOT_JOINED" {
		t.Fatalf("a phone-only invitee: want invited by SMS with a NOT_JOINED membership, got %v", results[4])
	}
	if wsGet(t, p, "counts.added") != float64(1) || wsGet(t, p, "counts.invited") != float64(2) {
		t.Fatalf("counts: %v", p["counts"])
	}

	// New internal users: not into a FLOW workspace, not by a non-admin.
	internal := map[string]any{"kind": "INTERNAL", "invitees": []map[string]any{{"name": "Ida", "email": "ida@team.test", "externalID": "E-1"}}}
	internal["workspaceID"] = s.wsID
	d = wsData(t, e, s.org.AdminToken, wsInvite, map[string]any{"in": internal})
	if got := wsStr(t, wsNoErrors(t, d, "inviteWorkspaceMembers"), "results.0.code"); got != "INVITE_TO_ORGANIZATION_FIRST" {
		t.Fatalf("internal user into a FLOW workspace: want INVITE_TO_ORGANIZATION_FIRST, got %v", d)
	}
	e.Do(s.ownerToken, wsInvite, map[string]any{"in": internal}).MustFail("FORBIDDEN")
	internal["workspaceID"] = group
	d = wsData(t, e, s.org.AdminToken, wsInvite, map[string]any{"in": internal})
	if got := wsStr(t, wsNoErrors(t, d, "inviteWorkspaceMembers"), "results.0.invitation.kind"); got != "INTERNAL" {
		t.Fatalf("internal user into a GROUP workspace: %v", d)
	}
	// Nothing of another tenant: the workspace reads as missing.
	other := e.NewOrg("Else")
	e.Do(other.AdminToken, wsInvite, map[string]any{"in": map[string]any{"workspaceID": s.wsID, "invitees": []map[string]any{{"email": "x@y.test"}}}}).MustFail("NOT_FOUND")

	// Resend all: the not-joined clients (one by email, one by SMS) get a
	// fresh link, the old dies; right after, the cooldown skips them.
	e.Deliver()
	first := testutil.TokenIn(t, e.Mail.To("one@client.test")[0])
	if n := len(e.Texts.To("+442079460958")); n != 1 {
		t.Fatalf("want one SMS to the phone-only invitee, got %d", n)
	}
	e.Clock.Advance(2 * 60 * 1e9)
	d = wsData(t, e, s.ownerToken, wsResendAll, map[string]any{"id": s.wsID})
	if wsGet(t, wsNoErrors(t, d, "resendWorkspaceInvitations"), "sent") != float64(2) {
		t.Fatalf("resend all: %v", d)
	}
	d = wsData(t, e, s.ownerToken, wsResendAll, map[string]any{"id": s.wsID})
	p = wsNoErrors(t, d, "resendWorkspaceInvitations")
	skipped, _ := p["skipped"].([]any)
	if p["sent"] != float64(0) || len(skipped) != 2 || wsStr(t, p, "skipped.0.code") != "RESEND_TOO_SOON" || wsStr(t, p, "skipped.1.code") != "RESEND_TOO_SOON" {
		t.Fatalf("resend within the cooldown: %v", p)
	}
	e.Deliver()
	msgs := e.Mail.To("one@client.test")
	if len(msgs) != 2 {
		t.Fatalf("want 2 messages, got %d", len(msgs))
	}
	d = wsData(t, e, "", wsAccept, map[string]any{"t": first, "n": "One", "p": "a long enough password"})
	if code := wsErrorCode(t, d, "acceptInvitation"); code != "INVITATION_REPLACED" {
		t.Fatalf("old link after resend: want INVITATION_REPLACED, got %s", code)
	}
	wsNoErrors(t, wsData(t, e, "", wsAccept, map[string]any{"t": testutil.TokenIn(t, msgs[1]), "n": "One", "p": "a long enough password"}), "acceptInvitation")
	d = wsData(t, e, s.ownerToken, wsMembers, map[string]any{"id": s.wsID, "where": map[string]any{"status": "JOINED"}})
	if wsGet(t, d, "workspace.members.totalCount") != float64(3) {
		t.Fatalf("joined members: %v", d)
	}
}

func TestWorkspaceVisibilityAndRoles(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	s := wsNew(t, e, "Vis", false)
	e.NewUser(s.org, "plain@vis.test", s.org.MemberRoleID)
	plain := e.SignIn("plain@vis.test", testutil.DefaultPassword)
	list := `query { workspaces(first: 10) { totalCount } }`
	if n := wsGet(t, wsData(t, e, plain, list, nil), "workspaces.totalCount"); n != float64(0) {
		t.Fatalf("a non-member sees %v workspaces", n)
	}
	if n := wsGet(t, wsData(t, e, s.org.AdminToken, list, nil), "workspaces.totalCount"); n != float64(1) {
		t.Fatalf("the admin sees %v workspaces", n)
	}
	// A plain member of the workspace reads it but cannot manage it.
	d := wsData(t, e, s.ownerToken, wsInvite, map[string]any{"in": map[string]any{"workspaceID": s.wsID, "userIDs": []string{wsUserID(t, e, "plain@vis.test")}}})
	wsNoErrors(t, d, "inviteWorkspaceMembers")
	if n := wsGet(t, wsData(t, e, plain, list, nil), "workspaces.totalCount"); n != float64(1) {
		t.Fatalf("a member sees %v workspaces", n)
	}
	if d := wsData(t, e, plain, `query($id: ID!) { workspace(id: $id) { link { url } } }`, map[string]any{"id": s.wsID}); wsGet(t, d, "workspace.link") != nil {
		t.Fatalf("a member was shown the link: %v", d)
	}
	e.Do(plain, `mutation($id: ID!) { updateWorkspace(input: {id: $id, name: "Mine"}) { errors { code } } }`, map[string]any{"id": s.wsID}).MustFail("FORBIDDEN")
	e.Do(plain, `mutation($id: ID!) { refreshWorkspaceLink(input: {workspaceID: $id}) { errors { code } } }`, map[string]any{"id": s.wsID}).MustFail("FORBIDDEN")
	// The last owner cannot be demoted.
	d = wsData(t, e, s.ownerToken, wsMembers, map[string]any{"id": s.wsID, "where": map[string]any{"role": "OWNER"}})
	ownerMembership := wsStr(t, d, "workspace.members.edges.0.node.id")
	d = wsData(t, e, s.ownerToken, `mutation($id: ID!) { updateWorkspaceMember(input: {id: $id, role: MEMBER}) { errors { code } } }`, map[string]any{"id": ownerMembership})
	if code := wsErrorCode(t, d, "updateWorkspaceMember"); code != "LAST_OWNER" {
		t.Fatalf("demoting the last owner: want LAST_OWNER, got %s", code)
	}
}

func wsUserID(t *testing.T, e *testutil.Env, email string) string {
	t.Helper()
	u, err := e.DB.Client.User.Query().All(testutil.System())
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range u {
		if x.Email != nil && *x.Email == email {
			return testutil.ID(x.ID)
		}
	}
	t.Fatalf("no user %s", email)
	return ""
}
