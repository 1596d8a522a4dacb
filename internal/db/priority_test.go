package db_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"admit/internal/db"
)

// Under a queue of waiting requests, a priority writer (the outbox) gets
// the next turn instead of waiting behind all of them, and the others still
// get theirs.
func TestSQLitePriorityWriterGetsItsShare(t *testing.T) {
	t.Parallel()
	d := openSQLite(t)
	ctx := context.Background()
	holder, err := d.SQL.BeginTx(ctx, nil) // takes the turn
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	order := make([]string, 10)
	var wg sync.WaitGroup
	write := func(ctx context.Context, name string) {
		defer wg.Done()
		// n is the turn this writer got.
		var n int
		if err := d.SQL.QueryRowContext(ctx, "UPDATE counter SET n = n + 1 WHERE id = 1 RETURNING n").Scan(&n); err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		order[n-1] = name
		mu.Unlock()
	}
	for range 8 {
		wg.Add(1)
		go write(ctx, "request")
	}
	time.Sleep(100 * time.Millisecond) // all eight queue up
	wg.Add(2)
	go write(db.WithPriority(ctx), "outbox")
	time.Sleep(100 * time.Millisecond)
	go write(db.WithPriority(ctx), "outbox")
	time.Sleep(100 * time.Millisecond)
	if err := holder.Rollback(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if slices.Contains(order, "") {
		t.Fatalf("order %v: want every writer served once", order)
	}
	// Priority writers take every other turn while they wait.
	if order[0] != "outbox" || order[1] != "request" || order[2] != "outbox" {
		t.Fatalf("order %v: want outbox, request, outbox first", order)
	}
	var n int
	if err := d.SQL.QueryRow("SELECT n FROM counter WHERE id = 1").Scan(&n); err != nil || n != 10 {
		t.Fatalf("counter = %d (%v), want 10", n, err)
	}
}
