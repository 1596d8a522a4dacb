package db_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"admit/internal/db"
)

func openSQLite(t *testing.T) *db.DB {
	t.Helper()
	d, err := db.Open(filepath.Join(t.TempDir(), "q.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.SQL.Exec("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.SQL.Exec("INSERT INTO counter (id, n) VALUES (1, 0)"); err != nil {
		t.Fatal(err)
	}
	return d
}

// Many writers at once all get their turn, each exactly once, and every
// turn is given back (or the later ones would wait out the timeout).
func TestSQLiteWritersTakeTurns(t *testing.T) {
	t.Parallel()
	d := openSQLite(t)
	const writers, each = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for range writers {
		wg.Go(func() {
			for i := range each {
				tx, err := d.SQL.Begin()
				if err != nil {
					errs <- err
					return
				}
				if _, err := tx.Exec("UPDATE counter SET n = n + 1 WHERE id = 1"); err != nil {
					errs <- err
					tx.Rollback()
					return
				}
				if i%2 == 0 { // half commit, half roll back: both end a turn
					err = tx.Commit()
				} else {
					err = tx.Rollback()
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a writer failed: %v", err)
	}
	var n int
	if err := d.SQL.QueryRow("SELECT n FROM counter WHERE id = 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != writers*each/2 {
		t.Fatalf("want %d committed increments, got %d", writers*each/2, n)
	}
}

// A write outside any transaction waits for the running transaction and
// then goes through; a read does not wait at all.
func TestSQLiteWriteOutsideTransactionWaitsItsTurn(t *testing.T) {
	t.Parallel()
	d := openSQLite(t)
	tx, err := d.SQL.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("UPDATE counter SET n = 10 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := d.SQL.QueryRow("SELECT n FROM counter WHERE id = 1").Scan(&n); err != nil || n != 0 {
		t.Fatalf("a read during the transaction: want the committed 0 at once, got %d, %v", n, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := d.SQL.Exec("UPDATE counter SET n = n + 1 WHERE id = 1")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the write went through while the transaction held the turn (err %v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the waiting write failed: %v", err)
	}
	if err := d.SQL.QueryRow("SELECT n FROM counter WHERE id = 1").Scan(&n); err != nil || n != 11 {
		t.Fatalf("want 11 (the transaction's 10, then +1), got %d, %v", n, err)
	}
}

// UPDATE … RETURNING holds the write until its rows are closed, so it holds
// the turn until then too.
func TestSQLiteReturningHoldsTheTurnUntilClosed(t *testing.T) {
	t.Parallel()
	d := openSQLite(t)
	rows, err := d.SQL.Query("UPDATE counter SET n = n + 1 WHERE id = 1 RETURNING n")
	if err != nil {
		t.Fatal(err)
	}
	began := make(chan error, 1)
	go func() {
		tx, err := d.SQL.Begin()
		if err == nil {
			err = tx.Rollback()
		}
		began <- err
	}()
	select {
	case err := <-began:
		t.Fatalf("a transaction began while RETURNING rows were open (err %v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	for rows.Next() {
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-began; err != nil {
		t.Fatalf("the waiting transaction failed: %v", err)
	}
}

// A caller that gives up while waiting gets its context's error, and its
// place in the queue is not lost for the others.
func TestSQLiteWaitEndsWithTheContext(t *testing.T) {
	t.Parallel()
	d := openSQLite(t)
	tx, err := d.SQL.Begin()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := d.SQL.BeginTx(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the context's deadline error, got %v", err)
	}
	if _, err := d.SQL.ExecContext(ctx, "UPDATE counter SET n = 5"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a write outside a transaction: want the context's deadline error, got %v", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	tx2, err := d.SQL.Begin()
	if err != nil {
		t.Fatalf("after the wait gave up, the next transaction: %v", err)
	}
	tx2.Rollback()
}
