package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"admit/graph"
	"admit/internal/account"
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

const (
	subprotocolTransportWS = "graphql-transport-ws"
	subprotocolLegacyWS    = "graphql-ws"
	socketReadLimit        = 64 << 10
)

// websocketTransport serves GraphQL over websockets, both subprotocols
// (graphql-transport-ws, and the legacy graphql-ws that gqlgen also
// speaks), on gqlgen's executor and coder/websocket's connections.
//
// It stands in for gqlgen's transport.Websocket for one reason: memory per
// idle socket. gqlgen's keeps three goroutines for each subscribed socket
// for its whole life (the HTTP handler's, running the read loop under the
// whole middleware chain; one that waits for the socket's context to end;
// and one per operation waiting on the subscription's channel), about
// 29 KiB of stack before any heap. Here a socket holds one goroutine, its
// read loop, started fresh after the upgrade so its stack stays small. An
// operation runs on a goroutine only while it has work: a subscription
// that claims its graph.Stream is executed when its resolver announces an
// event, on a goroutine that ends when the event is written. Keep-alive
// and the init timeout are timers, which hold no goroutine either.
type websocketTransport struct {
	srv    *Server
	accept websocket.AcceptOptions
}

var _ graphql.Transport = websocketTransport{}

func (websocketTransport) Supports(r *http.Request) bool { return r.Header.Get("Upgrade") != "" }

func (t websocketTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	opts := t.accept
	opts.Subprotocols = []string{subprotocolTransportWS, subprotocolLegacyWS}
	conn, err := websocket.Accept(w, r, &opts)
	if err != nil {
		return // Accept has answered (403 for a refused origin, 426, 400)
	}
	conn.SetReadLimit(socketReadLimit)
	s := t.srv
	l := s.opts.Limits
	k := &socket{srv: s, conn: conn, exec: exec, legacy: conn.Subprotocol() != subprotocolTransportWS,
		ops: map[string]*operation{}, rate: l.WSMessageRate, maxOps: l.WSMaxOperations, keepAlive: l.WSKeepAlive}
	// The socket outlives this handler, whose context ends when it returns,
	// but keeps its values (the client's address); shutdown still ends it.
	k.ctx, k.cancel = context.WithCancel(context.WithoutCancel(r.Context()))
	k.stopOnShutdown = context.AfterFunc(s.base, func() { k.closeWith(websocket.StatusNormalClosure, "terminated") })
	s.opts.Metrics.SocketOpened()
	k.mu.Lock() // the timer's func reads initDone, and closeWith the timer
	k.initTimer = time.AfterFunc(l.WSInitTimeout, func() {
		k.mu.Lock()
		done := k.initDone
		k.mu.Unlock()
		if !done {
			k.closeWith(CloseInitTimeout, "Connection initialisation timeout")
		}
	})
	k.mu.Unlock()
	// The handler returns, and net/http's connection goroutine with it:
	// the read loop starts on a goroutine of its own with a small stack.
	go k.serve()
}

// socket is one websocket connection: the protocol's state, its limits,
// its operations, and who it authenticated as.
type socket struct {
	srv            *Server
	conn           *websocket.Conn
	exec           graphql.GraphExecutor
	legacy         bool // graphql-ws rather than graphql-transport-ws
	rate           int  // messages per second
	maxOps         int  // concurrent operations
	keepAlive      time.Duration
	ctx            context.Context // the connection's; from connection_init on, with its viewer
	cancel         context.CancelFunc
	stopOnShutdown func() bool
	initTimer      *time.Timer

	mu          sync.Mutex
	closed      bool
	initDone    bool
	viewer      *auth.Viewer
	pingTimer   *time.Timer // from connection_ack on
	pinging     bool        // a ping is being written
	alive       time.Time   // connection_ack, or the last pong
	ops         map[string]*operation
	windowStart time.Time
	inWindow    int
}

// clientMsg is a message from the client, in either subprotocol.
type clientMsg struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

// clientTypes are the messages a client may send, per subprotocol.
var clientTypes = map[bool]map[string]bool{
	false: {"connection_init": true, "subscribe": true, "complete": true, "ping": true, "pong": true},
	true:  {"connection_init": true, "start": true, "stop": true, "connection_terminate": true},
}

// serve is the socket's read loop, and its only long-lived goroutine.
func (k *socket) serve() {
	defer k.finish()
	for {
		_, b, err := k.conn.Read(context.Background())
		if err != nil {
			return
		}
		if !k.handle(b) {
			return
		}
	}
}

// finish releases everything the socket holds once its read loop ends.
func (k *socket) finish() {
	k.mu.Lock()
	closing := k.closed
	k.closed = true
	k.stopTimersLocked()
	k.mu.Unlock()
	k.cancel() // ends every operation
	if !closing {
		_ = k.conn.CloseNow()
	}
	k.stopOnShutdown()
	k.release()
	k.srv.opts.Metrics.SocketClosed()
}

// handle acts on one client message; false ends the read loop.
func (k *socket) handle(b []byte) bool {
	m, op, code, reason := k.check(b)
	switch {
	case code != 0:
		if code == CloseBadRequest && !k.initDoneNow() {
			k.connectionError(reason)
		}
		k.closeWith(code, reason)
		return false
	case m == nil:
		return true // answered by check
	}
	switch m.Type {
	case "connection_init":
		return k.init(m.Payload)
	case "subscribe", "start":
		go op.run(m.Payload)
	case "complete", "stop":
		k.mu.Lock()
		op := k.ops[m.ID]
		k.mu.Unlock()
		if op != nil {
			op.stop()
		}
	case "ping":
		k.write(serverMsg("", "pong", m.Payload))
	case "connection_terminate":
		k.closeWith(websocket.StatusNormalClosure, "terminated")
		return false
	}
	return true
}

func (k *socket) initDoneNow() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.initDone
}

// check enforces, for one message: the message rate, the protocol's order
// (connection_init first and once), unique operation ids and the
// concurrent operations cap. It returns the message, and for an operation
// the operation it registers; or a close code and reason; or neither, for
// a message answered here (an operation over the cap gets an error of its
// own; the socket stays open).
func (k *socket) check(b []byte) (m *clientMsg, op *operation, code websocket.StatusCode, reason string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil, nil, 0, ""
	}
	now := time.Now()
	if now.Sub(k.windowStart) >= time.Second {
		k.windowStart, k.inWindow = now, 0
	}
	if k.inWindow++; k.rate > 0 && k.inWindow > k.rate {
		return nil, nil, CloseTooManyRequests, fmt.Sprintf("Too many messages: at most %d a second", k.rate)
	}
	m = &clientMsg{}
	if err := json.Unmarshal(b, m); err != nil || !clientTypes[k.legacy][m.Type] {
		return nil, nil, CloseBadRequest, "Invalid message received"
	}
	if !k.initDone {
		switch m.Type {
		case "connection_init":
			k.initDone = true
			k.initTimer.Stop()
			return m, nil, 0, ""
		case "subscribe", "start":
			return nil, nil, CloseUnauthorized, "Unauthorized"
		case "connection_terminate":
			return m, nil, 0, ""
		}
		return nil, nil, CloseBadRequest, "unexpected message " + m.Type
	}
	switch m.Type {
	case "pong":
		k.alive = now
	case "connection_init":
		return nil, nil, CloseTooManyRequests, "Too many initialisation requests"
	case "subscribe", "start":
		switch {
		case m.ID == "":
			return nil, nil, CloseBadRequest, "Invalid message received: an operation needs an id"
		case k.ops[m.ID] != nil:
			return nil, nil, CloseSubscriberInUse, "Subscriber for " + truncate(m.ID, 64) + " already exists"
		case k.maxOps > 0 && len(k.ops) >= k.maxOps:
			go k.refuse(m.ID)
			return nil, nil, 0, ""
		}
		op = &operation{k: k, id: m.ID}
		op.ctx, op.cancel = context.WithCancel(k.ctx)
		k.ops[m.ID] = op
	}
	return m, op, 0, ""
}

// init authenticates the socket from its connection_init payload
// ({"Authorization": "Bearer <token>"} or {"token": "<token>"}) and
// acknowledges it. Without a token the socket is anonymous; a bad token
// closes it with 4403 and a generic reason.
func (k *socket) init(payload json.RawMessage) bool {
	var p transport.InitPayload
	if len(payload) > 0 {
		if err := json.Unmarshal(payload, &p); err != nil {
			k.connectionError("Invalid message received")
			k.closeWith(CloseBadRequest, "Invalid message received")
			return false
		}
	}
	token := bearer(p.Authorization())
	if token == "" {
		token = bearer(p.GetString("authorization"))
	}
	if token == "" {
		token = p.GetString("token")
	}
	if token != "" {
		s := k.srv
		v, err := s.opts.Accounts.Authenticate(k.ctx, s.opts.DB.Client, token)
		if err != nil {
			if err != account.ErrInvalidSession {
				s.opts.Log.ErrorContext(k.ctx, "websocket authentication failed", "error", err)
			}
			k.connectionError("unauthorized")
			k.closeWith(CloseForbidden, "terminated")
			return false
		}
		v.Socket = true
		if !k.authenticated(v) {
			k.connectionError("too many open sockets for this user")
			k.closeWith(CloseTooManyRequests, "Too many sockets")
			return false
		}
		// Operations start from this read loop, after this returns.
		k.ctx = auth.NewContext(k.ctx, v)
	}
	k.write(serverMsg("", "connection_ack"))
	if k.legacy {
		k.write(kaFrame)
	}
	k.mu.Lock()
	k.startKeepAliveLocked()
	k.mu.Unlock()
	return true
}

// connectionError tells a graphql-ws client why it is being closed
// (graphql-transport-ws says it in the close reason only).
func (k *socket) connectionError(message string) {
	if k.legacy {
		b, _ := json.Marshal(&gqlerror.Error{Message: message})
		k.write(serverMsg("", "connection_error", b))
	}
}

// refuse answers an operation over the concurrent cap with an error of its
// own (RATE_LIMITED).
func (k *socket) refuse(id string) {
	msg := fmt.Sprintf("too many operations on this socket: at most %d at once", k.maxOps)
	if k.legacy {
		b, _ := json.Marshal(map[string]any{"message": msg})
		k.write(serverMsg(id, "error", b))
		k.write(serverMsg(id, "complete"))
		return
	}
	b, _ := json.Marshal([]map[string]any{{"message": msg, "extensions": map[string]any{"code": "RATE_LIMITED"}}})
	k.write(serverMsg(id, "error", b))
}

// serverMsg encodes a message to the client; the payload's parts, joined,
// are JSON already.
func serverMsg(id, typ string, payload ...[]byte) []byte {
	n := len(id) + 40
	for _, p := range payload {
		n += len(p)
	}
	b := make([]byte, 0, n)
	b = append(b, `{"type":`...)
	b = strconv.AppendQuote(b, typ)
	if id != "" {
		b = append(b, `,"id":`...)
		b = appendJSONString(b, id)
	}
	if len(payload) > 0 {
		b = append(b, `,"payload":`...)
		for _, p := range payload {
			b = append(b, p...)
		}
	}
	return append(b, '}')
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // ids are the client's: JSON's escaping, not Go's
	return append(b, q...)
}

// write sends one message. coder/websocket's writes are safe for
// concurrent use; a write to a closed socket fails, which is ignored.
func (k *socket) write(frame []byte) {
	_ = k.conn.Write(context.Background(), websocket.MessageText, frame)
}

// sendResponse sends one result of an operation. A result that is only
// data (every event of a subscription) is framed around gqlgen's bytes
// without encoding them again.
func (k *socket) sendResponse(id string, r *graphql.Response) {
	typ := "next"
	if k.legacy {
		typ = "data"
	}
	if r.Errors == nil && r.Extensions == nil && r.Label == "" && r.Path == nil && r.HasNext == nil && len(r.Data) > 0 {
		k.write(serverMsg(id, typ, dataOpen, r.Data, dataClose))
		return
	}
	b, err := json.Marshal(r)
	if err != nil {
		k.srv.opts.Log.Error("websocket: encode response", "error", err)
		return
	}
	k.write(serverMsg(id, typ, b))
}

var dataOpen, dataClose = []byte(`{"data":`), []byte(`}`)

func (k *socket) sendError(id string, errs ...*gqlerror.Error) {
	b, _ := json.Marshal(errs)
	k.write(serverMsg(id, "error", b))
}

// closeWith closes the connection with a close code, once: later closes
// are dropped, so the first reason is the one the client sees.
func (k *socket) closeWith(code websocket.StatusCode, reason string) {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return
	}
	k.closed = true
	k.stopTimersLocked()
	k.mu.Unlock()
	k.cancel()
	// Close waits for the client's close frame (read by the read loop),
	// up to a few seconds: not on the caller's goroutine.
	go func() { _ = k.conn.Close(code, reason) }()
}

func (k *socket) stopTimersLocked() {
	if k.initTimer != nil {
		k.initTimer.Stop()
	}
	if k.pingTimer != nil {
		k.pingTimer.Stop()
	}
}

// Keep-alive frames, as gqlgen's transport would send them.
var (
	pingFrame = []byte(`{"type":"ping"}`) // graphql-transport-ws: the client answers pong
	kaFrame   = []byte(`{"type":"ka"}`)   // graphql-ws: one-way
)

// startKeepAliveLocked arms the keep-alive once the connection is
// acknowledged: a timer holds no goroutine while it waits, and each ping
// runs on a goroutine of its own only while it is written.
func (k *socket) startKeepAliveLocked() {
	if k.keepAlive <= 0 || k.pingTimer != nil || k.closed {
		return
	}
	k.alive = time.Now()
	k.pingTimer = time.AfterFunc(k.keepAlive, k.ping)
}

// ping sends one keep-alive. A graphql-transport-ws client that has not
// answered a ping for two intervals is dropped without a close frame: it
// is not reading.
func (k *socket) ping() {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return
	}
	if !k.legacy && time.Since(k.alive) > 2*k.keepAlive {
		k.closed = true
		k.mu.Unlock()
		k.cancel()
		_ = k.conn.CloseNow()
		return
	}
	// Armed before the write: a write stuck on a client that does not read
	// must not stop the check above from dropping it.
	k.pingTimer.Reset(k.keepAlive)
	if k.pinging {
		k.mu.Unlock()
		return
	}
	k.pinging = true
	k.mu.Unlock()
	frame := pingFrame
	if k.legacy {
		frame = kaFrame
	}
	k.write(frame)
	k.mu.Lock()
	k.pinging = false
	k.mu.Unlock()
}

// operation is one subscribe (or start) on a socket, until it completes.
type operation struct {
	k      *socket
	id     string
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	handler  graphql.ResponseHandler // a claimed subscription's, once dispatched
	hctx     context.Context
	pending  int  // announced results not yet taken from handler
	draining bool // a goroutine is taking them
	ended    bool
}

// run parses and dispatches the operation. A query or mutation, an
// operation refused before its resolver ran, and a subscription whose
// resolver does not claim its graph.Stream are run to the end here, as
// gqlgen's transport runs them; a claimed subscription is left to its
// announcements, and this goroutine ends.
func (op *operation) run(payload json.RawMessage) {
	k := op.k
	var rc *graphql.OperationContext
	defer func() {
		if r := recover(); r != nil {
			var gqlErr *gqlerror.Error
			if rc != nil {
				if err := rc.Recover(op.ctx, r); !errors.As(err, &gqlErr) {
					gqlErr = &gqlerror.Error{Message: fmt.Sprint(err)}
				}
			} else {
				gqlErr = &gqlerror.Error{Message: "internal system error"}
			}
			k.sendError(op.id, gqlErr)
			op.end(false)
		}
	}()
	start := graphql.Now()
	params := &graphql.RawParams{}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(params); err != nil {
		k.sendError(op.id, &gqlerror.Error{Message: "invalid json"})
		op.end(true)
		return
	}
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	ctx := graphql.StartOperationTrace(op.ctx)
	rc, err := k.exec.CreateOperationContext(ctx, params)
	if err != nil {
		resp := k.exec.DispatchError(graphql.WithOperationContext(ctx, rc), err)
		if errcode.GetErrorKind(err) == errcode.KindProtocol {
			k.sendError(op.id, resp.Errors...)
		} else {
			k.sendResponse(op.id, &graphql.Response{Errors: err})
		}
		op.end(true)
		return
	}
	stream := graph.NewStream(op.announced)
	ctx = graph.WithStream(graphql.WithOperationContext(ctx, rc), stream)
	responses, ctx := k.exec.DispatchOperation(ctx, rc)
	if !stream.Claimed() {
		for {
			r := responses(ctx)
			if r == nil {
				break
			}
			k.sendResponse(op.id, r)
		}
		op.end(true)
		return
	}
	op.mu.Lock()
	op.handler, op.hctx = responses, ctx
	drain := op.pending > 0 && !op.ended
	idleStopped := !drain && op.ctx.Err() != nil
	op.draining = drain
	op.mu.Unlock()
	switch {
	case drain:
		op.drain()
	case idleStopped:
		op.end(true)
	}
}

// announced is the operation's graph.Stream: a result is ready, or the
// stream ended.
func (op *operation) announced() {
	op.mu.Lock()
	op.pending++
	start := op.handler != nil && !op.draining && !op.ended
	if start {
		op.draining = true
	}
	op.mu.Unlock()
	if start {
		go op.drain()
	}
}

// drain takes the announced results from the handler and sends them, then
// returns; the end of the stream completes the operation.
func (op *operation) drain() {
	for {
		r := op.handler(op.hctx)
		if r == nil {
			op.end(true)
			return
		}
		op.k.sendResponse(op.id, r)
		op.mu.Lock()
		op.pending--
		if op.pending <= 0 || op.ended {
			op.draining = false
			op.mu.Unlock()
			return
		}
		op.mu.Unlock()
	}
}

// stop is the client's complete (or stop). A subscription waiting for its
// next event completes at once; a running one completes when its handler
// sees the cancellation.
func (op *operation) stop() {
	op.cancel()
	op.mu.Lock()
	idle := op.handler != nil && !op.draining
	op.mu.Unlock()
	if idle {
		op.end(true)
	}
}

// end completes the operation once: it is cancelled, forgotten by its
// socket, and (with complete) the client is told.
func (op *operation) end(complete bool) {
	op.mu.Lock()
	if op.ended {
		op.mu.Unlock()
		return
	}
	op.ended = true
	op.mu.Unlock()
	op.cancel()
	k := op.k
	k.mu.Lock()
	if k.ops[op.id] == op {
		delete(k.ops, op.id)
	}
	k.mu.Unlock()
	if complete {
		k.write(serverMsg(op.id, "complete"))
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

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
