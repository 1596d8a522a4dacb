package outbox_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"entgo.io/ent/dialect"

	"admit/ent/delivery"
	"admit/internal/testutil"
)

// The outbox's fair share (issue 9): while request traffic saturates the
// request pool, the worker still sends. On PostgreSQL the requests here
// hold every connection of the main pool for as long as the worker runs,
// with events relayed through NOTIFY as in production, so a worker that
// needs one connection of that pool (for a write, a load or a NOTIFY)
// never finishes. On SQLite they write without pause, and the worker's
// writes take every other turn.
func TestOutboxSendsWhileRequestsSaturateThePool(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	var emails []string
	for i := range 8 {
		emails = append(emails, fmt.Sprintf("fair%d@example.com", i))
	}
	ids := invite(t, e, org, emails...)

	const concurrency = 4
	client, closeOutbox, err := e.DB.OutboxClient(concurrency + 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeOutbox() })
	e.Worker.Client = client
	e.Worker.Concurrency = concurrency

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if e.DB.Dialect == dialect.Postgres {
		if err := e.Broker.RelayThroughPostgres(ctx, e.DB.URL, e.DB.SQL, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
	}
	sub := e.Broker.Subscribe("invitation", org.ID, 100)
	defer sub.Close()

	// The requests. On PostgreSQL each holder is a request that has its
	// connection; the callers queue behind them, as a saturating load does.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var served atomic.Int64
	release := func() {
		close(stop)
		wg.Wait()
	}
	defer func() {
		select {
		case <-stop:
		default:
			release()
		}
	}()
	if e.DB.Dialect == dialect.Postgres {
		n := e.DB.SQL.Stats().MaxOpenConnections
		if n == 0 {
			t.Fatal("the request pool is unbounded: nothing to saturate")
		}
		held := make([]*sql.Conn, n)
		for i := range held {
			c, err := e.DB.SQL.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			held[i] = c
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-stop
			for _, c := range held {
				_ = c.Close()
			}
		}()
		if got := e.DB.SQL.Stats().InUse; got != n {
			t.Fatalf("want all %d connections of the request pool in use, got %d", n, got)
		}
	}
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				body, _ := json.Marshal(map[string]any{"query": inviteMutation,
					"variables": map[string]any{"in": map[string]any{"emails": []string{fmt.Sprintf("load%d-%d@example.com", i, j)}}}})
				req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+org.AdminToken)
				rec := httptest.NewRecorder()
				e.Server.ServeHTTP(rec, req)
				_, _ = io.Copy(io.Discard, rec.Result().Body)
				served.Add(1)
			}
		}()
	}

	done := make(chan error, 1)
	go func() {
		_, err := e.Worker.RunOnce(context.Background())
		done <- err
	}()
	// Not a speed limit: a bound on a wait that, without a fair share,
	// never ends on PostgreSQL.
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunOnce: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("the outbox sent %d of %d messages while requests held the pool", len(e.Mail.Messages()), len(emails))
	}
	// Still under load: the subscribers heard every SENT (through NOTIFY on
	// PostgreSQL), and the requests were there all along.
	want := map[int]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for len(want) > 0 {
		select {
		case ev := <-sub.C:
			if ev.Kind == "SENT" {
				delete(want, ev.ObjectID)
			}
		case <-time.After(time.Minute):
			t.Fatalf("subscribers heard no SENT event for %d of %d invitations while requests held the pool", len(want), len(ids))
		}
	}
	if e.DB.Dialect != dialect.Postgres && served.Load() == 0 {
		t.Fatal("no request was served while the outbox sent: the load did not run")
	}
	release()

	for _, addr := range emails {
		if got := len(e.Mail.To(addr)); got != 1 {
			t.Fatalf("want one message to %s, got %d", addr, got)
		}
	}
	for _, id := range ids {
		if d := deliveryOf(t, e, id); d.Status != delivery.StatusSENT {
			t.Fatalf("invitation %d: want its message SENT, got %s", id, d.Status)
		}
	}
}
