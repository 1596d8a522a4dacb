package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"admit/internal/testutil"
)

// wsSub is a graphql-transport-ws subscription on a real server.
type wsSub struct {
	c      *websocket.Conn
	events chan map[string]any
}

func subscribeWS(t *testing.T, baseURL, token, query string, vars map[string]any) *wsSub {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(baseURL, "http")+"/query", &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	write := func(v any) {
		b, _ := json.Marshal(v)
		if err := c.Write(ctx, websocket.MessageText, b); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	write(map[string]any{"type": "connection_init", "payload": map[string]string{"Authorization": "Bearer " + token}})
	_, b, err := c.Read(ctx)
	if err != nil || !strings.Contains(string(b), "connection_ack") {
		t.Fatalf("init: %s %v", b, err)
	}
	write(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": query, "variables": vars}})
	s := &wsSub{c: c, events: make(chan map[string]any, 16)}
	go func() {
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				close(s.events)
				return
			}
			var m struct {
				Type    string
				Payload struct {
					Data map[string]any
				}
			}
			if json.Unmarshal(b, &m) == nil && m.Type == "next" {
				s.events <- m.Payload.Data
			} else if m.Type == "ping" {
				_ = c.Write(context.Background(), websocket.MessageText, []byte(`{"type":"pong"}`))
			}
		}
	}()
	return s
}

func (s *wsSub) next(t *testing.T, field string, within time.Duration) map[string]any {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatal("the subscription closed")
		}
		return ev[field].(map[string]any)
	case <-time.After(within):
		t.Fatalf("no %s event within %v", field, within)
	}
	return nil
}

var requestToken = regexp.MustCompile(`token=(adj_[0-9]+_1_[A-Za-z0-9_-]{43})`)

// waitForToken waits until a server logged (LogSender) a join-request
// confirmation link it did not log before.
func waitForToken(t *testing.T, seen map[string]bool, outs ...*lockedBuffer) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, o := range outs {
			for _, m := range requestToken.FindAllStringSubmatch(o.String(), -1) {
				if !seen[m[1]] {
					seen[m[1]] = true
					return m[1]
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no confirmation link was sent")
	return ""
}

func TestWorkspaceEventsReachEveryReplica(t *testing.T) {
	t.Parallel()
	if testutil.PostgresURL() == "" {
		t.Skip("replicas share events through PostgreSQL; runs in the PostgreSQL pass (TEST_DATABASE_URL)")
	}
	dbURL := testutil.DatabaseURL(t)
	a, b := startReplicas(t, dbURL)
	token := post(t, a.url, "", `mutation { signIn(input: {email: "peter@initech.test", password: "tps reports 42"}) { token } }`)["signIn"].(map[string]any)["token"].(string)
	ws := post(t, a.url, token, `mutation { createWorkspace(input: {name: "Deals", type: FLOW}) { workspace { id } } }`)["createWorkspace"].(map[string]any)["workspace"].(map[string]any)["id"].(string)
	link := post(t, a.url, token, `mutation { updateWorkspaceLink(input: {workspaceID: "`+ws+`", enabled: true}) { link { url } } }`)["updateWorkspaceLink"].(map[string]any)["link"].(map[string]any)["url"].(string)
	linkToken := link[strings.Index(link, "token=")+len("token="):]

	sub := subscribeWS(t, a.url, token, `subscription { joinRequestEvents { type cursor joinRequest { id email status } } }`, nil)
	time.Sleep(200 * time.Millisecond) // let the subscription register on A
	seen := map[string]bool{}
	ask := func(on *instance, email string) {
		post(t, on.url, "", `mutation { requestToJoinWorkspace(input: {token: "`+linkToken+`", email: "`+email+`"}) { message } }`)
		tok := waitForToken(t, seen, a.out, b.out)
		post(t, on.url, "", `mutation { confirmJoinRequest(input: {token: "`+tok+`"}) { request { status } } }`)
	}

	// A request confirmed on B, and its approval on B, reach A's subscriber.
	ask(b, "first@example.com")
	ev := sub.next(t, "joinRequestEvents", 10*time.Second)
	jr := ev["joinRequest"].(map[string]any)
	if ev["type"] != "CREATED" || jr["email"] != "first@example.com" {
		t.Fatalf("on A: %v", ev)
	}
	post(t, b.url, token, `mutation { approveJoinRequest(input: {id: "`+jr["id"].(string)+`", as: CLIENT}) { joinRequest { status } } }`)
	if ev := sub.next(t, "joinRequestEvents", 10*time.Second); ev["type"] != "APPROVED" {
		t.Fatalf("on A: want APPROVED, got %v", ev)
	}

	// The listening connections die while events fire: once A's listener
	// is back, its subscriber replays what it missed from the store.
	admin, err := sql.Open("postgres", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var killed int
	if err := admin.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query ILIKE 'listen %admit_events%' AND datname = current_database()`).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed == 0 {
		t.Fatal("found no listening connection to kill")
	}
	ask(b, "second@example.com")
	ask(b, "third@example.com")
	var got []string
	for range 2 {
		ev := sub.next(t, "joinRequestEvents", 20*time.Second)
		got = append(got, ev["joinRequest"].(map[string]any)["email"].(string))
	}
	if strings.Join(got, ",") != "second@example.com,third@example.com" {
		t.Fatalf("after the listener died: want second, third in order, got %v", got)
	}
	select {
	case ev := <-sub.events:
		t.Fatalf("want no repeat, got %v", ev)
	case <-time.After(500 * time.Millisecond):
	}
	if !strings.Contains(a.out.String(), "lost the LISTEN connection") {
		t.Fatalf("replica A never noticed its listener die:\n%s", a.out)
	}
}
