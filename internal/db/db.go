// Package db opens the database named by DATABASE_URL: the embedded SQLite
// file by default (pure Go, nothing to install) or PostgreSQL through lib/pq,
// and migrates it.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"entgo.io/ent/schema/field"
	"github.com/lib/pq"

	"admit/ent"
	"admit/ent/migrate"
)

// DB is an open database with its ent client.
type DB struct {
	Client  *ent.Client
	SQL     *sql.DB
	Dialect string // dialect.SQLite or dialect.Postgres
	// URL is as configured, less Admit's own statement_cache_size
	// parameter, so lib/pq accepts it. It holds credentials: never log it.
	URL string
	// SQLitePath is the database file for SQLite, "" otherwise.
	SQLitePath string

	sqlite *sqliteConnector
	raw    string // the URL given to Open, for OutboxClient
}

// SetSQLiteWriteWait sets how long a SQLite writer waits for the one
// before it (DefaultSQLiteWriteWait) before it fails with a BusyError. It
// does nothing on PostgreSQL.
func (d *DB) SetSQLiteWriteWait(wait time.Duration) {
	if d.sqlite != nil {
		d.sqlite.wait.Store(int64(wait))
	}
}

// IsPostgres reports whether url selects PostgreSQL.
func IsPostgres(url string) bool {
	return strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")
}

// SQLiteDSN turns a path or file: URL into a modernc DSN with the settings
// Admit relies on: foreign keys on, WAL, and write transactions that take the
// lock up front (BEGIN IMMEDIATE) and wait up to 10 s for it instead of
// failing with "database is locked".
func SQLiteDSN(path string) (dsn, file string) {
	path = strings.TrimPrefix(path, "sqlite://")
	path = strings.TrimPrefix(path, "sqlite:")
	q := url.Values{}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		q, _ = url.ParseQuery(path[i+1:])
		path = path[:i]
	}
	file = strings.TrimPrefix(path, "file:")
	for _, p := range []string{"foreign_keys(1)", "busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	// Times in one format, in UTC ("2006-01-02 15:04:05.999999999+00:00"),
	// which sorts as it reads. modernc's default is time.Time.String, with
	// the zone's name and the monotonic clock's "m=+157.85" suffix.
	if q.Get("_time_format") == "" {
		q.Set("_time_format", "sqlite")
	}
	if q.Get("_timezone") == "" {
		q.Set("_timezone", "UTC")
	}
	if q.Get("_txlock") == "" {
		q.Set("_txlock", "immediate")
	}
	dsn = "file:" + file + "?" + q.Encode()
	if q.Get("mode") == "memory" {
		file = "" // nothing on disk: no secret file beside it either
	}
	return dsn, file
}

// Open connects to url and returns the client. It does not migrate.
//
// On PostgreSQL each connection caches up to 256 prepared statements (see
// stmtcache.go); the URL parameter statement_cache_size sets another size,
// and 0 turns the cache off (for PgBouncer in transaction pooling mode,
// where a statement prepared on one server connection is unknown on the
// next).
func Open(rawURL string) (*DB, error) {
	d := &DB{URL: rawURL, raw: rawURL}
	var sdb *sql.DB
	if IsPostgres(rawURL) {
		d.Dialect = dialect.Postgres
		dsn, size, err := statementCacheSize(rawURL)
		if err != nil {
			return nil, fmt.Errorf("db.Open: %w", err)
		}
		d.URL = dsn
		c, err := pq.NewConnector(dsn)
		if err != nil {
			return nil, fmt.Errorf("db.Open: %w", err)
		}
		sdb = sql.OpenDB(newStmtCacheConnector(c, size))
		sdb.SetMaxOpenConns(20)
		sdb.SetMaxIdleConns(20)
	} else {
		d.Dialect = dialect.SQLite
		dsn, file := SQLiteDSN(rawURL)
		d.SQLitePath = file
		d.sqlite = newSQLiteConnector(dsn)
		sdb = sql.OpenDB(d.sqlite)
		// Keep readers' connections: database/sql keeps two idle by
		// default, so a burst of concurrent reads (many subscribers
		// loading one event's edges) opened and closed a connection each,
		// and opening one (its pragmas) cost more than the query.
		sdb.SetMaxIdleConns(20)
	}
	d.SQL = sdb
	d.Client = ent.NewClient(ent.Driver(entsql.OpenDB(d.Dialect, sdb)))
	return d, nil
}

// OutboxClient is the client the outbox worker uses: its fair share of the
// database. On PostgreSQL it is a pool of its own with conns connections,
// so requests that take every connection of the main pool cannot starve
// the worker (issue 9); close releases it. On SQLite it is d's client
// (one writer anyway: the worker's writes get every other turn through
// WithPriority), and close does nothing.
func (d *DB) OutboxClient(conns int) (client *ent.Client, close func() error, err error) {
	if d.Dialect != dialect.Postgres {
		return d.Client, func() error { return nil }, nil
	}
	od, err := Open(d.raw)
	if err != nil {
		return nil, nil, err
	}
	od.SQL.SetMaxOpenConns(conns)
	od.SQL.SetMaxIdleConns(conns)
	return od.Client, od.Close, nil
}

// Wrap rebuilds the ent client over wrap(driver), for instrumentation such
// as tracing. Call it before the client is handed out.
func (d *DB) Wrap(wrap func(dialect.Driver) dialect.Driver) {
	d.Client = ent.NewClient(ent.Driver(wrap(entsql.OpenDB(d.Dialect, d.SQL))))
}

// statementCacheSize takes the statement_cache_size parameter out of a
// PostgreSQL URL: lib/pq would send it to the server as a run-time setting,
// which the server refuses.
func statementCacheSize(rawURL string) (dsn string, size int, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error repeats the URL, password and all
		}
		return "", 0, fmt.Errorf("DATABASE_URL: %w", err)
	}
	q := u.Query()
	if !q.Has("statement_cache_size") {
		return rawURL, defaultStatementCacheSize, nil
	}
	size, err = strconv.Atoi(q.Get("statement_cache_size"))
	if err != nil || size < 0 {
		return "", 0, fmt.Errorf("DATABASE_URL: statement_cache_size %q: want a whole number, 0 to turn the cache off", q.Get("statement_cache_size"))
	}
	q.Del("statement_cache_size")
	u.RawQuery = q.Encode()
	return u.String(), size, nil
}

// migrationLock is the PostgreSQL advisory lock key held while migrating,
// so replicas starting together migrate one at a time.
const migrationLock = 0x61646d6974 // "admit"

// Migrate creates or updates the schema. On PostgreSQL it holds an advisory
// lock for the duration, and runs fn (bootstrap) under the same lock, so
// that replicas starting at once neither race the DDL nor bootstrap twice.
func (d *DB) Migrate(ctx context.Context, fn func(context.Context) error) (err error) {
	if d.Dialect == dialect.Postgres {
		conn, err := d.SQL.Conn(ctx)
		if err != nil {
			return fmt.Errorf("db.Migrate: %w", err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
			return fmt.Errorf("db.Migrate: lock: %w", err)
		}
		defer func() {
			_, uerr := conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock)
			if err == nil && uerr != nil {
				err = fmt.Errorf("db.Migrate: unlock: %w", uerr)
			}
		}()
	}
	if err := d.createSchema(ctx); err != nil {
		return fmt.Errorf("db.Migrate: %w", err)
	}
	if d.Dialect == dialect.SQLite {
		if err := d.normalizeTimes(ctx); err != nil {
			return fmt.Errorf("db.Migrate: %w", err)
		}
	}
	if fn != nil {
		return fn(ctx)
	}
	return nil
}

// createSchema runs ent's migration. Each run is one transaction, so on
// SQLite, where two processes sharing a file have no advisory lock, a run
// that lost a race to another process's DDL rolls back and is simply run
// again against the schema the winner made.
func (d *DB) createSchema(ctx context.Context) error {
	var err error
	for attempt := 1; attempt <= 5; attempt++ {
		err = d.Client.Schema.Create(ctx, migrate.WithDropIndex(true))
		if err == nil || d.Dialect != dialect.SQLite || !strings.Contains(err.Error(), "already exists") {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
		}
	}
	return err
}

// sqliteTimeFormat is how times are stored on SQLite (modernc's "sqlite"
// _time_format), in UTC.
const sqliteTimeFormat = "2006-01-02 15:04:05.999999999-07:00"

// normalizeTimes rewrites, on SQLite, the times earlier versions stored as
// time.Time.String ("2026-12-02 00:47:19.1 +0000 UTC m=+157.85") in the
// one format now used, so that every row compares and sorts alike. Such a
// value has a space after its time of day; the current format has none.
func (d *DB) normalizeTimes(ctx context.Context) error {
	tx, err := d.SQL.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, t := range migrate.Tables {
		for _, col := range t.Columns {
			if col.Type != field.TypeTime {
				continue
			}
			q := fmt.Sprintf(`SELECT rowid, CAST(%[1]q AS TEXT) FROM %[2]q WHERE typeof(%[1]q) = 'text' AND instr(substr(%[1]q, 12), ' ') > 0`, col.Name, t.Name)
			rows, err := tx.QueryContext(ctx, q)
			if err != nil {
				return fmt.Errorf("normalize times of %s.%s: %w", t.Name, col.Name, err)
			}
			type fix struct {
				rowid int64
				v     string
			}
			var fixes []fix
			for rows.Next() {
				var id int64
				var v string
				if err := rows.Scan(&id, &v); err != nil {
					rows.Close()
					return err
				}
				if tm, ok := parseGoTime(v); ok {
					fixes = append(fixes, fix{id, tm.UTC().Format(sqliteTimeFormat)})
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for _, f := range fixes {
				if _, err := tx.ExecContext(ctx, fmt.Sprintf(`UPDATE %q SET %q = ? WHERE rowid = ?`, t.Name, col.Name), f.v, f.rowid); err != nil {
					return fmt.Errorf("normalize times of %s.%s: %w", t.Name, col.Name, err)
				}
			}
		}
	}
	return tx.Commit()
}

// parseGoTime reads a time.Time.String value, monotonic suffix or not.
func parseGoTime(s string) (time.Time, bool) {
	if i := strings.Index(s, " m="); i >= 0 {
		s = s[:i]
	}
	t, err := time.Parse("2006-01-02 15:04:05.999999999 -0700 MST", strings.TrimSpace(s))
	return t, err == nil
}

// Ping checks that the database answers (for /readyz).
func (d *DB) Ping(ctx context.Context) error { return d.SQL.PingContext(ctx) }

// Close closes the client and the pool.
func (d *DB) Close() error { return d.Client.Close() }
