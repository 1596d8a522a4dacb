// Package server assembles Admit's HTTP handler: GraphiQL at /, the GraphQL
// endpoint at /query with its transports and limits, and health checks.
// server.go (package main) and the tests build exactly the same handler.
package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/rs/cors"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"admit/graph"
	"admit/internal/account"
	"admit/internal/auth"
	"admit/internal/db"
	"admit/internal/eventlog"
	"admit/internal/hr"
	"admit/internal/importfile"
	"admit/internal/invite"
	"admit/internal/metrics"
	"admit/internal/pubsub"
	"admit/internal/rule"
	"admit/internal/telemetry"
	"admit/internal/workspace"
)

// Limits bound what one request may ask of the server.
type Limits struct {
	MaxBodyBytes    int64 // JSON POST bodies
	MaxUploadBytes  int64 // multipart bodies (file uploads)
	ComplexityLimit int
	DepthLimit      int
	ParserTokens    int
	MaxPageSize     int
	// MaxRootMutations caps the root fields of one mutation operation.
	MaxRootMutations int
	// MaxResponseBytes caps the data of one response.
	MaxResponseBytes int
	WSInitTimeout    time.Duration
	WSKeepAlive      time.Duration
	// WSMessageRate is the most messages a socket may send in a second;
	// more close it with 4429.
	WSMessageRate int
	// WSMaxOperations caps the operations running at once on one socket;
	// one more is answered with an error.
	WSMaxOperations int
	// WSMaxSocketsPerUser caps the authenticated sockets one user holds
	// open on one replica; one more is closed with 4429.
	WSMaxSocketsPerUser int
	// WSSessionCheck is how often a socket's session is re-checked (a
	// sign-out or deactivation is acted on at once, expiry within this).
	WSSessionCheck time.Duration
}

// DefaultLimits are the limits used unless configured otherwise.
var DefaultLimits = Limits{
	MaxBodyBytes:        1 << 20,
	MaxUploadBytes:      6 << 20,
	ComplexityLimit:     5000,
	DepthLimit:          12,
	ParserTokens:        15000,
	MaxPageSize:         100,
	MaxRootMutations:    20,
	MaxResponseBytes:    8 << 20,
	WSInitTimeout:       5 * time.Second,
	WSKeepAlive:         10 * time.Second,
	WSMessageRate:       50,
	WSMaxOperations:     50,
	WSMaxSocketsPerUser: 20,
	WSSessionCheck:      5 * time.Second,
}

// withDefaults fills every unset (zero) limit from DefaultLimits, so a
// caller that sets some limits, or predates a new one, never turns one off.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	or := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	or(&l.ComplexityLimit, d.ComplexityLimit)
	or(&l.DepthLimit, d.DepthLimit)
	or(&l.ParserTokens, d.ParserTokens)
	or(&l.MaxPageSize, d.MaxPageSize)
	or(&l.MaxRootMutations, d.MaxRootMutations)
	or(&l.MaxResponseBytes, d.MaxResponseBytes)
	or(&l.WSMessageRate, d.WSMessageRate)
	or(&l.WSMaxOperations, d.WSMaxOperations)
	or(&l.WSMaxSocketsPerUser, d.WSMaxSocketsPerUser)
	if l.MaxBodyBytes == 0 {
		l.MaxBodyBytes = d.MaxBodyBytes
	}
	if l.MaxUploadBytes == 0 {
		l.MaxUploadBytes = d.MaxUploadBytes
	}
	for _, p := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&l.WSInitTimeout, d.WSInitTimeout}, {&l.WSKeepAlive, d.WSKeepAlive}, {&l.WSSessionCheck, d.WSSessionCheck},
	} {
		if *p.v == 0 {
			*p.v = p.def
		}
	}
	return l
}

// Options configure the handler.
type Options struct {
	DB           *db.DB
	Accounts     *account.Service
	Invites      *invite.Service
	Broker       *pubsub.Broker
	ImportLimits importfile.Limits
	LinkLimits   invite.LinkLimits
	JoinURL      func(token string) string
	Workspaces   *workspace.Service
	Events       *eventlog.Log
	// WorkspaceLinkURL turns a workspace link token into its URL.
	WorkspaceLinkURL func(token string) string
	// Metrics, when set, counts requests and operations (nil: off).
	Metrics *metrics.Metrics
	// Tracing gives every operation an OpenTelemetry span and continues
	// the caller's traceparent (telemetry.Setup installs the exporter).
	Tracing        bool
	Log            *slog.Logger
	Limits         Limits
	AllowedOrigins []string // exact origins, such as https://app.example.com
	Introspection  bool
	HR             *hr.Service
}

// Server is Admit's HTTP handler. Shutdown closes live websockets.
type Server struct {
	http.Handler
	base   context.Context
	cancel context.CancelFunc
	opts   Options
	once   sync.Once

	socketsMu   sync.Mutex
	userSockets map[int]map[*socket]struct{} // open authenticated sockets per user ID
	stopWatch   func()
}

// ValidateOrigins checks CORS_ALLOWED_ORIGINS entries: each must be an
// exact origin (scheme://host[:port]) with no path and no wildcard.
func ValidateOrigins(origins []string) error {
	for _, o := range origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.Path != "" || u.RawQuery != "" || u.User != nil || strings.ContainsAny(o, "*?[]\\") {
			return fmt.Errorf("CORS_ALLOWED_ORIGINS: %q is not an exact origin such as https://app.example.com", o)
		}
	}
	return nil
}

// New builds the handler.
func New(o Options) (*Server, error) {
	if err := ValidateOrigins(o.AllowedOrigins); err != nil {
		return nil, err
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	o.Limits = o.Limits.withDefaults()
	s := &Server{opts: o}
	// Every request, websockets included, derives from base; cancelling it
	// at shutdown sends each open socket a close frame.
	s.base, s.cancel = context.WithCancel(context.Background())
	s.stopWatch = func() {}
	if o.Broker != nil {
		s.stopWatch = o.Broker.Watch(account.SessionTopic, s.sessionsEnded)
	}
	if o.Limits.WSSessionCheck > 0 {
		go s.watchSessions()
	}

	gql := s.graphQL()
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", graphiqlHandler())
	mux.Handle("GET /graphiql/", graphiqlHandler())
	mux.Handle("/query", s.withAuth(guardSimpleRequests(s.limitBody(codeTransportErrors(gql)))))
	mux.Handle("GET /invitations/accept", acceptPage("accept.html", "text/html; charset=utf-8"))
	mux.Handle("GET /invitations/accept.js", acceptPage("accept.js", "text/javascript; charset=utf-8"))
	mux.Handle("GET /invitations/accept.css", acceptPage("accept.css", "text/css; charset=utf-8"))
	mux.Handle("GET /page.js", acceptPage("page.js", "text/javascript; charset=utf-8"))
	mux.Handle("GET /join", acceptPage("join.html", "text/html; charset=utf-8"))
	mux.Handle("GET /join.js", acceptPage("join.js", "text/javascript; charset=utf-8"))
	mux.Handle("GET /reset-password", acceptPage("reset-password.html", "text/html; charset=utf-8"))
	mux.Handle("GET /reset-password.js", acceptPage("reset-password.js", "text/javascript; charset=utf-8"))
	mux.Handle("GET /workspaces/join", acceptPage("workspace-join.html", "text/html; charset=utf-8"))
	mux.Handle("GET /workspaces/join.js", acceptPage("workspace-join.js", "text/javascript; charset=utf-8"))
	mux.Handle("GET /workspaces/request", acceptPage("workspace-request.html", "text/html; charset=utf-8"))
	mux.Handle("GET /workspaces/request.js", acceptPage("workspace-request.js", "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := o.DB.Ping(ctx); err != nil {
			o.Log.Warn("readiness check failed", "error", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.Handler = cors.New(cors.Options{
		// An explicit function, because rs/cors reads an empty list as
		// "allow every origin"; ours means "allow none".
		AllowOriginFunc: func(origin string) bool {
			return slices.ContainsFunc(o.AllowedOrigins, func(a string) bool { return strings.EqualFold(a, origin) })
		},
		AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodOptions},
		AllowedHeaders: []string{"Authorization", "Content-Type", "Apollo-Require-Preflight", "GraphQL-Require-Preflight"},
		MaxAge:         600,
		// Bearer tokens, not cookies: credentials are never needed.
		AllowCredentials: false,
	}).Handler(o.Metrics.HTTP(mux))
	if o.Tracing {
		s.Handler = telemetry.HTTP(s.Handler)
	}
	return s, nil
}

// BaseContext is for http.Server.BaseContext.
func (s *Server) BaseContext() context.Context { return s.base }

// CloseSockets cancels every request context, closing open websockets
// with a close frame. Call it when shutdown starts.
func (s *Server) CloseSockets() {
	s.once.Do(func() {
		s.stopWatch()
		s.cancel()
	})
}

func (s *Server) graphQL() http.Handler {
	o := s.opts
	es := graph.NewSchema(graph.Deps{
		Client:           o.DB.Client,
		Dialect:          o.DB.Dialect,
		Accounts:         o.Accounts,
		Invites:          o.Invites,
		Broker:           o.Broker,
		ImportLimits:     o.ImportLimits,
		LinkLimits:       o.LinkLimits,
		JoinURL:          o.JoinURL,
		Workspaces:       o.Workspaces,
		Events:           o.Events,
		WorkspaceLinkURL: o.WorkspaceLinkURL,
		Log:              o.Log,
		MaxPageSize:      o.Limits.MaxPageSize,
		HR:               o.HR,
	})
	srv := handler.New(es)
	srv.AddTransport(websocketTransport{srv: s, accept: websocket.AcceptOptions{
		// Exact scheme://host patterns; same-host pages (GraphiQL) are
		// always allowed, other origins only when listed.
		OriginPatterns: o.AllowedOrigins,
	}})
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.AddTransport(transport.MultipartForm{
		MaxUploadSize: o.Limits.MaxUploadBytes,
		MaxMemory:     1 << 20,
	})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.SetParserTokenLimit(o.Limits.ParserTokens)
	if o.Introspection {
		srv.Use(extension.Introspection{})
	} else {
		srv.SetDisableSuggestion(true)
	}
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](100)})
	srv.Use(extension.FixedComplexityLimit(o.Limits.ComplexityLimit))
	srv.Use(graph.DepthLimit{Max: o.Limits.DepthLimit})
	if o.Tracing {
		srv.Use(telemetry.Extension{})
	}
	if o.Metrics != nil {
		srv.Use(o.Metrics.Extension())
	}
	srv.Use(graph.OperationLimits{MaxRootMutations: o.Limits.MaxRootMutations, Once: graph.OnceFields})
	srv.Use(graph.SignInThrottle{Client: o.DB.Client, Accounts: o.Accounts, Log: o.Log})
	srv.Use(graph.IntrospectionLimit{MaxTypeFields: 10})
	srv.Use(graph.Transactioner{Client: o.DB.Client, Log: o.Log})
	// Inside the Transactioner (the first extension added is the outermost),
	// so a mutation whose response is refused is rolled back.
	srv.Use(graph.ResponseSizeLimit{Max: o.Limits.MaxResponseBytes})
	// Innermost: the extensions above still see every subscription response.
	srv.Use(graph.SharedFrames{})
	srv.AroundOperations(s.revalidateSocketSession)
	srv.AroundFields(graph.PageSize(o.Limits.MaxPageSize))
	srv.SetErrorPresenter(graph.ErrorPresenter(o.Log))
	srv.SetRecoverFunc(graph.RecoverFunc(o.Log))
	return srv
}

// revalidateSocketSession reloads, before each operation on a websocket,
// the viewer the socket authenticated as, and runs the operation as the
// user is now: signing out, expiry or deactivation refuse it, and a
// demotion or promotion since the socket opened applies to it.
func (s *Server) revalidateSocketSession(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	v := auth.FromContext(ctx)
	if v == nil || !v.Socket {
		return next(ctx)
	}
	cur, err := s.opts.Accounts.Current(ctx, s.opts.DB.Client, v)
	if err != nil && ctx.Err() != nil {
		// The client stopped the operation (or the socket closed) while
		// it was being checked: nothing to answer.
		return func(context.Context) *graphql.Response { return nil }
	}
	if err != nil {
		if err != account.ErrInvalidSession {
			s.opts.Log.ErrorContext(ctx, "websocket session check failed", "error", err)
		}
		return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{{
			Message:    rule.ErrUnauthenticated.Message,
			Extensions: map[string]any{"code": rule.ErrUnauthenticated.Code},
		}}})
	}
	return next(auth.NewContext(ctx, cur))
}

// withAuth puts the viewer of a valid bearer token in the request context.
// A missing, unknown or expired token leaves the request anonymous, and
// protected fields then answer UNAUTHENTICATED.
func (s *Server) withAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The peer address, not X-Forwarded-For: a header any client can
		// set must not choose its own rate-limit bucket.
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			r = r.WithContext(auth.WithClientIP(r.Context(), host))
		}
		token := bearer(r.Header.Get("Authorization"))
		if token != "" {
			v, err := s.opts.Accounts.Authenticate(r.Context(), s.opts.DB.Client, token)
			switch {
			case err == nil:
				r = r.WithContext(auth.NewContext(r.Context(), v))
			case err != account.ErrInvalidSession:
				s.opts.Log.ErrorContext(r.Context(), "authentication failed", "error", err)
				writeGraphQLError(w, http.StatusInternalServerError, "INTERNAL", "internal server error")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func bearer(h string) string {
	h = strings.TrimSpace(h)
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// limitBody caps request bodies before gqlgen reads them: JSON bodies at
// MaxBodyBytes, multipart uploads at MaxUploadBytes.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := s.opts.Limits.MaxBodyBytes
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt == "multipart/form-data" {
			limit = s.opts.Limits.MaxUploadBytes
		}
		if r.ContentLength > limit {
			writeGraphQLError(w, http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE",
				fmt.Sprintf("request body exceeds the limit of %d bytes", limit))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		if mt != "multipart/form-data" && r.Method == http.MethodPost {
			// Read JSON bodies here, so one sent without Content-Length
			// gets the same 413 as one that announces its size.
			b, err := io.ReadAll(r.Body)
			if err != nil {
				writeGraphQLError(w, http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE",
					fmt.Sprintf("request body exceeds the limit of %d bytes", limit))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		next.ServeHTTP(w, r)
	})
}

// guardSimpleRequests refuses POSTs a browser could send cross-site without
// a CORS preflight: form-encoded and text/plain bodies, and multipart
// bodies without a preflight-forcing header. JSON POSTs always preflight
// cross-site, so CORS decides those.
func guardSimpleRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		switch {
		case err == nil && (mt == "application/json" || mt == "application/graphql-response+json"):
		case err == nil && mt == "multipart/form-data":
			if r.Header.Get("Apollo-Require-Preflight") == "" && r.Header.Get("GraphQL-Require-Preflight") == "" {
				writeGraphQLError(w, http.StatusBadRequest, "CSRF_PREVENTED",
					"multipart requests must send a non-empty Apollo-Require-Preflight or GraphQL-Require-Preflight header")
				return
			}
		default:
			writeGraphQLError(w, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE",
				"POST requests must be application/json, or multipart/form-data with a preflight header")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// codeTransportErrors gives an extensions.code to the errors gqlgen's
// transports write themselves, past the error presenter: a mutation over
// GET, a malformed multipart request. They are refusals of the request
// (4xx), so the code follows from the status.
func codeTransportErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" { // websockets hijack the writer
			next.ServeHTTP(w, r)
			return
		}
		cw := &codingWriter{ResponseWriter: w}
		next.ServeHTTP(cw, r)
		cw.finish()
	})
}

// codingWriter holds back an error response (status 400 or more) until
// its errors have codes; any other response passes straight through.
type codingWriter struct {
	http.ResponseWriter
	status int
	buf    *bytes.Buffer
}

func (c *codingWriter) WriteHeader(status int) {
	if status >= 400 && c.buf == nil {
		c.status, c.buf = status, &bytes.Buffer{}
		return
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *codingWriter) Write(b []byte) (int, error) {
	if c.buf != nil {
		return c.buf.Write(b)
	}
	return c.ResponseWriter.Write(b)
}

func (c *codingWriter) finish() {
	if c.buf == nil {
		return
	}
	body := c.buf.Bytes()
	var rsp map[string]any
	if json.Unmarshal(body, &rsp) == nil {
		if errs, ok := rsp["errors"].([]any); ok {
			for _, e := range errs {
				m, ok := e.(map[string]any)
				if !ok {
					continue
				}
				ext, _ := m["extensions"].(map[string]any)
				if ext == nil {
					ext = map[string]any{}
					m["extensions"] = ext
				}
				if ext["code"] == nil {
					ext["code"] = statusCode(c.status)
				}
			}
			if b, err := json.Marshal(rsp); err == nil {
				body = b
			}
		}
	}
	c.ResponseWriter.Header().Del("Content-Length")
	c.ResponseWriter.WriteHeader(c.status)
	_, _ = c.ResponseWriter.Write(body)
}

// statusCode is the extensions.code of a transport's refusal.
func statusCode(status int) string {
	switch status {
	case http.StatusMethodNotAllowed, http.StatusNotAcceptable:
		return "METHOD_NOT_ALLOWED" // a mutation over GET
	case http.StatusRequestEntityTooLarge:
		return "REQUEST_TOO_LARGE"
	case http.StatusUnsupportedMediaType:
		return "UNSUPPORTED_MEDIA_TYPE"
	}
	if status >= 500 {
		return "INTERNAL"
	}
	return "BAD_REQUEST"
}

func writeGraphQLError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{
		"errors": []map[string]any{{"message": msg, "extensions": map[string]string{"code": code}}},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
