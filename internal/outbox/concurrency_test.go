package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"admit/ent/delivery"
	"admit/internal/mail"
	"admit/internal/testutil"
)

// gatedSender holds every Send until need of them are in flight at once,
// so a worker that sends one at a time never gets past the first.
type gatedSender struct {
	need  int
	gate  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	now   int // sends in flight
	peak  int
	sent  []string
	stuck bool
}

func (g *gatedSender) Send(_ context.Context, m mail.Message) error {
	g.mu.Lock()
	g.now++
	g.peak = max(g.peak, g.now)
	if g.now == g.need {
		g.once.Do(func() { close(g.gate) })
	}
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.now--
		g.mu.Unlock()
	}()
	select {
	case <-g.gate:
	case <-time.After(10 * time.Second):
		g.mu.Lock()
		g.stuck = true
		g.mu.Unlock()
		return errors.New("gate never opened: messages are not sent concurrently")
	}
	g.mu.Lock()
	g.sent = append(g.sent, m.To)
	g.mu.Unlock()
	return nil
}

// A batch goes out Concurrency messages at a time, never more, and each
// message once.
func TestWorkerSendsConcurrently(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	var emails []string
	for i := range 9 {
		emails = append(emails, fmt.Sprintf("p%d@example.com", i))
	}
	ids := invite(t, e, org, emails...)
	g := &gatedSender{need: 3, gate: make(chan struct{})}
	e.Worker.Sender = g
	e.Worker.Concurrency = 3

	if n := runOnce(t, e.Worker); n != len(emails) {
		t.Fatalf("want one batch of %d handled, got %d", len(emails), n)
	}
	if g.stuck {
		t.Fatalf("want %d sends in flight at once, the most seen was %d", g.need, g.peak)
	}
	if g.peak != 3 {
		t.Fatalf("want at most Concurrency (3) sends in flight, saw %d", g.peak)
	}
	slices.Sort(g.sent)
	if !slices.Equal(g.sent, emails) {
		t.Fatalf("want one message to each of %v, got %v", emails, g.sent)
	}
	for _, id := range ids {
		if d := deliveryOf(t, e, id); d.Status != delivery.StatusSENT || d.Attempts != 1 {
			t.Fatalf("invitation %d: want its message SENT on the first attempt, got %s after %d", id, d.Status, d.Attempts)
		}
	}
}
