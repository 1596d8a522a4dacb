package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"

	"admit/internal/pubsub"
	"admit/internal/server"
	"admit/internal/testutil"
)

func subscribeMsg(id, query string) wsMsg {
	q, _ := json.Marshal(map[string]string{"query": query})
	return wsMsg{ID: id, Type: "subscribe", Payload: q}
}

// demote gives user the Member role, as another admin would.
func demote(t *testing.T, e *testutil.Env, org *testutil.Org, userID int) {
	t.Helper()
	var out struct {
		UpdateUser struct{ Errors []struct{ Code string } }
	}
	e.Do(org.AdminToken, `mutation($id: ID!, $r: ID!) { updateUser(input: {id: $id, roleID: $r}) { errors { code } } }`,
		map[string]any{"id": testutil.ID(userID), "r": testutil.ID(org.MemberRoleID)}).MustData(&out)
	if len(out.UpdateUser.Errors) > 0 {
		t.Fatalf("demote: %+v", out.UpdateUser.Errors)
	}
}

// The finding: an admin demoted to Member kept admin rights on a socket
// opened before, invited people and promoted themselves back through it.
func TestSocketOperationsRunWithTheCallersCurrentRole(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	u := e.NewUser(org, "second.admin@acme.test", org.AdminRoleID)
	token := e.SignIn("second.admin@acme.test", testutil.DefaultPassword)
	c := connect(t, serve(t, e), transportWS, token, nil)

	const roleQ = `{ me { role { name } } }`
	if p := runQuery(t, c, transportWS, "1", roleQ); string(p.Data) != `{"me":{"role":{"name":"Admin"}}}` {
		t.Fatalf("before: %s %+v", p.Data, p.Errors)
	}
	demote(t, e, org, u.ID)
	if p := runQuery(t, c, transportWS, "2", roleQ); string(p.Data) != `{"me":{"role":{"name":"Member"}}}` {
		t.Fatalf("after the demotion: %s %+v", p.Data, p.Errors)
	}
	for i, q := range []string{
		`mutation { inviteUsers(input: {emails: ["mallory@example.com"]}) { errors { code } } }`,
		fmt.Sprintf(`mutation { updateUser(input: {id: "%d", roleID: "%d"}) { errors { code } } }`, u.ID, org.AdminRoleID),
	} {
		p := runQuery(t, c, transportWS, fmt.Sprint("m", i), q)
		if len(p.Errors) == 0 || p.Errors[0].Code() != "FORBIDDEN" {
			t.Fatalf("%s over the socket after the demotion: want FORBIDDEN, got %s %+v", q, p.Data, p.Errors)
		}
	}
	var me struct {
		Me struct{ Role struct{ Name string } }
	}
	e.Do(token, roleQ, nil).MustData(&me)
	if me.Me.Role.Name != "Member" {
		t.Fatalf("the demoted user promoted themselves back: %+v", me)
	}
}

// A subscription re-checks its subscriber on every event: demoted, they
// stop hearing about invitations.
func TestInvitationEventsStopWhenTheSubscriberIsNoLongerAnAdmin(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	u := e.NewUser(org, "second.admin@acme.test", org.AdminRoleID)
	c := connect(t, serve(t, e), transportWS, e.SignIn("second.admin@acme.test", testutil.DefaultPassword), nil)
	base := e.Broker.Subscribers() // the socket's session watch
	sendMsg(t, c, subscribeMsg("s", `subscription { invitationEvents { kind invitation { email } } }`))
	waitFor(t, func() bool { return e.Broker.Subscribers() > base })

	var out struct {
		InviteUsers struct{ Errors []struct{ Code string } }
	}
	e.Do(org.AdminToken, `mutation { inviteUsers(input: {emails: ["jane@example.com"]}) { errors { code } } }`, nil).MustData(&out)
	e.Deliver()
	if m := expectMsg(t, c, "next"); m.ID != "s" {
		t.Fatalf("want an event for s, got %+v", m)
	}

	demote(t, e, org, u.ID)
	e.Broker.Publish(pubsub.Event{Topic: "invitation", OrgID: org.ID, Kind: "SENT", ObjectID: 1, At: time.Now()})
	m := readMsg(t, c)
	if m.Type != "complete" || m.ID != "s" {
		t.Fatalf("after the demotion: want the subscription completed, got %q %s", m.Type, m.Payload)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A socket whose session ends is closed with 4403 at once, not at its next
// operation or event.
func TestSocketClosesWhenItsSessionEnds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		end    func(e *testutil.Env, org *testutil.Org, userID int, token string)
		within time.Duration
	}{
		{"sign out", func(e *testutil.Env, _ *testutil.Org, _ int, token string) {
			e.Do(token, `mutation { signOut { signedOut } }`, nil)
		}, time.Second},
		{"deactivation", func(e *testutil.Env, org *testutil.Org, userID int, _ string) {
			var out struct {
				UpdateUser struct{ Errors []struct{ Code string } }
			}
			e.Do(org.AdminToken, `mutation($id: ID!) { updateUser(input: {id: $id, status: DEACTIVATED}) { errors { code } } }`,
				map[string]any{"id": testutil.ID(userID)}).MustData(&out)
			if len(out.UpdateUser.Errors) > 0 {
				e.T.Fatalf("deactivate: %+v", out.UpdateUser.Errors)
			}
		}, time.Second},
		// Expiry is noticed by the periodic check (WSSessionCheck).
		{"expiry", func(e *testutil.Env, _ *testutil.Org, _ int, _ string) { e.Clock.Advance(25 * time.Hour) }, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := testutil.New(t, func(o *server.Options) { o.Limits.WSSessionCheck = 300 * time.Millisecond })
			org := e.NewOrg("Acme")
			u := e.NewUser(org, "user@acme.test", org.MemberRoleID)
			token := e.SignIn("user@acme.test", testutil.DefaultPassword)
			c := connect(t, serve(t, e), transportWS, token, nil)
			if got := meEmail(t, runQuery(t, c, transportWS, "1", meQuery)); got != "user@acme.test" {
				t.Fatalf("me = %q", got)
			}
			start := time.Now()
			tt.end(e, org, u.ID, token)
			ce := expectClose(t, c, tt.within+time.Second)
			if ce.Code != server.CloseForbidden {
				t.Fatalf("want close code 4403, got %d (%q)", ce.Code, ce.Reason)
			}
			if d := time.Since(start); d > tt.within {
				t.Fatalf("closed after %v, want within %v", d, tt.within)
			}
		})
	}
}

func TestSocketProtocolViolationsGetTheProtocolsCloseCodes(t *testing.T) {
	t.Parallel()
	e := testutil.New(t, func(o *server.Options) { o.Limits.WSInitTimeout = 300 * time.Millisecond })
	org := e.NewOrg("Acme")
	url := serve(t, e)
	init := wsMsg{Type: "connection_init", Payload: initPayload(org.AdminToken)}
	tests := []struct {
		name string
		send []wsMsg
		raw  string
		code websocket.StatusCode
	}{
		{"no connection_init in time", nil, "", 4408},
		{"subscribe before connection_init", []wsMsg{subscribeMsg("1", meQuery)}, "", 4401},
		{"a second connection_init", []wsMsg{init, init}, "", 4429},
		{"an operation id already running", []wsMsg{init,
			subscribeMsg("dup", `subscription { invitationEvents { kind } }`),
			subscribeMsg("dup", `subscription { invitationEvents { kind } }`)}, "", 4409},
		{"not JSON", []wsMsg{init}, "{not json", 4400},
		{"an unknown message type", []wsMsg{init, {Type: "start"}}, "", 4400},
		{"an operation without id", []wsMsg{init, subscribeMsg("", meQuery)}, "", 4400},
		{"a message of the wrong protocol before init", []wsMsg{{Type: "connection_terminate"}}, "", 4400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialWS(t, url, transportWS, nil)
			for _, m := range tt.send {
				sendMsg(t, c, m)
			}
			if tt.raw != "" {
				if err := c.Write(t.Context(), websocket.MessageText, []byte(tt.raw)); err != nil {
					t.Fatal(err)
				}
			}
			ce := expectCloseAfterAck(t, c, 3*time.Second)
			if ce.Code != tt.code {
				t.Fatalf("want close code %d, got %d (%q)", tt.code, ce.Code, ce.Reason)
			}
		})
	}
}

// The finding: 10,000 subscribe messages on one socket were all executed.
func TestSocketMessageFloodIsClosed4429(t *testing.T) {
	t.Parallel()
	e := testutil.New(t, func(o *server.Options) { o.Limits.WSMessageRate = 20 })
	org := e.NewOrg("Acme")
	c := connect(t, serve(t, e), transportWS, org.AdminToken, nil)
	for i := range 200 {
		q, _ := json.Marshal(map[string]string{"query": meQuery})
		b, _ := json.Marshal(wsMsg{ID: fmt.Sprint(i), Type: "subscribe", Payload: q})
		if err := c.Write(t.Context(), websocket.MessageText, b); err != nil {
			break // closed under us: expected
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	results := 0
	for {
		m, err := nextMsg(c, time.Until(deadline))
		if err == nil {
			if m.Type == "next" {
				results++
			}
			continue
		}
		ce, ok := err.(websocket.CloseError)
		if !ok && websocket.CloseStatus(err) == -1 {
			t.Fatalf("want a close frame, got %v", err)
		}
		if ok && ce.Code != 4429 || !ok && websocket.CloseStatus(err) != 4429 {
			t.Fatalf("want close code 4429, got %v", err)
		}
		break
	}
	if results > 20 {
		t.Fatalf("%d operations ran, want at most the 20 a second allows", results)
	}
}

func TestSocketConcurrentOperationsAreCapped(t *testing.T) {
	t.Parallel()
	e := testutil.New(t, func(o *server.Options) { o.Limits.WSMaxOperations = 2 })
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(e.LogText())
		}
	})
	org := e.NewOrg("Acme")
	c := connect(t, serve(t, e), transportWS, org.AdminToken, nil)
	base := e.Broker.Subscribers() // the socket's session watch
	const sub = `subscription { invitationEvents { kind } }`
	sendMsg(t, c, subscribeMsg("a", sub))
	sendMsg(t, c, subscribeMsg("b", sub))
	sendMsg(t, c, subscribeMsg("c", sub))
	m := expectMsg(t, c, "error")
	var errs []testutil.GQLError
	_ = json.Unmarshal(m.Payload, &errs)
	if m.ID != "c" || len(errs) != 1 || errs[0].Code() != "RATE_LIMITED" {
		t.Fatalf("third operation: want a RATE_LIMITED error for c, got %+v %s", m, m.Payload)
	}
	// Completing one makes room.
	sendMsg(t, c, wsMsg{ID: "a", Type: "complete"})
	if m := expectMsg(t, c, "complete"); m.ID != "a" {
		t.Fatalf("want a completed, got %+v\n%s", m, e.LogText())
	}
	waitFor(t, func() bool { return e.Broker.Subscribers() == base+1 })
	if got := meEmail(t, runQuery(t, c, transportWS, "d", meQuery)); got != org.AdminEmail {
		t.Fatalf("me = %q", got)
	}
}

func TestSocketsPerUserAreCapped(t *testing.T) {
	t.Parallel()
	e := testutil.New(t, func(o *server.Options) { o.Limits.WSMaxSocketsPerUser = 2 })
	org := e.NewOrg("Acme")
	url := serve(t, e)
	first := connect(t, url, transportWS, org.AdminToken, nil)
	connect(t, url, transportWS, org.AdminToken, nil)
	third := dialWS(t, url, transportWS, nil)
	sendMsg(t, third, wsMsg{Type: "connection_init", Payload: initPayload(org.AdminToken)})
	if ce := expectClose(t, third, 3*time.Second); ce.Code != 4429 {
		t.Fatalf("third socket: want 4429, got %d (%q)", ce.Code, ce.Reason)
	}
	// Another user is not affected, and closing a socket frees its place.
	e.NewUser(org, "other@acme.test", org.MemberRoleID)
	connect(t, url, transportWS, e.SignIn("other@acme.test", testutil.DefaultPassword), nil).CloseNow()
	first.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := dialWS(t, url, transportWS, nil)
		sendMsg(t, c, wsMsg{Type: "connection_init", Payload: initPayload(org.AdminToken)})
		m, err := nextMsg(c, 3*time.Second)
		if err == nil && m.Type == "connection_ack" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after closing a socket: want a new one accepted, got %+v %v", m, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// expectCloseAfterAck is expectClose, allowing the acknowledgement of a
// connection_init sent first.
func expectCloseAfterAck(t *testing.T, c *websocket.Conn, timeout time.Duration) websocket.CloseError {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m, err := nextMsg(c, time.Until(deadline))
		if err == nil {
			// The close handshake runs beside gqlgen's teardown, which may
			// first end the operations it had running.
			if m.Type == "connection_ack" || m.Type == "complete" || m.Type == "error" {
				continue
			}
			t.Fatalf("want the socket closed, got a %q message: %s", m.Type, m.Payload)
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("want a close frame within %v, got %v", timeout, err)
		}
		return ce
	}
}
