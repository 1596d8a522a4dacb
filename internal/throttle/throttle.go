// Package throttle counts events per key in fixed windows, in the database,
// so that every replica sharing it sees the same counts: with R replicas a
// client still gets the limit, not R times it. (internal/ratelimit counts in
// memory, per replica, for limits where that is good enough.)
//
// Counters are written with the plain client, never inside a mutation's
// transaction: a refused mutation rolls its transaction back, and the
// attempt it made must still count.
package throttle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"admit/ent"
	"admit/ent/ratecounter"
	"admit/internal/rule"
)

// Counter counts events in the rate_counters table.
type Counter struct {
	Dialect string // dialect.SQLite (default) or dialect.Postgres
	Now     func() time.Time

	hits atomic.Uint64
}

func (c *Counter) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Hit counts one event under key, atomically, and reports whether it is
// within limit events per window. When it is not, wait is how long until
// the window ends. A limit of 0 or less allows everything and counts
// nothing.
func (c *Counter) Hit(ctx context.Context, db *ent.Client, key string, limit int, window time.Duration) (ok bool, wait time.Duration, err error) {
	if limit <= 0 {
		return true, 0, nil
	}
	now := c.now()
	nowMs, endMs := now.UnixMilli(), now.Add(window).UnixMilli()
	d := c.Dialect
	if d == "" {
		d = dialect.SQLite
	}
	b := entsql.Dialect(d)
	t := b.Table(ratecounter.Table)
	// One statement: a new key starts a window, a key whose window ended
	// starts a new one, any other key counts one more. Every SET reads the
	// row as it was, on both databases.
	expired := func(then, otherwise string) entsql.Querier {
		return entsql.ExprFunc(func(b *entsql.Builder) {
			b.WriteString("CASE WHEN ").WriteString(t.C(ratecounter.FieldWindowEnd)).WriteString(" <= ").Arg(nowMs).
				WriteString(" THEN ").WriteString(then).WriteString(" ELSE ").WriteString(otherwise).WriteString(" END")
		})
	}
	query, args := b.Insert(ratecounter.Table).
		Columns(ratecounter.FieldKey, ratecounter.FieldCount, ratecounter.FieldWindowEnd).
		Values(key, 1, endMs).
		OnConflict(
			entsql.ConflictColumns(ratecounter.FieldKey),
			entsql.ResolveWith(func(u *entsql.UpdateSet) {
				u.Set(ratecounter.FieldCount, expired("1", t.C(ratecounter.FieldCount)+" + 1"))
				u.Set(ratecounter.FieldWindowEnd, expired(fmt.Sprint(endMs), t.C(ratecounter.FieldWindowEnd)))
			}),
		).
		Returning(ratecounter.FieldCount, ratecounter.FieldWindowEnd).
		Query()
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return false, 0, fmt.Errorf("throttle.Hit: %w", err)
	}
	var n int
	var end int64
	if rows.Next() {
		err = rows.Scan(&n, &end)
	} else {
		err = fmt.Errorf("no row returned")
	}
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, 0, fmt.Errorf("throttle.Hit: %w", err)
	}
	if c.hits.Add(1)%256 == 0 {
		c.sweep(ctx, db, nowMs)
	}
	if n > limit {
		return false, time.UnixMilli(end).Sub(now), nil
	}
	return true, 0, nil
}

// Undo takes back one event counted under key (an attempt that turned out
// fine).
func (c *Counter) Undo(ctx context.Context, db *ent.Client, key string) error {
	err := db.RateCounter.Update().
		Where(ratecounter.Key(key), ratecounter.CountGT(0), ratecounter.WindowEndGT(c.now().UnixMilli())).
		AddCount(-1).
		Exec(rule.System(ctx))
	if err != nil {
		return fmt.Errorf("throttle.Undo: %w", err)
	}
	return nil
}

// Reset forgets every event counted under key.
func (c *Counter) Reset(ctx context.Context, db *ent.Client, key string) error {
	if _, err := db.RateCounter.Delete().Where(ratecounter.Key(key)).Exec(rule.System(ctx)); err != nil {
		return fmt.Errorf("throttle.Reset: %w", err)
	}
	return nil
}

// sweep deletes counters whose window ended, so the table stays small.
func (c *Counter) sweep(ctx context.Context, db *ent.Client, nowMs int64) {
	_, _ = db.RateCounter.Delete().Where(ratecounter.WindowEndLT(nowMs)).Exec(rule.System(ctx))
}

// Secret returns a key part for a value that should not be stored as it is
// (an email address): a hash of it.
func Secret(v string) string {
	h := sha256.Sum256([]byte(v))
	return hex.EncodeToString(h[:16])
}

// Address returns the key part for a client address: the address itself
// for IPv4, its /64 network for IPv6 (one host usually holds a whole /64).
func Address(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
