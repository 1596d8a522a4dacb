// Package graph is Admit's GraphQL layer: gqlgen's generated runtime plus
// thin resolvers. Authorization is not decided here but in the ent privacy
// rules (internal/rule); resolvers validate input and call ent.
package graph

import (
	"context"
	"log/slog"

	"entgo.io/ent/dialect"
	"github.com/99designs/gqlgen/graphql"

	"admit/ent"
	"admit/internal/account"
	"admit/internal/eventlog"
	"admit/internal/hr"
	"admit/internal/importfile"
	"admit/internal/invite"
	"admit/internal/pubsub"
	"admit/internal/workspace"
)

// Resolver is the root resolver. Its dependencies are set once at start;
// resolvers read nothing global.
type Resolver struct {
	client      *ent.Client
	dialect     string
	accounts    *account.Service
	invites     *invite.Service
	broker      *pubsub.Broker
	importLimit importfile.Limits
	linkLimits  invite.LinkLimits
	joinURL     func(token string) string
	workspaces  *workspace.Service
	events      *eventlog.Log
	wsLinkURL   func(token string) string
	memo        *eventMemo
	log         *slog.Logger
	hr          *hr.Service
	maxPage     int
}

// Deps are the services resolvers use.
type Deps struct {
	Client   *ent.Client
	Dialect  string
	Accounts *account.Service
	Invites  *invite.Service
	Broker   *pubsub.Broker
	// ImportLimits bound uploaded invitation files.
	ImportLimits importfile.Limits
	// LinkLimits rate-limit joining through invite links.
	LinkLimits invite.LinkLimits
	// JoinURL turns a link token into the URL admins share.
	JoinURL func(token string) string
	// Workspaces runs the workspace paths; Events streams their events.
	Workspaces *workspace.Service
	Events     *eventlog.Log
	// WorkspaceLinkURL turns a workspace link token into its URL.
	WorkspaceLinkURL func(token string) string
	Log              *slog.Logger
	// MaxPageSize caps `first`/`last` and weighs connections in the
	// complexity limit.
	MaxPageSize int
	// HR runs HR connections; nil leaves the HR fields unavailable.
	HR *hr.Service
}

// NewSchema returns the executable schema.
func NewSchema(d Deps) graphql.ExecutableSchema {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	es := NewExecutableSchema(Config{Resolvers: &Resolver{
		client:      d.Client,
		dialect:     d.Dialect,
		accounts:    d.Accounts,
		invites:     d.Invites,
		broker:      d.Broker,
		importLimit: d.ImportLimits,
		linkLimits:  d.LinkLimits,
		joinURL:     d.JoinURL,
		workspaces:  d.Workspaces,
		events:      d.Events,
		wsLinkURL:   d.WorkspaceLinkURL,
		memo:        &eventMemo{},
		log:         d.Log,
		hr:          d.HR,
		maxPage:     max(d.MaxPageSize, 1),
	}})
	return pagedSchema{ExecutableSchema: es, maxPage: d.MaxPageSize}
}

// db returns the mutation's transactional client, or the plain client for
// queries (which run outside a transaction so SQLite readers never take the
// write lock).
func (r *Resolver) db(ctx context.Context) *ent.Client {
	if c := ent.FromContext(ctx); c != nil {
		return c
	}
	return r.client
}

// forUpdate locks the rows a query reads until the transaction ends, on
// PostgreSQL. SQLite needs no lock: its write transactions are serialized by
// BEGIN IMMEDIATE.
func (r *Resolver) postgres() bool { return r.dialect == dialect.Postgres }

func ptr[T any](v T) *T { return &v }
