//go:build linux

package main

import (
	"context"

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
