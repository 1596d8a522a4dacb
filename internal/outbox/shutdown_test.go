package outbox_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"admit/ent/delivery"
	"admit/internal/mail"
	"admit/internal/testutil"
)

// stopGate blocks each send until the test lets it through.
type stopGate struct {
	started chan string
	release chan struct{}
	mu      sync.Mutex
	sent    []mail.Message
}

func (g *stopGate) Send(ctx context.Context, m mail.Message) error {
	g.started <- m.To
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.mu.Lock()
	g.sent = append(g.sent, m)
	g.mu.Unlock()
	return nil
}

// The finding: SIGTERM while the outbox was sending left messages SENDING:
// the send had happened, but recording it ran on the cancelled context, so
// they were sent again when the claim expired. Now a send in flight is
// recorded on a context that outlives the stop, and claimed rows not yet
// started are released at once.
func TestStopRecordsInFlightSendsAndReleasesTheRest(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	invite(t, e, org, "a@example.com", "b@example.com", "c@example.com")
	g := &stopGate{started: make(chan string, 10), release: make(chan struct{})}
	e.Worker.Sender = g
	e.Worker.Concurrency = 1

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Worker.Run(ctx); close(done) }()
	first := <-g.started // one message is with the relay
	stop()               // SIGTERM
	time.Sleep(50 * time.Millisecond)
	close(g.release) // the relay accepts it
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not stop")
	}

	rows, err := e.DB.Client.Delivery.Query().All(testutil.System())
	if err != nil {
		t.Fatal(err)
	}
	counts := map[delivery.Status]int{}
	for _, d := range rows {
		counts[d.Status]++
		if d.Recipient == first && d.Status != delivery.StatusSENT {
			t.Errorf("the message the relay accepted (%s) is %s, want SENT", first, d.Status)
		}
		if d.Status == delivery.StatusQUEUED && d.LeaseUntil != nil {
			t.Errorf("released row %d still holds a lease", d.ID)
		}
	}
	if counts[delivery.StatusSENT] != 1 || counts[delivery.StatusQUEUED] != 2 || counts[delivery.StatusSENDING] != 0 {
		t.Fatalf("after the stop: %v, want 1 SENT and 2 QUEUED (released), none SENDING", counts)
	}

	// The next start sends the other two, once each, and nothing again.
	e.Worker.Sender = e.Mail
	e.Deliver()
	if n := len(e.Mail.Messages()); n != 2 {
		t.Fatalf("after restart: %d messages sent, want the 2 released", n)
	}
	for _, m := range e.Mail.Messages() {
		if m.To == first {
			t.Fatalf("%s was sent twice", first)
		}
	}
}
