package db_test

import (
	"context"
	"strings"
	"testing"

	"admit/internal/db"
)

func TestSQLiteDSN(t *testing.T) {
	for in, want := range map[string]struct{ file, has string }{
		"admit.db":                            {"admit.db", "file:admit.db?"},
		"sqlite:///var/lib/admit.db":          {"/var/lib/admit.db", "file:/var/lib/admit.db?"},
		"file:x.db?_txlock=deferred":          {"x.db", "_txlock=deferred"},
		"file:shared?mode=memory&cache=share": {"", "file:shared?"},
	} {
		dsn, file := db.SQLiteDSN(in)
		if file != want.file || !strings.Contains(dsn, want.has) || !strings.Contains(dsn, "foreign_keys") {
			t.Errorf("SQLiteDSN(%q) = %q, %q; want file %q and %q in the DSN", in, dsn, file, want.file, want.has)
		}
	}
}

// Every pooled connection must open the same in-memory database.
func TestNamedMemoryDatabaseIsShared(t *testing.T) {
	d, err := db.Open("file:" + strings.ReplaceAll(t.Name(), "/", "_") + "?mode=memory&cache=shared")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.SQL.SetMaxIdleConns(2)
	ctx := context.Background()
	if err := d.Migrate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	c1, _ := d.SQL.Conn(ctx)
	c2, _ := d.SQL.Conn(ctx)
	defer c1.Close()
	defer c2.Close()
	var n int
	if err := c2.QueryRowContext(ctx, "SELECT count(*) FROM organizations").Scan(&n); err != nil {
		t.Fatalf("a second connection does not see the migrated tables: %v", err)
	}
}
