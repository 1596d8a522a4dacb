//go:build linux

package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"    // registers "postgres"
	_ "modernc.org/sqlite" // registers "sqlite"
)

// database is one fresh, empty database for one server process.
type database struct {
	kind      string // "sqlite" or "postgres"
	serverURL string // DATABASE_URL for the server
	driver    string // database/sql driver for the raw side
	dsn       string
	raw       *sql.DB
	drop      func() error
}

// sqliteDSN mirrors internal/db.SQLiteDSN: the same pragmas the server
// sets (foreign keys, WAL, synchronous NORMAL, busy timeout, BEGIN
// IMMEDIATE), so the raw baseline writes under the same durability.
func sqliteDSN(path string) string {
	q := url.Values{}
	for _, p := range []string{"foreign_keys(1)", "busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newDatabase makes a fresh database: a file in dir for SQLite, a new
// database on the -pg server for PostgreSQL. The raw connection is opened
// later, once the server has migrated the schema.
func newDatabase(ctx context.Context, kind, pgURL, dir string) (*database, error) {
	switch kind {
	case "sqlite":
		sub, err := os.MkdirTemp(dir, "sqlite-")
		if err != nil {
			return nil, err
		}
		path := filepath.Join(sub, "admit.db")
		return &database{
			kind: kind, serverURL: path, driver: "sqlite", dsn: sqliteDSN(path),
			drop: func() error { return os.RemoveAll(sub) },
		}, nil
	case "postgres":
		u, err := url.Parse(pgURL)
		if err != nil {
			return nil, fmt.Errorf("-pg: %w", err)
		}
		if h := u.Hostname(); h != "127.0.0.1" && h != "localhost" && h != "::1" && !strings.HasPrefix(h, "/") {
			return nil, fmt.Errorf("-pg must point at a local server (127.0.0.1), got host %q", h)
		}
		admin, err := sql.Open("postgres", pgURL)
		if err != nil {
			return nil, err
		}
		name := "admit_bench_" + randomHex(6)
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(cctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
			admin.Close()
			return nil, fmt.Errorf("CREATE DATABASE %s on -pg %s: %w (is PostgreSQL running?)", name, redact(pgURL), err)
		}
		du := *u
		du.Path = "/" + name
		return &database{
			kind: kind, serverURL: du.String(), driver: "postgres", dsn: du.String(),
			drop: func() error {
				defer admin.Close()
				dctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				_, err := admin.ExecContext(dctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)")
				return err
			},
		}, nil
	}
	return nil, fmt.Errorf("unknown -db %q (sqlite or postgres)", kind)
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}

// open connects the raw side (after the server migrated the schema).
func (d *database) open() error {
	if d.raw != nil {
		return nil
	}
	db, err := sql.Open(d.driver, d.dsn)
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(4)
	d.raw = db
	return nil
}

func (d *database) close() error {
	if d.raw != nil {
		d.raw.Close()
		d.raw = nil
	}
	if d.drop != nil {
		err := d.drop()
		d.drop = nil
		return err
	}
	return nil
}

// ph returns the i-th (0-based) bind parameter.
func (d *database) ph(i int) string {
	if d.kind == "postgres" {
		return "$" + strconv.Itoa(i+1)
	}
	return "?"
}

// ids are the bootstrap organization, its Member role and its admin.
type ids struct{ org, role, admin int }

func (d *database) lookupIDs(ctx context.Context) (ids, error) {
	var r ids
	if err := d.raw.QueryRowContext(ctx, "SELECT id FROM organizations WHERE name = "+d.ph(0), benchOrg).Scan(&r.org); err != nil {
		return r, fmt.Errorf("bootstrap organization: %w", err)
	}
	if err := d.raw.QueryRowContext(ctx,
		"SELECT id FROM roles WHERE organization_id = "+d.ph(0)+" AND builtin AND NOT admin ORDER BY id LIMIT 1", r.org).Scan(&r.role); err != nil {
		return r, fmt.Errorf("member role: %w", err)
	}
	if err := d.raw.QueryRowContext(ctx, "SELECT id FROM users WHERE email = "+d.ph(0), benchAdmin).Scan(&r.admin); err != nil {
		return r, fmt.Errorf("admin user: %w", err)
	}
	return r, nil
}

// outboxBacklog counts messages the server's outbox worker still has to
// send.
func (d *database) outboxBacklog(ctx context.Context) (int, error) {
	var n int
	err := d.raw.QueryRowContext(ctx, "SELECT count(*) FROM deliveries WHERE status IN ('QUEUED', 'SENDING')").Scan(&n)
	return n, err
}

// drainOutbox waits, at most limit, until the server's outbox worker has
// sent every queued message (to the log: no SMTP_URL), so that its work does
// not overlap the next timed step. It returns how long that took and how
// many messages were waiting.
func (d *database) drainOutbox(ctx context.Context, limit time.Duration) (time.Duration, int, error) {
	start := time.Now()
	first := -1
	for {
		n, err := d.outboxBacklog(ctx)
		if err != nil {
			return 0, 0, fmt.Errorf("outbox backlog: %w", err)
		}
		if first < 0 {
			first = n
		}
		if n == 0 {
			return time.Since(start), first, nil
		}
		if time.Since(start) > limit {
			return time.Since(start), first, fmt.Errorf("outbox still has %d of %d messages after %v", n, first, limit)
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
