//go:build linux

package main

import (
	"admit/bench/internal/benchkit"
	"context"
	"fmt"
	"time"

	_ "modernc.org/sqlite" // registers "sqlite"
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

func (d *database) open() error                                    { return d.Open() }
func (d *database) close() error                                   { return d.Close() }
func (d *database) ph(i int) string                                { return d.Ph(i) }
func (d *database) outboxBacklog(ctx context.Context) (int, error) { return d.OutboxBacklog(ctx) }
func (d *database) drainOutbox(ctx context.Context, limit time.Duration) (time.Duration, int, error) {
	return d.DrainOutbox(ctx, limit)
}

// ids are the bootstrap organization, its Member role and its admin.
type ids struct{ org, role, admin int }

func (d *database) lookupIDs(ctx context.Context) (ids, error) {
	var r ids
	if err := d.Raw.QueryRowContext(ctx, "SELECT id FROM organizations WHERE name = "+d.ph(0), benchOrg).Scan(&r.org); err != nil {
		return r, fmt.Errorf("bootstrap organization: %w", err)
	}
	if err := d.Raw.QueryRowContext(ctx,
		"SELECT id FROM roles WHERE organization_id = "+d.ph(0)+" AND builtin AND NOT admin ORDER BY id LIMIT 1", r.org).Scan(&r.role); err != nil {
		return r, fmt.Errorf("member role: %w", err)
	}
	if err := d.Raw.QueryRowContext(ctx, "SELECT id FROM users WHERE email = "+d.ph(0), benchAdmin).Scan(&r.admin); err != nil {
		return r, fmt.Errorf("admin user: %w", err)
	}
	return r, nil
}
