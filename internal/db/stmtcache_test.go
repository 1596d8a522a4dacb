package db_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

	"admit/internal/db"
)

// pgURL is TEST_DATABASE_URL, read as testutil.PostgresURL reads it (this
// package cannot import testutil, which imports it); tests skip without it.
func pgURL(t *testing.T, params ...string) string {
	t.Helper()
	base := strings.TrimSpace(os.Getenv("TEST_DATABASE_URL"))
	if base == "" {
		t.Skip("needs PostgreSQL (TEST_DATABASE_URL): prepared statements")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	for i := 0; i+1 < len(params); i += 2 {
		q.Set(params[i], params[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// pinned opens the database through db.Open and returns one connection of
// it, so pg_prepared_statements shows that connection's statements.
func pinned(t *testing.T, params ...string) (*db.DB, *sql.Conn) {
	t.Helper()
	d, err := db.Open(pgURL(t, params...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	conn, err := d.SQL.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return d, conn
}

// preparedOn lists the statements prepared on conn. It has no arguments, so
// it is not cached itself.
func preparedOn(t *testing.T, conn *sql.Conn) []string {
	t.Helper()
	rows, err := conn.QueryContext(context.Background(), "SELECT statement FROM pg_prepared_statements ORDER BY statement")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// table creates a table only this test uses and drops it afterwards.
func table(t *testing.T, d *db.DB, columns string) string {
	t.Helper()
	name := "stmtcache_" + strings.ToLower(rand.Text()[:12])
	if _, err := d.SQL.Exec("CREATE TABLE " + name + " (" + columns + ")"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = d.SQL.Exec("DROP TABLE IF EXISTS " + name) })
	return name
}

func TestStatementPreparedOncePerConnection(t *testing.T) {
	t.Parallel()
	_, conn := pinned(t)
	ctx := context.Background()
	const q = "SELECT $1::int * 10"
	for i := 1; i <= 5; i++ {
		var got int
		if err := conn.QueryRowContext(ctx, q, i).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != i*10 {
			t.Fatalf("%s with %d = %d, want %d", q, i, got, i*10)
		}
	}
	if got := preparedOn(t, conn); !slices.Equal(got, []string{q}) {
		t.Fatalf("prepared statements %q, want %q once", got, q)
	}
	// Exec goes through the same cache.
	for range 3 {
		if _, err := conn.ExecContext(ctx, q, 1); err != nil {
			t.Fatal(err)
		}
	}
	if got := preparedOn(t, conn); len(got) != 1 {
		t.Fatalf("after Exec, prepared statements %q, want %q once", got, q)
	}
}

func TestStatementCacheEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	_, conn := pinned(t, "statement_cache_size", "2")
	ctx := context.Background()
	run := func(q string) {
		t.Helper()
		var n int
		if err := conn.QueryRowContext(ctx, q, 1).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	const a, b, c = "SELECT $1::int + 1", "SELECT $1::int + 2", "SELECT $1::int + 3"
	run(a)
	run(b)
	run(c) // evicts a
	if got := preparedOn(t, conn); !slices.Equal(got, []string{b, c}) {
		t.Fatalf("prepared statements %q, want %q", got, []string{b, c})
	}
	run(b) // b is now the most recent
	run(a) // evicts c
	if got := preparedOn(t, conn); !slices.Equal(got, []string{a, b}) {
		t.Fatalf("prepared statements %q, want %q", got, []string{a, b})
	}
}

func TestStatementReprepareAfterSchemaChange(t *testing.T) {
	t.Parallel()
	d, conn := pinned(t)
	ctx := context.Background()
	tbl := table(t, d, "id int PRIMARY KEY, a text")
	if _, err := d.SQL.Exec("INSERT INTO "+tbl+" VALUES ($1, $2)", 1, "x"); err != nil {
		t.Fatal(err)
	}
	q := "SELECT * FROM " + tbl + " WHERE id = $1"
	columns := func() (int, error) {
		rows, err := conn.QueryContext(ctx, q, 1)
		if err != nil {
			return 0, err
		}
		defer rows.Close()
		cols, err := rows.Columns()
		if err != nil {
			return 0, err
		}
		if !rows.Next() {
			return 0, errors.New("no row")
		}
		return len(cols), rows.Close()
	}
	if n, err := columns(); err != nil || n != 2 {
		t.Fatalf("before: %d columns, %v", n, err)
	}
	if _, err := conn.ExecContext(ctx, "ALTER TABLE "+tbl+" ADD COLUMN b int"); err != nil {
		t.Fatal(err)
	}
	if n, err := columns(); err != nil {
		var pqErr *pq.Error
		if !errors.As(err, &pqErr) {
			t.Fatalf("after ALTER: %v (%T), want a *pq.Error", err, err)
		}
		t.Logf("after ALTER, as expected: %v (%s)", err, pqErr.Code)
	} else if n != 3 {
		t.Fatalf("after ALTER: %d columns, want 3", n)
	}
	if n, err := columns(); err != nil || n != 3 {
		t.Fatalf("third run: %d columns, %v; want 3 columns (statement prepared again)", n, err)
	}
	if got := preparedOn(t, conn); !slices.Equal(got, []string{q}) {
		t.Fatalf("prepared statements %q, want %q once", got, q)
	}
}

func TestStatementCacheInTransactions(t *testing.T) {
	t.Parallel()
	d, conn := pinned(t)
	ctx := context.Background()
	tbl := table(t, d, "id int PRIMARY KEY")
	ins := "INSERT INTO " + tbl + " (id) VALUES ($1)"
	count := "SELECT count(*) FROM " + tbl + " WHERE id >= $1"

	// A statement first prepared in a transaction that rolls back stays
	// prepared (statements are not transactional) and works afterwards.
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() // if the test fails first
	if _, err := tx.Exec(ins, 1); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow(count, 0).Scan(&n); err != nil || n != 1 {
		t.Fatalf("in tx: count %d, %v; want 1", n, err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRowContext(ctx, count, 0).Scan(&n); err != nil || n != 0 {
		t.Fatalf("after rollback: count %d, %v; want 0", n, err)
	}

	// A unique violation through a cached statement aborts the
	// transaction; after ROLLBACK the connection and the statement work.
	if _, err := conn.ExecContext(ctx, ins, 1); err != nil {
		t.Fatal(err)
	}
	tx, err = conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() // if the test fails first
	_, err = tx.Exec(ins, 1)
	if pqErr := (*pq.Error)(nil); !errors.As(err, &pqErr) || pqErr.Code != "23505" {
		t.Fatalf("duplicate insert: %v, want a unique violation", err)
	}
	if _, err := tx.Exec(ins, 2); err == nil {
		t.Fatal("insert in an aborted transaction succeeded")
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, ins, 2); err != nil {
		t.Fatalf("after rollback: %v", err)
	}
	if err := conn.QueryRowContext(ctx, count, 0).Scan(&n); err != nil || n != 2 {
		t.Fatalf("count %d, %v; want 2", n, err)
	}
	if got := preparedOn(t, conn); !slices.Equal(got, []string{ins, count}) && !slices.Equal(got, []string{count, ins}) {
		t.Fatalf("prepared statements %q, want %q and %q", got, ins, count)
	}
}

func TestStatementCacheSizeZeroTurnsItOff(t *testing.T) {
	t.Parallel()
	d, conn := pinned(t, "statement_cache_size", "0")
	if strings.Contains(d.URL, "statement_cache_size") {
		t.Fatalf("statement_cache_size left in the URL lib/pq gets")
	}
	for i := range 5 {
		var n int
		if err := conn.QueryRowContext(context.Background(), "SELECT $1::int", i).Scan(&n); err != nil || n != i {
			t.Fatalf("got %d, %v; want %d", n, err, i)
		}
	}
	if got := preparedOn(t, conn); len(got) != 0 {
		t.Fatalf("prepared statements %q with the cache off", got)
	}
}

// Needs no server: Open does not connect.
func TestStatementCacheSizeParameter(t *testing.T) {
	for _, bad := range []string{"-1", "lots", ""} {
		_, err := db.Open("postgres://admit:hunter2@127.0.0.1:1/admit?statement_cache_size=" + bad)
		if err == nil {
			t.Errorf("statement_cache_size=%q accepted", bad)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error shows the password: %v", err)
		}
	}
	d, err := db.Open("postgres://admit:hunter2@127.0.0.1:1/admit?sslmode=disable&statement_cache_size=16&application_name=x")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if strings.Contains(d.URL, "statement_cache_size") || !strings.Contains(d.URL, "sslmode=disable") || !strings.Contains(d.URL, "application_name=x") {
		t.Errorf("URL for lib/pq: %q", d.URL)
	}
	if _, err := db.Open("postgres://admit:hunter2@127.0.0.1:1/admit?sslmode=disable"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Open("postgres://admit:hunter2@[::1/admit"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("bad URL: %v", err)
	}
}

func TestArraysThroughStatementCache(t *testing.T) {
	t.Parallel()
	_, conn := pinned(t)
	ctx := context.Background()
	for range 2 { // prepare, then reuse
		var ints []int64
		if err := conn.QueryRowContext(ctx, "SELECT $1::int[]", pq.Array([]int64{1, 2})).Scan(pq.Array(&ints)); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ints, []int64{1, 2}) {
			t.Fatalf("int[]: %v", ints)
		}
		// A plain Go slice: lib/pq's CheckNamedValue makes it an array, but
		// only if the wrapper passes the check on.
		var strs []string
		if err := conn.QueryRowContext(ctx, "SELECT $1::text[]", []string{"a", "b c"}).Scan(pq.Array(&strs)); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(strs, []string{"a", "b c"}) {
			t.Fatalf("text[]: %q", strs)
		}
		var n int
		if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM unnest($1::int[]) x WHERE x = ANY($2)", []int{1, 2, 3}, []int64{2, 3}).Scan(&n); err != nil || n != 2 {
			t.Fatalf("ANY: %d, %v", n, err)
		}
	}
	if got := preparedOn(t, conn); len(got) != 3 {
		t.Fatalf("prepared statements %q, want 3", got)
	}
}

// lib/pq refuses a second query while rows are open only when both are
// sent without arguments (simple protocol): with arguments its guard is
// reset by the ReadyForQuery that ends the Parse round trip, so it sends the
// second statement into the first one's rows and the connection breaks
// ("unexpected Parse response"), and a cached statement's Bind has no guard
// at all. The wrapper refuses the second query in every case.
func TestQueryWhileRowsOpen(t *testing.T) {
	t.Parallel()
	_, conn := pinned(t)
	ctx := context.Background()
	for _, open := range []struct {
		q    string
		args []any
	}{
		{"SELECT g FROM generate_series(1, $1::int) g", []any{1000}}, // cached
		{"SELECT g FROM generate_series(1, 1000) g", nil},            // lib/pq's own
	} {
		func() {
			tx, err := conn.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			rows, err := tx.Query(open.q, open.args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			if !rows.Next() {
				t.Fatal("no rows")
			}
			var n int
			err = tx.QueryRow("SELECT $1::int", 5).Scan(&n)
			if err == nil || !strings.Contains(err.Error(), "already a query being processed") {
				t.Fatalf("second query with %q open: %v", open.q, err)
			}
			if _, err = tx.Exec("SELECT $1::int", 5); err == nil || !strings.Contains(err.Error(), "already a query being processed") {
				t.Fatalf("Exec with %q open: %v", open.q, err)
			}
			if err := rows.Close(); err != nil {
				t.Fatal(err)
			}
			if err := tx.QueryRow("SELECT $1::int", 5).Scan(&n); err != nil || n != 5 {
				t.Fatalf("after closing the rows: %d, %v", n, err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		}()
	}
}

// A cached statement is cancelled with its context, as an uncached one is.
func TestCachedStatementCancel(t *testing.T) {
	t.Parallel()
	d, conn := pinned(t)
	const q = "SELECT pg_sleep($1)"
	if _, err := conn.ExecContext(context.Background(), q, 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := conn.ExecContext(ctx, q, 10)
	if err == nil {
		t.Fatal("pg_sleep(10) finished under a 200ms timeout")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("cancel took %v", took)
	}
	t.Logf("cancelled: %v", err)
	var n int
	if err := d.SQL.QueryRow("SELECT $1::int", 3).Scan(&n); err != nil || n != 3 {
		t.Fatalf("pool after cancel: %d, %v", n, err)
	}
}

// An ordinary error, such as a unique violation, says nothing about the
// statement: it stays prepared and is not closed and prepared again.
func TestStatementKeptAfterAnOrdinaryError(t *testing.T) {
	t.Parallel()
	d, conn := pinned(t)
	ctx := context.Background()
	name := table(t, d, "id int PRIMARY KEY")
	q := "INSERT INTO " + name + " (id) VALUES ($1)"
	if _, err := conn.ExecContext(ctx, q, 1); err != nil {
		t.Fatal(err)
	}
	var pqErr *pq.Error
	if _, err := conn.ExecContext(ctx, q, 1); !errors.As(err, &pqErr) || pqErr.Code != "23505" {
		t.Fatalf("want a unique violation, got %v", err)
	}
	if got := preparedOn(t, conn); !slices.Equal(got, []string{q}) {
		t.Fatalf("after the error, prepared statements %q, want %q still there", got, q)
	}
	if _, err := conn.ExecContext(ctx, q, 2); err != nil {
		t.Fatalf("the kept statement: %v", err)
	}
}
