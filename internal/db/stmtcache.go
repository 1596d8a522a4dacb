package db

import (
	"container/list"
	"context"
	"database/sql/driver"
	"errors"
	"strings"

	"github.com/lib/pq"
)

// A per-connection prepared-statement cache for lib/pq.
//
// lib/pq runs a statement with arguments as an unnamed prepare: Parse,
// Describe, Sync, wait; then Bind, Execute, Sync, wait. That is two round
// trips, and PostgreSQL parses and plans the text every time. The hot request
// path repeats a handful of short statements, so each connection here keeps
// them as named statements: the first use prepares (one round trip, as
// before), every later use is a single Bind/Execute/Sync round trip, and
// PostgreSQL keeps the parse tree and may reuse a generic plan.
//
// database/sql never uses a driver connection from two goroutines at once,
// so the cache needs no lock.

const (
	defaultStatementCacheSize = 256
	// Longer statements are bulk inserts and the like, which rarely repeat
	// and would pin large plans in the server.
	maxCachedQueryLen  = 4 << 10
	maxCachedQueryArgs = 256
)

// errRowsOpen is lib/pq's own refusal of a second query while a first one's
// rows are still arriving, made to hold everywhere: lib/pq's check works
// only for statements without arguments (its flag is cleared by the
// ReadyForQuery ending the Parse round trip, and a prepared statement's Bind
// never looks at it), so otherwise the two interleave and break the
// connection ("unexpected Parse response").
var errRowsOpen = errors.New("db: there is already a query being processed on this connection (close the rows first)")

// The parts of lib/pq's connection, statement and rows that database/sql
// uses, so the wrapper can delegate to them and offer the same interfaces.
type (
	pqConn interface {
		driver.Conn
		driver.ConnBeginTx
		driver.ConnPrepareContext
		driver.QueryerContext
		driver.ExecerContext
		driver.NamedValueChecker // lib/pq turns Go slices into arrays here
		driver.Pinger
		driver.SessionResetter
		driver.Validator
	}
	pqStmt interface {
		driver.Stmt
		driver.StmtQueryContext
		driver.StmtExecContext
	}
	pqRows interface {
		driver.Rows
		driver.RowsNextResultSet
		driver.RowsColumnTypeScanType
		driver.RowsColumnTypeDatabaseTypeName
		driver.RowsColumnTypeLength
		driver.RowsColumnTypePrecisionScale
	}
)

// stmtCacheConnector opens lib/pq connections that cache statements.
type stmtCacheConnector struct {
	inner driver.Connector
	size  int
}

// newStmtCacheConnector wraps c; size 0 returns c itself (no caching).
func newStmtCacheConnector(c *pq.Connector, size int) driver.Connector {
	if size <= 0 {
		return c
	}
	return &stmtCacheConnector{inner: c, size: size}
}

func (c *stmtCacheConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	pc, ok := dc.(pqConn)
	if !ok { // not lib/pq as we know it: run it uncached
		return dc, nil
	}
	return &stmtCacheConn{pqConn: pc, size: c.size, lru: list.New(), stmts: map[string]*list.Element{}}, nil
}

func (c *stmtCacheConnector) Driver() driver.Driver { return c.inner.Driver() }

// stmtCacheConn is a lib/pq connection whose QueryContext and ExecContext go
// through cached named statements. Everything else is lib/pq's.
type stmtCacheConn struct {
	pqConn
	size     int
	lru      *list.List               // of *cachedStmt, most recently used first
	stmts    map[string]*list.Element // by query text
	rowsOpen bool                     // rows returned by QueryContext not yet closed
}

type cachedStmt struct {
	query string
	stmt  pqStmt
}

// cacheable leaves to lib/pq what a named statement would not help: no
// arguments (lib/pq's simple query protocol, one round trip already), bulk
// statements, and COPY, which lib/pq's Prepare starts rather than prepares.
func cacheable(query string, args []driver.NamedValue) bool {
	if len(args) == 0 || len(args) > maxCachedQueryArgs || len(query) > maxCachedQueryLen {
		return false
	}
	q := strings.TrimLeft(query, " \t\r\n")
	return len(q) < 4 || !strings.EqualFold(q[:4], "copy")
}

func (c *stmtCacheConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if c.rowsOpen {
		return nil, errRowsOpen
	}
	var rows driver.Rows
	if !cacheable(query, args) {
		var err error
		if rows, err = c.pqConn.QueryContext(ctx, query, args); err != nil {
			return nil, err
		}
	} else {
		st, err := c.prepared(ctx, query)
		if err != nil {
			return nil, err
		}
		if rows, err = st.QueryContext(ctx, args); err != nil {
			c.dropAfter(err, query)
			return nil, err
		}
	}
	if r, ok := rows.(pqRows); ok {
		c.rowsOpen = true
		return &trackedRows{pqRows: r, c: c}, nil
	}
	return rows, nil
}

func (c *stmtCacheConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if c.rowsOpen {
		return nil, errRowsOpen
	}
	if !cacheable(query, args) {
		return c.pqConn.ExecContext(ctx, query, args)
	}
	st, err := c.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	res, err := st.ExecContext(ctx, args)
	if err != nil {
		c.dropAfter(err, query)
	}
	return res, err
}

// prepared returns the cached statement for query, preparing it (and
// closing the least recently used one if the cache is full) if need be.
func (c *stmtCacheConn) prepared(ctx context.Context, query string) (pqStmt, error) {
	if e, ok := c.stmts[query]; ok {
		c.lru.MoveToFront(e)
		return e.Value.(*cachedStmt).stmt, nil
	}
	ds, err := c.pqConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	st, ok := ds.(pqStmt)
	if !ok {
		_ = ds.Close()
		return nil, errors.New("db: lib/pq returned a statement without context support")
	}
	for c.lru.Len() >= c.size {
		c.remove(c.lru.Back())
	}
	c.stmts[query] = c.lru.PushFront(&cachedStmt{query: query, stmt: st})
	return st, nil
}

// dropAfter forgets query's statement when the server says the statement
// itself is stale: after a schema change PostgreSQL answers "cached plan
// must not change result type" (0A000) until it is prepared again, and
// 26000 means the server no longer knows the name. Other errors (a unique
// violation, say) leave the statement good, and dropping it would cost a
// close and a prepare for nothing. It is not retried here: the transaction
// it ran in may be aborted.
func (c *stmtCacheConn) dropAfter(err error, query string) {
	var pqErr *pq.Error
	if !errors.As(err, &pqErr) || (pqErr.Code != "0A000" && pqErr.Code != "26000") {
		return
	}
	if e, ok := c.stmts[query]; ok {
		c.remove(e)
	}
}

// remove closes a statement on the server (Close, Sync: one round trip; the
// connection is idle, as nothing else runs on it while we are called) and
// forgets it. A failed close breaks at most this connection, which lib/pq
// then reports as bad.
func (c *stmtCacheConn) remove(e *list.Element) {
	cs := c.lru.Remove(e).(*cachedStmt)
	delete(c.stmts, cs.query)
	_ = cs.stmt.Close()
}

// Close closes the connection. It does not close the cached statements one
// by one first: ending the session frees them all on the server, and closing
// each would cost a round trip.
func (c *stmtCacheConn) Close() error {
	c.lru.Init()
	clear(c.stmts)
	return c.pqConn.Close()
}

// trackedRows notes when the rows are closed, so the connection can accept
// the next query.
type trackedRows struct {
	pqRows
	c *stmtCacheConn
}

func (r *trackedRows) Close() error {
	r.c.rowsOpen = false
	return r.pqRows.Close()
}
