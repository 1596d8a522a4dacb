package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"

	"admit/internal/auth"
	"admit/internal/pubsub"
)

// Close codes of the graphql-transport-ws protocol
// (github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md). The legacy
// graphql-ws subprotocol defines none; its sockets get the same ones.
const (
	CloseBadRequest      = 4400 // a message the protocol does not allow
	CloseUnauthorized    = 4401 // subscribe before connection_ack
	CloseForbidden       = 4403 // a bad token, or the session ended
	CloseInitTimeout     = 4408 // no connection_init in time
	CloseSubscriberInUse = 4409 // an operation id already running
	CloseTooManyRequests = 4429 // a second connection_init, or too many messages or sockets
)

var errSocketClosed = transport.ErrWebsocketClosed

// socket is the state of one websocket connection, shared by the HTTP
// middleware that sees it open and close (trackSockets), the connection
// wrapper that sees every message (socketConn), and connection_init
// (websocketInit), which learns who the caller is.
type socket struct {
	srv    *Server
	ctx    context.Context // ends when the connection's handler returns
	cancel context.CancelFunc

	mu     sync.Mutex
	conn   *socketConn
	viewer *auth.Viewer
}

type socketKey struct{}

func socketFrom(ctx context.Context) *socket {
	s, _ := ctx.Value(socketKey{}).(*socket)
	return s
}

// trackSockets gives each websocket upgrade its socket state and releases
// it when the connection ends.
func (s *Server) trackSockets(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			next.ServeHTTP(w, r)
			return
		}
		sock := &socket{srv: s}
		sock.ctx, sock.cancel = context.WithCancel(r.Context())
		defer sock.release()
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), socketKey{}, sock)))
	})
}

// closeWith closes the connection with a protocol close code.
func (k *socket) closeWith(code int, reason string) {
	k.mu.Lock()
	c := k.conn
	k.mu.Unlock()
	if c != nil {
		c.closeWith(code, reason)
	}
}

// authenticated records the socket's viewer: it counts against the user's
// sockets (false when there are too many), and its session is watched so
// that the socket closes as soon as the session ends.
func (k *socket) authenticated(v *auth.Viewer) bool {
	s := k.srv
	s.socketsMu.Lock()
	if s.userSockets == nil {
		s.userSockets = map[int]map[*socket]struct{}{}
	}
	if len(s.userSockets[v.UserID]) >= s.opts.Limits.WSMaxSocketsPerUser {
		s.socketsMu.Unlock()
		return false
	}
	if s.userSockets[v.UserID] == nil {
		s.userSockets[v.UserID] = map[*socket]struct{}{}
	}
	s.userSockets[v.UserID][k] = struct{}{}
	s.socketsMu.Unlock()
	k.mu.Lock()
	k.viewer = v
	k.mu.Unlock()
	return true
}

func (k *socket) release() {
	k.cancel()
	k.mu.Lock()
	v := k.viewer
	k.viewer = nil
	k.mu.Unlock()
	if v == nil {
		return
	}
	s := k.srv
	s.socketsMu.Lock()
	delete(s.userSockets[v.UserID], k)
	if len(s.userSockets[v.UserID]) == 0 {
		delete(s.userSockets, v.UserID)
	}
	s.socketsMu.Unlock()
}

// sessionsEnded is told (by every replica, through the broker) that
// sessions of a user ended, and has that user's sockets here re-check
// theirs at once.
func (s *Server) sessionsEnded(e pubsub.Event) {
	s.socketsMu.Lock()
	socks := make([]*socket, 0, len(s.userSockets[e.ObjectID]))
	for k := range s.userSockets[e.ObjectID] {
		socks = append(socks, k)
	}
	s.socketsMu.Unlock()
	if len(socks) > 0 {
		go s.checkSessions(socks)
	}
}

// watchSessions closes, every WSSessionCheck, the sockets whose session
// has ended (expiry, or an end announced while a replica's listener was
// down). One goroutine and one query per 1,000 sockets serve them all, so
// an idle socket costs no goroutine or timer of its own.
func (s *Server) watchSessions() {
	tick := time.NewTicker(s.opts.Limits.WSSessionCheck)
	defer tick.Stop()
	for {
		select {
		case <-s.base.Done():
			return
		case <-tick.C:
		}
		s.socketsMu.Lock()
		var socks []*socket
		for _, byUser := range s.userSockets {
			for k := range byUser {
				socks = append(socks, k)
			}
		}
		s.socketsMu.Unlock()
		s.checkSessions(socks)
	}
}

// checkSessions closes with 4403 each socket whose session is no longer
// live.
func (s *Server) checkSessions(socks []*socket) {
	for start := 0; start < len(socks); start += 1000 {
		part := socks[start:min(start+1000, len(socks))]
		ids := make([]int, 0, len(part))
		viewers := make([]*auth.Viewer, len(part))
		for i, k := range part {
			k.mu.Lock()
			viewers[i] = k.viewer
			k.mu.Unlock()
			if viewers[i] != nil {
				ids = append(ids, viewers[i].SessionID)
			}
		}
		if len(ids) == 0 {
			continue
		}
		live, err := s.opts.Accounts.LiveSessions(s.base, s.opts.DB.Client, ids)
		if err != nil {
			if s.base.Err() == nil {
				s.opts.Log.Warn("websocket session check failed", "error", err)
			}
			return
		}
		for i, k := range part {
			if v := viewers[i]; v != nil && !live[v.SessionID] {
				k.closeWith(CloseForbidden, "Forbidden: the session has ended")
			}
		}
	}
}

// socketImplementation wraps coder/websocket's so that every connection
// goes through a socketConn.
type socketImplementation struct {
	inner transport.WebsocketImplementation
	srv   *Server
}

func (i socketImplementation) Accept(w http.ResponseWriter, r *http.Request, o transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	conn, err := i.inner.Accept(w, r, o)
	if err != nil {
		return nil, err
	}
	l := i.srv.opts.Limits
	c := &socketConn{inner: conn, legacy: conn.Subprotocol() != "graphql-transport-ws", active: map[string]bool{},
		rate: l.WSMessageRate, maxOps: l.WSMaxOperations, keepAlive: l.WSKeepAlive}
	if sock := socketFrom(r.Context()); sock != nil {
		sock.mu.Lock()
		sock.conn = c
		sock.mu.Unlock()
	}
	c.mu.Lock() // the timer's func reads initDone, and closeWith the timer
	c.initTimer = time.AfterFunc(l.WSInitTimeout, func() {
		c.mu.Lock()
		done := c.initDone
		c.mu.Unlock()
		if !done {
			c.closeWith(CloseInitTimeout, "Connection initialisation timeout")
		}
	})
	c.mu.Unlock()
	return c, nil
}

// socketConn enforces the protocol and the per-socket limits on one
// connection, under gqlgen's transport: it reads every client message
// before gqlgen does, sees every message gqlgen writes, and closes with
// the protocol's codes.
type socketConn struct {
	inner     transport.WebsocketConn
	legacy    bool // graphql-ws rather than graphql-transport-ws
	rate      int  // messages per second
	maxOps    int  // concurrent operations
	initTimer *time.Timer
	keepAlive time.Duration

	mu          sync.Mutex
	closed      bool
	initDone    bool
	pingTimer   *time.Timer     // from connection_ack on
	pinging     bool            // a ping is being written
	alive       time.Time       // connection_ack, or the last pong
	active      map[string]bool // operation ids running
	windowStart time.Time
	inWindow    int
}

var (
	_ transport.WebsocketConn          = (*socketConn)(nil)
	_ transport.WebsocketReadLimiter   = (*socketConn)(nil)
	_ transport.WebsocketReadDeadliner = (*socketConn)(nil)
)

// closeWith sends the close frame once; later closes (gqlgen's own) are
// dropped, so the first reason is the one the client sees.
func (c *socketConn) closeWith(code int, reason string) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.stopTimersLocked()
	c.mu.Unlock()
	_ = c.inner.WriteClose(code, reason)
}

// WriteClose is gqlgen closing: its generic 1002 becomes 4400.
func (c *socketConn) WriteClose(code int, reason string) error {
	if code == transport.WebsocketCloseProtocolError {
		code = CloseBadRequest
	}
	c.closeWith(code, reason)
	return nil
}

func (c *socketConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.stopTimersLocked()
	c.mu.Unlock()
	return c.inner.Close()
}

func (c *socketConn) stopInitTimerLocked() {
	if c.initTimer != nil {
		c.initTimer.Stop()
	}
}

func (c *socketConn) stopTimersLocked() {
	c.stopInitTimerLocked()
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
}

// Keep-alive frames, as gqlgen's transport would send them.
var (
	pingFrame = json.RawMessage(`{"type":"ping"}`) // graphql-transport-ws: the client answers pong
	kaFrame   = json.RawMessage(`{"type":"ka"}`)   // graphql-ws: one-way
)

// startKeepAliveLocked arms the keep-alive once the connection is
// acknowledged. It stands in for gqlgen's ping and keep-alive goroutines
// (one per socket, for its whole life): a timer holds no goroutine while
// it waits, and each ping runs on a goroutine of its own only while it is
// written.
func (c *socketConn) startKeepAliveLocked() {
	if c.keepAlive <= 0 || c.pingTimer != nil || c.closed {
		return
	}
	c.alive = time.Now()
	c.pingTimer = time.AfterFunc(c.keepAlive, c.ping)
}

// ping sends one keep-alive. A graphql-transport-ws client that has not
// answered a ping for two intervals is dropped without a close frame, as
// gqlgen's read deadline did: it is not reading.
func (c *socketConn) ping() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if !c.legacy && time.Since(c.alive) > 2*c.keepAlive {
		c.closed = true
		c.mu.Unlock()
		_ = c.inner.Close()
		return
	}
	// Armed before the write: a write stuck on a client that does not read
	// must not stop the check above from dropping it.
	c.pingTimer.Reset(c.keepAlive)
	if c.pinging {
		c.mu.Unlock()
		return
	}
	c.pinging = true
	c.mu.Unlock()
	frame := pingFrame
	if c.legacy {
		frame = kaFrame
	}
	_ = c.inner.WriteJSON(frame)
	c.mu.Lock()
	c.pinging = false
	c.mu.Unlock()
}

func (c *socketConn) Subprotocol() string { return c.inner.Subprotocol() }

func (c *socketConn) SetReadLimit(n int64) {
	if l, ok := c.inner.(transport.WebsocketReadLimiter); ok {
		l.SetReadLimit(n)
	}
}

func (c *socketConn) SetReadDeadline(t time.Time) error {
	if d, ok := c.inner.(transport.WebsocketReadDeadliner); ok {
		return d.SetReadDeadline(t)
	}
	return nil
}

type wireMsg struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// WriteJSON passes gqlgen's messages on and notes which operations ended.
// It reads the message's id and type from gqlgen's struct rather than
// encoding it twice: this runs for every event of every subscriber.
func (c *socketConn) WriteJSON(v any) error {
	id, typ, ok := messageHeader(v)
	if !ok {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		var m wireMsg
		_ = json.Unmarshal(b, &m)
		id, typ, v = m.ID, m.Type, json.RawMessage(b)
	}
	switch {
	case id != "" && (typ == "complete" || typ == "error"):
		c.mu.Lock()
		delete(c.active, id)
		c.mu.Unlock()
	case typ == "connection_ack":
		c.mu.Lock()
		c.startKeepAliveLocked()
		c.mu.Unlock()
	}
	return c.inner.WriteJSON(v)
}

// messageHeader reads ID and Type from gqlgen's message structs (both
// subprotocols name them so), without encoding them. The fields' indexes
// are looked up once per type.
func messageHeader(v any) (id, typ string, ok bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return "", "", false
	}
	f, found := headerFields.Load(rv.Type())
	if !found {
		f, _ = headerFields.LoadOrStore(rv.Type(), headerFieldsOf(rv.Type()))
	}
	idx := f.([2]int)
	if idx[0] < 0 {
		return "", "", false
	}
	return rv.Field(idx[0]).String(), rv.Field(idx[1]).String(), true
}

var headerFields sync.Map // reflect.Type → [2]int: ID's and Type's index, or -1

func headerFieldsOf(t reflect.Type) [2]int {
	idf, ok1 := t.FieldByName("ID")
	tf, ok2 := t.FieldByName("Type")
	if !ok1 || !ok2 || len(idf.Index) != 1 || len(tf.Index) != 1 ||
		idf.Type.Kind() != reflect.String || tf.Type.Kind() != reflect.String {
		return [2]int{-1, -1}
	}
	return [2]int{idf.Index[0], tf.Index[0]}
}

// clientTypes are the messages a client may send, per subprotocol.
var clientTypes = map[bool]map[string]bool{
	false: {"connection_init": true, "subscribe": true, "complete": true, "ping": true, "pong": true},
	true:  {"connection_init": true, "start": true, "stop": true, "connection_terminate": true},
}

// NextReader reads the next client message and enforces, before gqlgen
// sees it: the message rate, the protocol's order (connection_init first
// and once), unique operation ids and the concurrent operations cap.
func (c *socketConn) NextReader() (int, io.Reader, error) {
	for {
		mt, r, err := c.inner.NextReader()
		if err != nil {
			return mt, r, err
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return mt, nil, err
		}
		if code, reason, skip := c.check(b); code != 0 {
			c.closeWith(code, reason)
			return mt, nil, errSocketClosed
		} else if skip {
			continue
		}
		return mt, bytes.NewReader(b), nil
	}
}

// check returns a close code and reason for a message that breaks the
// protocol or a limit, or skip for one answered here (an operation over
// the cap gets an error of its own; the socket stays open).
func (c *socketConn) check(b []byte) (code int, reason string, skip bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, "", true
	}
	now := time.Now()
	if now.Sub(c.windowStart) >= time.Second {
		c.windowStart, c.inWindow = now, 0
	}
	if c.inWindow++; c.rate > 0 && c.inWindow > c.rate {
		return CloseTooManyRequests, fmt.Sprintf("Too many messages: at most %d a second", c.rate), false
	}
	var m wireMsg
	if err := json.Unmarshal(b, &m); err != nil || !clientTypes[c.legacy][m.Type] {
		return CloseBadRequest, "Invalid message received", false
	}
	switch m.Type {
	case "pong":
		c.alive = now
	case "connection_init":
		if c.initDone {
			return CloseTooManyRequests, "Too many initialisation requests", false
		}
		c.initDone = true
		c.stopInitTimerLocked()
	case "subscribe", "start":
		switch {
		case !c.initDone:
			return CloseUnauthorized, "Unauthorized", false
		case m.ID == "":
			return CloseBadRequest, "Invalid message received: an operation needs an id", false
		case c.active[m.ID]:
			return CloseSubscriberInUse, "Subscriber for " + truncate(m.ID, 64) + " already exists", false
		case c.maxOps > 0 && len(c.active) >= c.maxOps:
			c.refuseLocked(m.ID)
			return 0, "", true
		}
		c.active[m.ID] = true
	}
	return 0, "", false
}

// refuseLocked answers an operation over the concurrent cap with an error
// of its own (RATE_LIMITED), as gqlgen would answer a failed one.
func (c *socketConn) refuseLocked(id string) {
	typ := "error"
	payload := any([]map[string]any{{
		"message":    fmt.Sprintf("too many operations on this socket: at most %d at once", c.maxOps),
		"extensions": map[string]any{"code": "RATE_LIMITED"},
	}})
	if c.legacy {
		payload = map[string]any{"message": fmt.Sprintf("too many operations on this socket: at most %d at once", c.maxOps)}
	}
	_ = c.inner.WriteJSON(map[string]any{"id": id, "type": typ, "payload": payload})
	if c.legacy {
		_ = c.inner.WriteJSON(map[string]any{"id": id, "type": "complete"})
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
