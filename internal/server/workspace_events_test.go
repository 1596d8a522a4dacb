package server_test

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"admit/internal/testutil"
)

// Workspace subscriptions over real websockets, on both subprotocols.

const (
	joinEventsSub = `subscription($ws: ID, $after: String) { joinRequestEvents(workspaceID: $ws, after: $after) { type cursor joinRequest { email status decidedAs decidedBy { email } } } }`
	memberEvents  = `subscription($ws: ID, $after: String) { membershipEvents(workspaceID: $ws, after: $after) { type cursor membershipID membership { status } user { email } workspace { name } } }`
)

// evWorld is an organization with a FLOW workspace whose link is on, its
// owner (not an admin) signed in.
type evWorld struct {
	e          *testutil.Env
	org        *testutil.Org
	ownerToken string
	wsID       string
	linkToken  string
	url        string
}

func evDo(t *testing.T, e *testutil.Env, token, q string, vars map[string]any) map[string]any {
	t.Helper()
	r := e.Do(token, q, vars)
	if len(r.Errors) > 0 {
		t.Fatalf("errors: %s", r.Body)
	}
	var out map[string]any
	if err := json.Unmarshal(r.Data, &out); err != nil {
		t.Fatal(err)
	}
	for _, v := range out {
		if p, ok := v.(map[string]any); ok {
			if errs, _ := p["errors"].([]any); len(errs) > 0 {
				t.Fatalf("payload errors: %s", r.Body)
			}
		}
	}
	return out
}

func newEvWorld(t *testing.T, opts ...testutil.Option) *evWorld {
	t.Helper()
	e := testutil.New(t, opts...)
	org := e.NewOrg("Acme")
	e.NewUser(org, "owner@acme.test", org.MemberRoleID)
	w := &evWorld{e: e, org: org, ownerToken: e.SignIn("owner@acme.test", testutil.DefaultPassword)}
	d := evDo(t, e, w.ownerToken, `mutation { createWorkspace(input: {name: "Deals", type: FLOW}) { workspace { id } errors { code } } }`, nil)
	w.wsID = d["createWorkspace"].(map[string]any)["workspace"].(map[string]any)["id"].(string)
	d = evDo(t, e, w.ownerToken, `mutation($id: ID!) { updateWorkspaceLink(input: {workspaceID: $id, enabled: true}) { link { url } errors { code } } }`, map[string]any{"id": w.wsID})
	u := d["updateWorkspaceLink"].(map[string]any)["link"].(map[string]any)["url"].(string)
	w.linkToken = u[strings.Index(u, "token=")+len("token="):]
	w.url = serve(t, e)
	return w
}

// request makes and confirms a stranger's request.
func (w *evWorld) request(t *testing.T, email string) {
	t.Helper()
	evDo(t, w.e, "", `mutation($t: String!, $e: String!) { requestToJoinWorkspace(input: {token: $t, email: $e}) { message errors { code } } }`,
		map[string]any{"t": w.linkToken, "e": email})
	w.e.Deliver()
	msgs := w.e.Mail.To(email)
	if len(msgs) == 0 {
		t.Fatalf("no confirmation to %s", email)
	}
	evDo(t, w.e, "", `mutation($t: String!) { confirmJoinRequest(input: {token: $t}) { request { status } errors { code } } }`,
		map[string]any{"t": testutil.TokenIn(t, msgs[len(msgs)-1])})
}

func (w *evWorld) pendingID(t *testing.T, email string) string {
	t.Helper()
	d := evDo(t, w.e, w.org.AdminToken, `query { joinRequests(first: 100, where: {status: PENDING}) { edges { node { id email } } } }`, nil)
	for _, edge := range d["joinRequests"].(map[string]any)["edges"].([]any) {
		n := edge.(map[string]any)["node"].(map[string]any)
		if n["email"] == email {
			return n["id"].(string)
		}
	}
	t.Fatalf("no pending request of %s", email)
	return ""
}

// subscribe starts a subscription on a new socket as token and waits until
// the server has registered it.
func (w *evWorld) subscribe(t *testing.T, sub, token, query string, vars map[string]any) *websocket.Conn {
	t.Helper()
	before := w.e.Broker.Subscribers()
	c := connect(t, w.url, sub, token, nil)
	start := "subscribe"
	if sub == legacyWS {
		start = "start"
	}
	q, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	sendMsg(t, c, wsMsg{ID: "s1", Type: start, Payload: q})
	deadline := time.Now().Add(5 * time.Second)
	for w.e.Broker.Subscribers() <= before {
		if time.Now().After(deadline) {
			t.Fatalf("the subscription was not registered (%d before, %d now)", before, w.e.Broker.Subscribers())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return c
}

type evPayload struct {
	Data   map[string]map[string]any `json:"data"`
	Errors []testutil.GQLError       `json:"errors"`
}

// waitSubscribers waits until the server holds n subscriptions (a socket
// the client closed is noticed asynchronously).
func (w *evWorld) waitSubscribers(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for w.e.Broker.Subscribers() != n {
		if time.Now().After(deadline) {
			t.Fatalf("want %d subscriptions, have %d", n, w.e.Broker.Subscribers())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// nextEvent reads the next event of the subscription, or fails.
func nextEvent(t *testing.T, c *websocket.Conn, field string) map[string]any {
	t.Helper()
	m, err := nextMsg(c, 5*time.Second)
	if err != nil {
		t.Fatalf("want an event, got %v", err)
	}
	if m.Type != "next" && m.Type != "data" {
		t.Fatalf("want an event, got %q: %s", m.Type, m.Payload)
	}
	var p evPayload
	if err := json.Unmarshal(m.Payload, &p); err != nil || len(p.Errors) > 0 {
		t.Fatalf("event %s: %v", m.Payload, err)
	}
	return p.Data[field]
}

// noEvent fails if an event arrives within d.
func noEvent(t *testing.T, c *websocket.Conn, d time.Duration) {
	t.Helper()
	m, err := nextMsg(c, d)
	if err == nil && (m.Type == "next" || m.Type == "data") {
		t.Fatalf("want no event, got %s", m.Payload)
	}
}

func TestJoinRequestEventsLive(t *testing.T) {
	t.Parallel()
	for _, sub := range []string{transportWS, legacyWS} {
		t.Run(sub, func(t *testing.T) {
			t.Parallel()
			w := newEvWorld(t)
			owner := w.subscribe(t, sub, w.ownerToken, joinEventsSub, map[string]any{"ws": w.wsID})
			admin := w.subscribe(t, sub, w.org.AdminToken, joinEventsSub, nil)
			other := w.e.NewOrg("Other")
			foreign := w.subscribe(t, sub, other.AdminToken, joinEventsSub, nil)

			// Unconfirmed requests are not announced; confirmed ones are.
			w.request(t, "stranger@example.com")
			for name, c := range map[string]*websocket.Conn{"owner": owner, "admin": admin} {
				ev := nextEvent(t, c, "joinRequestEvents")
				jr := ev["joinRequest"].(map[string]any)
				if ev["type"] != "CREATED" || jr["email"] != "stranger@example.com" || jr["status"] != "PENDING" {
					t.Fatalf("%s: %v", name, ev)
				}
			}
			id := w.pendingID(t, "stranger@example.com")
			evDo(t, w.e, w.ownerToken, `mutation($id: ID!) { approveJoinRequest(input: {id: $id, as: CLIENT}) { errors { code } } }`, map[string]any{"id": id})
			ev := nextEvent(t, owner, "joinRequestEvents")
			jr := ev["joinRequest"].(map[string]any)
			if ev["type"] != "APPROVED" || jr["decidedAs"] != "CLIENT" || jr["decidedBy"].(map[string]any)["email"] != "owner@acme.test" {
				t.Fatalf("approval event: %v", ev)
			}
			nextEvent(t, admin, "joinRequestEvents")
			noEvent(t, foreign, 300*time.Millisecond)
		})
	}
}

func TestJoinRequestEventsStopForDemotedSubscriber(t *testing.T) {
	t.Parallel()
	w := newEvWorld(t)
	// A second admin, who will be demoted while subscribed.
	second := w.e.NewUser(w.org, "second@acme.test", w.org.AdminRoleID)
	secondToken := w.e.SignIn("second@acme.test", testutil.DefaultPassword)
	demoted := w.subscribe(t, transportWS, secondToken, joinEventsSub, nil)
	control := w.subscribe(t, transportWS, w.org.AdminToken, joinEventsSub, nil)
	out := w.subscribe(t, transportWS, w.ownerToken, joinEventsSub, map[string]any{"ws": w.wsID})

	evDo(t, w.e, w.org.AdminToken, `mutation($id: ID!, $r: ID!) { updateUser(input: {id: $id, roleID: $r}) { errors { code } } }`,
		map[string]any{"id": testutil.ID(second.ID), "r": testutil.ID(w.org.MemberRoleID)})
	w.request(t, "late@example.com")
	nextEvent(t, control, "joinRequestEvents")
	nextEvent(t, out, "joinRequestEvents")
	noEvent(t, demoted, 500*time.Millisecond) // (a read that times out closes the socket)

	// Signed out: the subscription stops too.
	evDo(t, w.e, w.ownerToken, `mutation { signOut { signedOut } }`, nil)
	w.request(t, "later@example.com")
	nextEvent(t, control, "joinRequestEvents")
	noEvent(t, out, 500*time.Millisecond)
}

func TestJoinRequestEventsResumeAfterCursor(t *testing.T) {
	t.Parallel()
	w := newEvWorld(t)
	c := w.subscribe(t, transportWS, w.ownerToken, joinEventsSub, map[string]any{"ws": w.wsID})
	w.request(t, "one@example.com")
	first := nextEvent(t, c, "joinRequestEvents")
	cursor := first["cursor"].(string)
	c.Close(websocket.StatusNormalClosure, "phone went to sleep")
	w.waitSubscribers(t, 0)

	// While disconnected: two more requests and a decision.
	w.request(t, "two@example.com")
	evDo(t, w.e, w.ownerToken, `mutation($id: ID!) { denyJoinRequest(input: {id: $id}) { errors { code } } }`, map[string]any{"id": w.pendingID(t, "one@example.com")})
	w.request(t, "three@example.com")

	c = w.subscribe(t, legacyWS, w.ownerToken, joinEventsSub, map[string]any{"ws": w.wsID, "after": cursor})
	var got []string
	for range 3 {
		ev := nextEvent(t, c, "joinRequestEvents")
		got = append(got, fmt.Sprint(ev["type"], " ", ev["joinRequest"].(map[string]any)["email"]))
	}
	want := []string{"CREATED two@example.com", "DENIED one@example.com", "CREATED three@example.com"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("replayed: want %v, got %v", want, got)
	}
	// Then live ones, with no repeat of the replay.
	w.request(t, "four@example.com")
	ev := nextEvent(t, c, "joinRequestEvents")
	if ev["joinRequest"].(map[string]any)["email"] != "four@example.com" {
		t.Fatalf("live after replay: %v", ev)
	}
	noEvent(t, c, 300*time.Millisecond)
}

func TestMembershipEvents(t *testing.T) {
	t.Parallel()
	w := newEvWorld(t)
	colleague := w.e.NewUser(w.org, "colleague@acme.test", w.org.MemberRoleID)
	c := w.subscribe(t, transportWS, w.ownerToken, memberEvents, map[string]any{"ws": w.wsID})
	d := evDo(t, w.e, w.ownerToken, `mutation($ws: ID!, $u: ID!) { inviteWorkspaceMembers(input: {workspaceID: $ws, userIDs: [$u], invitees: [{email: "client@example.com"}]}) { results { outcome membership { id } } errors { code } } }`,
		map[string]any{"ws": w.wsID, "u": testutil.ID(colleague.ID)})
	_ = d
	for _, want := range []string{"colleague@acme.test", "client@example.com"} {
		ev := nextEvent(t, c, "membershipEvents")
		if ev["type"] != "ADDED" || ev["user"].(map[string]any)["email"] != want || ev["workspace"].(map[string]any)["name"] != "Deals" {
			t.Fatalf("want ADDED %s, got %v", want, ev)
		}
	}
	// The client accepts: JOINED.
	w.e.Deliver()
	tok := testutil.TokenIn(t, w.e.Mail.To("client@example.com")[0])
	evDo(t, w.e, "", `mutation($t: String!) { acceptInvitation(input: {token: $t, name: "Cli", password: "a long enough password"}) { errors { code } } }`, map[string]any{"t": tok})
	ev := nextEvent(t, c, "membershipEvents")
	if ev["type"] != "JOINED" || ev["membership"].(map[string]any)["status"] != "JOINED" {
		t.Fatalf("want JOINED, got %v", ev)
	}
	// Removed: the event names the membership, which is gone.
	id := ev["membershipID"].(string)
	evDo(t, w.e, w.ownerToken, `mutation($id: ID!) { removeWorkspaceMember(input: {id: $id}) { removedID errors { code } } }`, map[string]any{"id": id})
	ev = nextEvent(t, c, "membershipEvents")
	if ev["type"] != "REMOVED" || ev["membershipID"] != id || ev["membership"] != nil {
		t.Fatalf("want REMOVED, got %v", ev)
	}
}

// Subscribers of one event that run the same operation as the same viewer
// share one execution of it (graph.SharedFrames); each still gets the shape
// its own operation asked for, as its own viewer, and one leaving does not
// stop the others.
func TestJoinRequestEventsSharedAmongIdenticalSubscribers(t *testing.T) {
	t.Parallel()
	w := newEvWorld(t)
	w.e.NewUser(w.org, "second@acme.test", w.org.AdminRoleID)
	secondToken := w.e.SignIn("second@acme.test", testutil.DefaultPassword)
	narrow := `subscription { joinRequestEvents { type joinRequest { email } } }`
	same := []*websocket.Conn{
		w.subscribe(t, transportWS, w.org.AdminToken, joinEventsSub, nil),
		w.subscribe(t, transportWS, w.org.AdminToken, joinEventsSub, nil),
		w.subscribe(t, legacyWS, w.org.AdminToken, joinEventsSub, nil),
	}
	shaped := w.subscribe(t, transportWS, w.org.AdminToken, narrow, nil)
	second := w.subscribe(t, transportWS, secondToken, joinEventsSub, nil)
	owner := w.subscribe(t, transportWS, w.ownerToken, joinEventsSub, map[string]any{"ws": w.wsID})

	w.request(t, "one@example.com")
	var cursors []any
	for _, c := range append(same, second, owner) {
		ev := nextEvent(t, c, "joinRequestEvents")
		if ev["type"] != "CREATED" || ev["joinRequest"].(map[string]any)["email"] != "one@example.com" {
			t.Fatalf("want CREATED one@example.com, got %v", ev)
		}
		cursors = append(cursors, ev["cursor"])
	}
	if cursors[0] == nil || strings.Count(fmt.Sprint(cursors...), fmt.Sprint(cursors[0])) != len(cursors) {
		t.Fatalf("want one cursor for all, got %v", cursors)
	}
	ev := nextEvent(t, shaped, "joinRequestEvents")
	if _, ok := ev["cursor"]; ok || ev["joinRequest"].(map[string]any)["email"] != "one@example.com" {
		t.Fatalf("want only the fields asked for, got %v", ev)
	}

	// The first subscriber leaves; the others still get the next event.
	same[0].Close(websocket.StatusNormalClosure, "bye")
	w.request(t, "two@example.com")
	for _, c := range append(same[1:], shaped, second, owner) {
		if ev := nextEvent(t, c, "joinRequestEvents"); ev["joinRequest"].(map[string]any)["email"] != "two@example.com" {
			t.Fatalf("want two@example.com, got %v", ev)
		}
	}
}

// An idle subscribed socket holds one goroutine on the server, its read
// loop (gqlgen's transport held three). A subscription the client
// completes while it waits is completed at once, and the others still
// get the next event. Not parallel: it counts the process's goroutines.
func TestIdleSubscriptionsHoldOneGoroutinePerSocket(t *testing.T) {
	w := newEvWorld(t)
	const n = 20
	time.Sleep(100 * time.Millisecond) // the world's own setup settles
	before := runtime.NumGoroutine()
	conns := make([]*websocket.Conn, n)
	subs := make([]string, n)
	for i := range conns {
		subs[i] = []string{transportWS, legacyWS}[i%2]
		conns[i] = w.subscribe(t, subs[i], w.ownerToken, memberEvents, map[string]any{"ws": w.wsID})
	}
	time.Sleep(200 * time.Millisecond) // the subscriptions' setup goroutines end
	// The clients in this process hold none while they wait: the count is
	// the server's.
	if grown := runtime.NumGoroutine() - before; grown > n+5 {
		t.Fatalf("%d idle subscribed sockets grew the goroutines by %d; want about one each", n, grown)
	}
	stop := "complete"
	if subs[0] == legacyWS {
		stop = "stop"
	}
	sendMsg(t, conns[0], wsMsg{ID: "s1", Type: stop})
	if m, err := nextMsg(conns[0], 5*time.Second); err != nil || m.Type != "complete" || m.ID != "s1" {
		t.Fatalf("want complete for s1, got %+v, %v", m, err)
	}
	colleague := w.e.NewUser(w.org, "colleague@acme.test", w.org.MemberRoleID)
	evDo(t, w.e, w.ownerToken, `mutation($ws: ID!, $u: ID!) { inviteWorkspaceMembers(input: {workspaceID: $ws, userIDs: [$u]}) { errors { code } } }`,
		map[string]any{"ws": w.wsID, "u": testutil.ID(colleague.ID)})
	for _, c := range conns[1:] {
		if ev := nextEvent(t, c, "membershipEvents"); ev["type"] != "ADDED" || ev["user"].(map[string]any)["email"] != "colleague@acme.test" {
			t.Fatalf("want ADDED colleague, got %v", ev)
		}
	}
	noEvent(t, conns[0], 300*time.Millisecond)
}
