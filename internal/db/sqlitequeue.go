package db

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"admit/internal/apperr"
)

// SQLite lets one transaction write at a time. Admit begins every
// transaction IMMEDIATE, so the others wait in SQLite's busy handler, which
// polls with sleeps of up to 100 ms and lets a newcomer overtake a caller
// that has waited longest. With 16 concurrent writers that gave a p99 of
// 0.3 s and stragglers near 2 s. Here transactions queue in Go instead: a
// waiting BEGIN is woken the moment the previous transaction ends.
//
// Writes outside transactions (the outbox worker's row updates, a sign-in's
// new session) take a turn too, or a steady stream of transactions handing
// the turn to each other would starve them; plain SELECTs never wait.

// DefaultSQLiteWriteWait bounds the wait for the queue, like busy_timeout
// bounds SQLite's own wait. DB.SetSQLiteWriteWait changes it.
const DefaultSQLiteWriteWait = 10 * time.Second

// BusyError is what a writer that waited too long for the database gets:
// nothing was written, and the same request may well succeed when retried.
// The error presenter shows it as DATABASE_BUSY.
type BusyError struct{ Waited time.Duration }

func (e *BusyError) Error() string {
	return fmt.Sprintf("the database is busy: waited %v for another write to finish; retry the request", e.Waited)
}

// ErrorCode returns the code for `extensions.code`.
func (e *BusyError) ErrorCode() string { return apperr.Busy }

// IsBusy reports whether err is a writer that gave up waiting: the queue's
// BusyError, or SQLite's own SQLITE_BUSY (another process held the file
// longer than busy_timeout).
func IsBusy(err error) bool {
	var be *BusyError
	if errors.As(err, &be) {
		return true
	}
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// sqliteConnector opens modernc connections whose writers share one queue
// per db.Open. (Another process, or another Open of the same file, still
// meets them in SQLite's busy handler.)
type sqliteConnector struct {
	dsn   string
	drv   *sqlite.Driver
	queue *writeQueue   // the right to write, one holder at a time
	wait  *atomic.Int64 // how long a writer waits for the turn (ns)
}

func newSQLiteConnector(dsn string) *sqliteConnector {
	c := &sqliteConnector{dsn: dsn, drv: &sqlite.Driver{}, queue: &writeQueue{}, wait: new(atomic.Int64)}
	c.wait.Store(int64(DefaultSQLiteWriteWait))
	return c
}

func (c *sqliteConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	sc, ok := conn.(sqliteConn)
	if !ok { // not modernc as we know it: no queue
		return conn, nil
	}
	return &queuedConn{sqliteConn: sc, queue: c.queue, wait: c.wait}, nil
}

func (c *sqliteConnector) Driver() driver.Driver { return c.drv }

// sqliteConn is the part of modernc's connection that database/sql uses.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.QueryerContext
	driver.ExecerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

type queuedConn struct {
	sqliteConn
	queue *writeQueue
	wait  *atomic.Int64
	inTx  bool // this connection holds the turn for a transaction
}

// take waits for the turn, as long as ctx and the write wait allow.
func (c *queuedConn) take(ctx context.Context) error {
	return c.queue.take(ctx, ctx.Value(priorityKey{}) != nil, time.Duration(c.wait.Load()))
}

func (c *queuedConn) give() { c.queue.give() }

type priorityKey struct{}

// WithPriority marks ctx's SQLite writes as background work that must keep
// its share under load (the outbox): when the turn passes, a priority
// writer waiting gets every other turn, however many requests wait. It
// changes nothing on PostgreSQL.
func WithPriority(ctx context.Context) context.Context {
	return context.WithValue(ctx, priorityKey{}, true)
}

// writeQueue hands the one right to write to waiting writers in order of
// arrival, except that priority writers (WithPriority) get at least every
// other turn: with 64 requests waiting, the outbox still writes half the
// time it asks to, instead of one turn in 65.
type writeQueue struct {
	mu           sync.Mutex
	held         bool
	normal, prio []chan struct{}
	lastPrio     bool // the last turn handed over went to a priority writer
}

func (q *writeQueue) take(ctx context.Context, prio bool, wait time.Duration) error {
	q.mu.Lock()
	if !q.held {
		q.held = true
		q.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	if prio {
		q.prio = append(q.prio, ch)
	} else {
		q.normal = append(q.normal, ch)
	}
	q.mu.Unlock()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var err error
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = &BusyError{Waited: wait}
	}
	q.mu.Lock()
	if q.remove(ch) {
		q.mu.Unlock()
		return err
	}
	q.mu.Unlock()
	// The turn was handed over as the wait ended: pass it on.
	<-ch
	q.give()
	return err
}

// remove takes a waiter out of its list; false when it was already handed
// the turn.
func (q *writeQueue) remove(ch chan struct{}) bool {
	for _, l := range []*[]chan struct{}{&q.normal, &q.prio} {
		if i := slices.Index(*l, ch); i >= 0 {
			*l = slices.Delete(*l, i, i+1)
			return true
		}
	}
	return false
}

func (q *writeQueue) give() {
	q.mu.Lock()
	defer q.mu.Unlock()
	var next chan struct{}
	switch {
	case len(q.prio) > 0 && (!q.lastPrio || len(q.normal) == 0):
		next, q.prio, q.lastPrio = q.prio[0], q.prio[1:], true
	case len(q.normal) > 0:
		next, q.normal, q.lastPrio = q.normal[0], q.normal[1:], false
	default:
		q.held = false
		return
	}
	close(next) // the turn passes straight on: held stays true
}

// mayWrite reports whether a statement outside a transaction needs the
// turn: anything but a read. (A transaction's statements run under the
// turn its BEGIN took.)
func (c *queuedConn) mayWrite(query string) bool {
	if c.inTx {
		return false
	}
	q := strings.TrimLeft(query, " \t\r\n(")
	return len(q) < 6 || !strings.EqualFold(q[:6], "select")
}

func (c *queuedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if !c.mayWrite(query) {
		return c.sqliteConn.ExecContext(ctx, query, args)
	}
	if err := c.take(ctx); err != nil {
		return nil, err
	}
	defer c.give()
	return c.sqliteConn.ExecContext(ctx, query, args)
}

// QueryContext serves INSERT/UPDATE … RETURNING too, whose write lasts
// until the rows are closed, so the turn is given back then.
func (c *queuedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if !c.mayWrite(query) {
		return c.sqliteConn.QueryContext(ctx, query, args)
	}
	if err := c.take(ctx); err != nil {
		return nil, err
	}
	rows, err := c.sqliteConn.QueryContext(ctx, query, args)
	if err != nil {
		c.give()
		return nil, err
	}
	r, ok := rows.(sqliteRows)
	if !ok {
		rows.Close()
		c.give()
		return nil, fmt.Errorf("db: unexpected rows type %T", rows)
	}
	return &queuedRows{sqliteRows: r, give: sync.OnceFunc(c.give)}, nil
}

// sqliteRows is what modernc's rows offer database/sql.
type sqliteRows interface {
	driver.Rows
	driver.RowsColumnTypeDatabaseTypeName
	driver.RowsColumnTypeLength
	driver.RowsColumnTypeNullable
	driver.RowsColumnTypePrecisionScale
	driver.RowsColumnTypeScanType
}

type queuedRows struct {
	sqliteRows
	give func()
}

func (r *queuedRows) Close() error {
	defer r.give()
	return r.sqliteRows.Close()
}

func (c *queuedConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *queuedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if err := c.take(ctx); err != nil {
		return nil, err
	}
	tx, err := c.sqliteConn.BeginTx(ctx, opts)
	if err != nil {
		c.give()
		return nil, err
	}
	c.inTx = true
	return &queuedTx{Tx: tx, done: sync.OnceFunc(func() {
		c.inTx = false
		c.give()
	})}, nil
}

// queuedTx gives the turn back when it ends, once, however it ends.
type queuedTx struct {
	driver.Tx
	done func()
}

func (t *queuedTx) Commit() error {
	defer t.done()
	return t.Tx.Commit()
}

func (t *queuedTx) Rollback() error {
	defer t.done()
	return t.Tx.Rollback()
}
