package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"admit/internal/server"
	"admit/internal/testutil"
)

const (
	transportWS = "graphql-transport-ws"
	legacyWS    = "graphql-ws"
)

// serve runs the handler on a real listener, wired as in package main:
// request contexts derive from the handler's BaseContext, so CloseSockets
// reaches open websockets.
func serve(t testing.TB, e *testutil.Env) (wsURL string) {
	t.Helper()
	ts := httptest.NewUnstartedServer(e.Server)
	ts.Config.BaseContext = func(net.Listener) context.Context { return e.Server.BaseContext() }
	ts.Start()
	t.Cleanup(ts.Close)
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/query"
}

func dialWSResponse(t testing.TB, url, subprotocol string, header http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		Subprotocols: []string{subprotocol},
		HTTPHeader:   header,
	})
	if c != nil {
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

// dialWS opens a websocket and checks the server agreed on subprotocol.
func dialWS(t testing.TB, url, subprotocol string, header http.Header) *websocket.Conn {
	t.Helper()
	c, _, err := dialWSResponse(t, url, subprotocol, header)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	if c.Subprotocol() != subprotocol {
		t.Fatalf("want subprotocol %q, got %q", subprotocol, c.Subprotocol())
	}
	return c
}

type wsMsg struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

func sendMsg(t testing.TB, c *websocket.Conn, m wsMsg) {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatalf("write %s: %v", b, err)
	}
}

// nextMsg reads the next protocol message within timeout, skipping
// keep-alives and answering pings.
func nextMsg(c *websocket.Conn, timeout time.Duration) (wsMsg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return wsMsg{}, err
		}
		var m wsMsg
		if err := json.Unmarshal(b, &m); err != nil {
			return wsMsg{}, err
		}
		switch m.Type {
		case "ka":
			continue
		case "ping":
			if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"pong"}`)); err != nil {
				return wsMsg{}, err
			}
			continue
		}
		return m, nil
	}
}

func readMsg(t testing.TB, c *websocket.Conn) wsMsg {
	t.Helper()
	m, err := nextMsg(c, 5*time.Second)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return m
}

func expectMsg(t testing.TB, c *websocket.Conn, typ string) wsMsg {
	t.Helper()
	m := readMsg(t, c)
	if m.Type != typ {
		t.Fatalf("want a %q message, got %q: %s", typ, m.Type, m.Payload)
	}
	return m
}

// initPayload is a connection_init payload carrying token, if any.
func initPayload(token string) json.RawMessage {
	if token == "" {
		return json.RawMessage(`{}`)
	}
	b, _ := json.Marshal(map[string]string{"Authorization": "Bearer " + token})
	return b
}

// connect dials and completes connection_init.
func connect(t testing.TB, url, subprotocol, token string, header http.Header) *websocket.Conn {
	t.Helper()
	c := dialWS(t, url, subprotocol, header)
	sendMsg(t, c, wsMsg{Type: "connection_init", Payload: initPayload(token)})
	expectMsg(t, c, "connection_ack")
	return c
}

type gqlPayload struct {
	Data   json.RawMessage     `json:"data"`
	Errors []testutil.GQLError `json:"errors"`
}

// runQuery runs query as operation id over an initialised socket and
// returns the result payload, after the operation's completion.
func runQuery(t *testing.T, c *websocket.Conn, subprotocol, id, query string) gqlPayload {
	t.Helper()
	start, data := "subscribe", "next"
	if subprotocol == legacyWS {
		start, data = "start", "data"
	}
	q, _ := json.Marshal(map[string]string{"query": query})
	sendMsg(t, c, wsMsg{ID: id, Type: start, Payload: q})
	m := expectMsg(t, c, data)
	if m.ID != id {
		t.Fatalf("want a result for operation %q, got one for %q", id, m.ID)
	}
	var p gqlPayload
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		t.Fatalf("decode %s: %v", m.Payload, err)
	}
	if done := expectMsg(t, c, "complete"); done.ID != id {
		t.Fatalf("want complete for operation %q, got %q", id, done.ID)
	}
	return p
}

func meEmail(t *testing.T, p gqlPayload) string {
	t.Helper()
	if len(p.Errors) > 0 {
		t.Fatalf("want no errors, got %+v", p.Errors)
	}
	var out struct{ Me struct{ Email string } }
	if err := json.Unmarshal(p.Data, &out); err != nil {
		t.Fatalf("decode %s: %v", p.Data, err)
	}
	return out.Me.Email
}

// expectClose reads until the server closes the socket and returns the
// close frame, failing if none arrives within timeout.
func expectClose(t *testing.T, c *websocket.Conn, timeout time.Duration) websocket.CloseError {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m, err := nextMsg(c, time.Until(deadline))
		if err == nil {
			if m.Type == "connection_error" || m.Type == "error" {
				continue // legacy protocol: the reason may come first
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

func TestWebsocketAuthenticatedQuery(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	url := serve(t, e)

	tests := []struct {
		name    string
		payload map[string]string
	}{
		{"Authorization", map[string]string{"Authorization": "Bearer " + org.AdminToken}},
		{"authorization", map[string]string{"authorization": "Bearer " + org.AdminToken}},
		{"token", map[string]string{"token": org.AdminToken}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialWS(t, url, transportWS, nil)
			b, _ := json.Marshal(tt.payload)
			sendMsg(t, c, wsMsg{Type: "connection_init", Payload: b})
			expectMsg(t, c, "connection_ack")
			if got := meEmail(t, runQuery(t, c, transportWS, "1", meQuery)); got != org.AdminEmail {
				t.Fatalf("want me.email %q, got %q", org.AdminEmail, got)
			}
			// The socket stays usable for further operations.
			if got := meEmail(t, runQuery(t, c, transportWS, "2", meQuery)); got != org.AdminEmail {
				t.Fatalf("second operation: want me.email %q, got %q", org.AdminEmail, got)
			}
		})
	}
}

func TestWebsocketAnonymous(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	e.NewOrg("Acme")
	c := connect(t, serve(t, e), transportWS, "", nil)
	p := runQuery(t, c, transportWS, "1", meQuery)
	for _, err := range p.Errors {
		if err.Code() == "UNAUTHENTICATED" {
			if strings.Contains(string(p.Data), "@") {
				t.Fatalf("want no user data, got %s", p.Data)
			}
			return
		}
	}
	t.Fatalf("want an UNAUTHENTICATED error, got data %s errors %+v", p.Data, p.Errors)
}

func TestWebsocketBadTokenCloses4403(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	url := serve(t, e)
	tokens := []struct{ name, token string }{
		{"garbage", "not-a-token"},
		{"well-formed but unknown", "ads_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"a token of another purpose", "adi_" + strings.TrimPrefix(org.AdminToken, "ads_")},
	}
	for _, sub := range []string{transportWS, legacyWS} {
		for _, tt := range tokens {
			t.Run(sub+"/"+tt.name, func(t *testing.T) {
				c := dialWS(t, url, sub, nil)
				sendMsg(t, c, wsMsg{Type: "connection_init", Payload: initPayload(tt.token)})
				ce := expectClose(t, c, 5*time.Second)
				if ce.Code != 4403 {
					t.Fatalf("want close status 4403, got %d (%q)", ce.Code, ce.Reason)
				}
				for _, leak := range []string{"sql", "ent:", "account.", tt.token} {
					if strings.Contains(ce.Reason, leak) {
						t.Fatalf("close reason %q leaks %q", ce.Reason, leak)
					}
				}
			})
		}
	}
}

func TestWebsocketOrigin(t *testing.T) {
	t.Parallel()
	e := testutil.New(t, allowApp)
	org := e.NewOrg("Acme")
	url := serve(t, e)

	for _, origin := range []string{"https://evil.example", "https://app.example.com.evil.example", "http://app.example.com"} {
		t.Run("refused "+origin, func(t *testing.T) {
			c, resp, err := dialWSResponse(t, url, transportWS, http.Header{"Origin": {origin}})
			if err == nil {
				c.CloseNow()
				t.Fatalf("origin %s: want the upgrade refused, got a socket", origin)
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("origin %s: want HTTP 403, got %v (%v)", origin, resp, err)
			}
		})
	}

	sameHost := "http://" + strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/query")
	for _, origin := range []string{appOrigin, sameHost} {
		t.Run("allowed "+origin, func(t *testing.T) {
			c := connect(t, url, transportWS, org.AdminToken, http.Header{"Origin": {origin}})
			if got := meEmail(t, runQuery(t, c, transportWS, "1", meQuery)); got != org.AdminEmail {
				t.Fatalf("want me.email %q, got %q", org.AdminEmail, got)
			}
		})
	}
}

func TestWebsocketInitTimeout(t *testing.T) {
	t.Parallel()
	e := testutil.New(t, func(o *server.Options) { o.Limits.WSInitTimeout = 300 * time.Millisecond })
	url := serve(t, e)
	for _, sub := range []string{transportWS, legacyWS} {
		t.Run(sub, func(t *testing.T) {
			c := dialWS(t, url, sub, nil)
			start := time.Now()
			ce := expectClose(t, c, 2*time.Second) // no connection_init sent
			if ce.Code == websocket.StatusNormalClosure {
				t.Fatalf("want an error close status, got %d (%q)", ce.Code, ce.Reason)
			}
			if d := time.Since(start); d < 250*time.Millisecond {
				t.Fatalf("closed after %v: want the %v init timeout to elapse first", d, 300*time.Millisecond)
			}
		})
	}
}

func TestWebsocketLegacyProtocol(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	c := connect(t, serve(t, e), legacyWS, org.AdminToken, nil)
	if got := meEmail(t, runQuery(t, c, legacyWS, "1", meQuery)); got != org.AdminEmail {
		t.Fatalf("want me.email %q, got %q", org.AdminEmail, got)
	}
}

func TestCloseSocketsClosesOpenSockets(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	url := serve(t, e)
	var conns []*websocket.Conn
	for _, sub := range []string{transportWS, legacyWS} {
		c := connect(t, url, sub, org.AdminToken, nil)
		if got := meEmail(t, runQuery(t, c, sub, "1", meQuery)); got != org.AdminEmail {
			t.Fatalf("%s: want me.email %q, got %q", sub, org.AdminEmail, got)
		}
		conns = append(conns, c)
	}

	e.Server.CloseSockets()
	for i, c := range conns {
		ce := expectClose(t, c, 3*time.Second)
		if ce.Code != websocket.StatusNormalClosure && ce.Code != websocket.StatusGoingAway {
			t.Fatalf("socket %d: want a normal or going-away close, got %d (%q)", i, ce.Code, ce.Reason)
		}
	}
}

// signOut's contract is that the token "stops working at once"; that must
// hold for a socket opened with it too, as it must once the session expires.
func TestWebsocketSessionEnd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		end  func(e *testutil.Env, org *testutil.Org)
	}{
		{"sign out", func(e *testutil.Env, org *testutil.Org) {
			var out struct{ SignOut struct{ SignedOut bool } }
			e.Do(org.AdminToken, `mutation { signOut { signedOut } }`, nil).MustData(&out)
			if !out.SignOut.SignedOut {
				e.T.Fatal("want signedOut true")
			}
		}},
		{"expiry", func(e *testutil.Env, _ *testutil.Org) { e.Clock.Advance(24*time.Hour + time.Second) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := testutil.New(t)
			org := e.NewOrg("Acme")
			c := connect(t, serve(t, e), transportWS, org.AdminToken, nil)
			if got := meEmail(t, runQuery(t, c, transportWS, "1", meQuery)); got != org.AdminEmail {
				t.Fatalf("before: want me.email %q, got %q", org.AdminEmail, got)
			}

			tt.end(e, org)
			if r := e.Do(org.AdminToken, meQuery, nil); len(r.Errors) == 0 {
				t.Fatalf("over HTTP: want the ended session refused, got %s", r.Body)
			}

			// Over the socket: the operation fails UNAUTHENTICATED, or the
			// socket is closed.
			q, _ := json.Marshal(map[string]string{"query": meQuery})
			sendMsg(t, c, wsMsg{ID: "2", Type: "subscribe", Payload: q})
			m, err := nextMsg(c, 5*time.Second)
			if err != nil {
				var ce websocket.CloseError
				if !errors.As(err, &ce) {
					t.Fatalf("want a result or a close frame, got %v", err)
				}
				return
			}
			var p gqlPayload
			_ = json.Unmarshal(m.Payload, &p)
			for _, gerr := range p.Errors {
				if gerr.Code() == "UNAUTHENTICATED" {
					return
				}
			}
			t.Fatalf("after the session ended: want UNAUTHENTICATED or a closed socket, got %q: %s", m.Type, m.Payload)
		})
	}
}

// rawType reads the next frame within timeout and returns its type,
// answering nothing.
func rawType(c *websocket.Conn, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		return "", err
	}
	var m wsMsg
	err = json.Unmarshal(b, &m)
	return m.Type, err
}

func TestWebsocketKeepAlive(t *testing.T) {
	t.Parallel()
	e := testutil.New(t, func(o *server.Options) { o.Limits.WSKeepAlive = 100 * time.Millisecond })
	org := e.NewOrg("Acme")
	url := serve(t, e)

	t.Run("a client that answers pings stays connected", func(t *testing.T) {
		c := connect(t, url, transportWS, org.AdminToken, nil)
		for range 5 {
			typ, err := rawType(c, 2*time.Second)
			if err != nil || typ != "ping" {
				t.Fatalf("want a ping, got %q (%v)", typ, err)
			}
			sendMsg(t, c, wsMsg{Type: "pong"})
		}
		if got := meEmail(t, runQuery(t, c, transportWS, "1", meQuery)); got != org.AdminEmail {
			t.Fatalf("want me.email %q, got %q", org.AdminEmail, got)
		}
	})

	t.Run("a client that does not answer is dropped", func(t *testing.T) {
		c := connect(t, url, transportWS, org.AdminToken, nil)
		pings := 0
		for {
			typ, err := rawType(c, 2*time.Second)
			if err != nil {
				var ce websocket.CloseError
				if errors.As(err, &ce) || errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("want the connection dropped, got %v", err)
				}
				break
			}
			if typ != "ping" {
				t.Fatalf("want only pings, got %q", typ)
			}
			pings++
		}
		if pings == 0 {
			t.Fatal("dropped before any ping")
		}
	})

	t.Run("graphql-ws gets keep-alives", func(t *testing.T) {
		c := connect(t, url, legacyWS, org.AdminToken, nil)
		for range 3 {
			if typ, err := rawType(c, 2*time.Second); err != nil || typ != "ka" {
				t.Fatalf("want a ka, got %q (%v)", typ, err)
			}
		}
	})
}
