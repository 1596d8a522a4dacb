//go:build linux

package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"    // registers "postgres"
	_ "modernc.org/sqlite" // registers "sqlite"

	"admit/bench/internal/benchkit"
)

// database is one fresh, empty database for one server process, with the
// raw handle this program's baselines use (benchkit.DB).
type database struct{ *benchkit.DB }

func newDatabase(ctx context.Context, kind, pgURL, dir string) (*database, error) {
	db, err := benchkit.NewDB(ctx, kind, pgURL, dir)
	if err != nil {
		return nil, err
	}
	return &database{db}, nil
}

// ids are the bootstrap organization, its Member role and its admin.
type ids struct{ org, role, admin int }

func (d *database) lookupIDs(ctx context.Context) (ids, error) {
	var r ids
	if err := d.Raw.QueryRowContext(ctx, "SELECT id FROM organizations WHERE name = "+d.Ph(0), benchOrg).Scan(&r.org); err != nil {
		return r, fmt.Errorf("bootstrap organization: %w", err)
	}
	if err := d.Raw.QueryRowContext(ctx,
		"SELECT id FROM roles WHERE organization_id = "+d.Ph(0)+" AND builtin AND NOT admin ORDER BY id LIMIT 1", r.org).Scan(&r.role); err != nil {
		return r, fmt.Errorf("member role: %w", err)
	}
	if err := d.Raw.QueryRowContext(ctx, "SELECT id FROM users WHERE email = "+d.Ph(0), benchAdmin).Scan(&r.admin); err != nil {
		return r, fmt.Errorf("admin user: %w", err)
	}
	return r, nil
}

// invitationColumns are the columns the server's own insert fills (every
// NOT NULL column, with the values an import writes, plus last_sent_at and
// inviter_id); id is generated.
var invitationColumns = []string{
	"created_at", "updated_at", "email", "name", "kind", "admin", "source", "delivery_mode", "status",
	"message", "token_nonces", "token_generation", "expires_at", "send_count", "last_sent_at",
	"last_delivery_error", "organization_id", "role_id", "inviter_id",
}

// rawBatch is the rows per INSERT statement: 1000 × 19 columns = 19,000
// parameters, under SQLite's 32,766 and PostgreSQL's 65,535.
const rawBatch = 1000

// rawRows pre-generates the per-row values (outside the timed section).
type rawRow struct {
	email  string
	nonces string // token_nonces JSON, as ent writes a [][]byte: ["<base64>"]
}

func makeRawRows(emails []string) []rawRow {
	rows := make([]rawRow, len(emails))
	for i, e := range emails {
		n := make([]byte, 16)
		_, _ = rand.Read(n)
		rows[i] = rawRow{email: e, nonces: `["` + base64.StdEncoding.EncodeToString(n) + `"]`}
	}
	return rows
}

// insertSQL builds one multi-row INSERT into table for n rows, with an
// optional RETURNING clause.
func (d *database) insertSQL(table string, cols []string, n int, returning string) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + table + " (")
	b.WriteString(strings.Join(cols, ", "))
	b.WriteString(") VALUES ")
	p := 0
	for r := 0; r < n; r++ {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range cols {
			if c > 0 {
				b.WriteString(", ")
			}
			b.WriteString(d.Ph(p))
			p++
		}
		b.WriteByte(')')
	}
	if returning != "" {
		b.WriteString(" RETURNING " + returning)
	}
	return b.String()
}

// rawInsert writes rows into invitations with plain database/sql: one
// transaction, multi-row INSERTs of rawBatch rows. The clock covers BEGIN
// to COMMIT, statement text and arguments included.
func (d *database) rawInsert(ctx context.Context, id ids, rows []rawRow) (time.Duration, error) {
	return d.rawWrite(ctx, id, rows, false)
}

// rawInsertAll writes what one invitation really writes — an invitations
// row, a deliveries row and an audit_events row — the same raw way:
// invitations with RETURNING id, then the other two, rawBatch rows a
// statement, in one transaction. The deliveries rows are written as
// CANCELLED so that the server's outbox worker leaves them alone.
func (d *database) rawInsertAll(ctx context.Context, id ids, rows []rawRow) (time.Duration, error) {
	return d.rawWrite(ctx, id, rows, true)
}

var deliveryColumns = []string{
	"created_at", "updated_at", "channel", "recipient", "template", "subject", "body_text", "body_html",
	"status", "attempts", "next_attempt_at", "last_error", "token_generation", "organization_id", "invitation_id",
}

var auditColumns = []string{"created_at", "action", "target_type", "target_id", "summary", "organization_id", "actor_id"}

func (d *database) rawWrite(ctx context.Context, id ids, rows []rawRow, all bool) (time.Duration, error) {
	start := time.Now()
	now := time.Now()
	expires := now.Add(14 * 24 * time.Hour)
	tx, err := d.Raw.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	returning := ""
	if all {
		returning = "id, email"
	}
	full := d.insertSQL("invitations", invitationColumns, rawBatch, returning)
	args := make([]any, 0, rawBatch*len(invitationColumns))
	for startRow := 0; startRow < len(rows); startRow += rawBatch {
		part := rows[startRow:min(startRow+rawBatch, len(rows))]
		args = args[:0]
		for _, r := range part {
			args = append(args,
				now, now, r.email, "", "INTERNAL", false, "FILE", "INVITE", "PENDING",
				"", r.nonces, 1, expires, 1, now,
				"", id.org, id.role, id.admin)
		}
		stmt := full
		if len(part) != rawBatch {
			stmt = d.insertSQL("invitations", invitationColumns, len(part), returning)
		}
		if !all {
			if _, err := tx.ExecContext(ctx, stmt, args...); err != nil {
				return 0, fmt.Errorf("raw insert: %w", err)
			}
			continue
		}
		newIDs := map[string]int{}
		res, err := tx.QueryContext(ctx, stmt, args...)
		if err != nil {
			return 0, fmt.Errorf("raw insert: %w", err)
		}
		for res.Next() {
			var iid int
			var email string
			if err := res.Scan(&iid, &email); err != nil {
				res.Close()
				return 0, err
			}
			newIDs[email] = iid
		}
		res.Close()
		if err := res.Err(); err != nil {
			return 0, err
		}
		args = args[:0]
		for _, r := range part {
			args = append(args, now, now, "EMAIL", r.email, "invitation", "", "", "",
				"CANCELLED", 0, now, "", 1, id.org, newIDs[r.email])
		}
		if _, err := tx.ExecContext(ctx, d.insertSQL("deliveries", deliveryColumns, len(part), ""), args...); err != nil {
			return 0, fmt.Errorf("raw insert deliveries: %w", err)
		}
		args = args[:0]
		for _, r := range part {
			args = append(args, now, "invitation.created", "Invitation", newIDs[r.email], r.email, id.org, id.admin)
		}
		if _, err := tx.ExecContext(ctx, d.insertSQL("audit_events", auditColumns, len(part), ""), args...); err != nil {
			return 0, fmt.Errorf("raw insert audit_events: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("raw commit: %w", err)
	}
	return time.Since(start), nil
}

// rawCopy writes rows into invitations with PostgreSQL's COPY (lib/pq's
// CopyIn) in one transaction: the fastest plain database/sql way, and so a
// stricter baseline than the multi-row INSERT the target names. PostgreSQL
// only; reported for information.
func (d *database) rawCopy(ctx context.Context, id ids, rows []rawRow) (time.Duration, error) {
	start := time.Now()
	now := time.Now()
	expires := now.Add(14 * 24 * time.Hour)
	tx, err := d.Raw.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	stmt, err := tx.PrepareContext(ctx, pq.CopyIn("invitations", invitationColumns...))
	if err != nil {
		return 0, fmt.Errorf("raw copy: %w", err)
	}
	for _, r := range rows {
		if _, err := stmt.ExecContext(ctx,
			now, now, r.email, "", "INTERNAL", false, "FILE", "INVITE", "PENDING",
			"", r.nonces, 1, expires, 1, now,
			"", id.org, id.role, id.admin); err != nil {
			return 0, fmt.Errorf("raw copy: %w", err)
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return 0, fmt.Errorf("raw copy: %w", err)
	}
	if err := stmt.Close(); err != nil {
		return 0, fmt.Errorf("raw copy: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("raw copy commit: %w", err)
	}
	return time.Since(start), nil
}

// countLike counts invitations with emails LIKE pattern.
func (d *database) countLike(ctx context.Context, pattern string) (int, error) {
	var n int
	err := d.Raw.QueryRowContext(ctx, "SELECT count(*) FROM invitations WHERE email LIKE "+d.Ph(0), pattern).Scan(&n)
	return n, err
}

// pgTableStats is a snapshot of PostgreSQL's per-table counters.
type pgTableStats map[string][4]int64 // seq_scan, idx_scan, n_tup_ins, n_tup_upd

// pgStats reads the counters of the tables an invitation touches, plus
// the database's commit and rollback counts.
func (d *database) pgStats(ctx context.Context) (pgTableStats, [2]int64, error) {
	st := pgTableStats{}
	var xact [2]int64
	if d.Kind != "postgres" {
		return st, xact, nil
	}
	// Counters of this backend's own work are flushed on idle; a fresh
	// snapshot sees everyone else's flushed counters.
	if _, err := d.Raw.ExecContext(ctx, "SELECT pg_stat_clear_snapshot()"); err != nil {
		return nil, xact, err
	}
	rows, err := d.Raw.QueryContext(ctx, `SELECT relname, coalesce(seq_scan, 0), coalesce(idx_scan, 0), n_tup_ins, n_tup_upd
		FROM pg_stat_user_tables WHERE relname IN ('invitations', 'deliveries', 'audit_events', 'users', 'roles', 'organizations', 'sessions', 'idempotency_keys')`)
	if err != nil {
		return nil, xact, err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var v [4]int64
		if err := rows.Scan(&name, &v[0], &v[1], &v[2], &v[3]); err != nil {
			return nil, xact, err
		}
		st[name] = v
	}
	if err := rows.Err(); err != nil {
		return nil, xact, err
	}
	err = d.Raw.QueryRowContext(ctx, "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = current_database()").Scan(&xact[0], &xact[1])
	return st, xact, err
}
