package outbox_test

import (
	"context"
	"io"
	"log"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"admit/ent/delivery"
	"admit/internal/mail"
	"admit/internal/testutil"
)

// gatedRelay is an SMTP server that accepts the first open messages at
// once and holds each later one in DATA until release is closed.
type gatedRelay struct {
	open    int
	started chan string
	release chan struct{}
	mu      sync.Mutex
	conns   []*smtp.Conn
	got     []string
}

func (r *gatedRelay) NewSession(c *smtp.Conn) (smtp.Session, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.conns, c) {
		r.conns = append(r.conns, c)
	}
	return &gatedSession{r: r}, nil
}

func (r *gatedRelay) snapshot() (got []string, conns int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got), len(r.conns)
}

type gatedSession struct {
	r  *gatedRelay
	to string
}

func (s *gatedSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *gatedSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = to
	return nil
}
func (s *gatedSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	s.r.mu.Lock()
	held := len(s.r.got) >= s.r.open
	s.r.mu.Unlock()
	if held {
		s.r.started <- s.to
		<-s.r.release
	}
	s.r.mu.Lock()
	s.r.got = append(s.r.got, s.to)
	s.r.mu.Unlock()
	return nil
}
func (s *gatedSession) Reset()        { s.to = "" }
func (s *gatedSession) Logout() error { return nil }

func startGatedRelay(t *testing.T, r *gatedRelay) string {
	t.Helper()
	srv := smtp.NewServer(r)
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

// A stop while a message is in DATA on a kept SMTP session: that message
// is recorded SENT, the rest released, and nothing is sent twice (the
// finding of issue 9 item 8, with sessions reused as in production).
func TestStopWithKeptSMTPSessionRecordsInFlightSends(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	invite(t, e, org, "a@example.com", "b@example.com", "c@example.com", "d@example.com")
	relay := &gatedRelay{open: 1, started: make(chan string, 10), release: make(chan struct{})}
	sender, err := mail.NewSMTP("smtp://"+startGatedRelay(t, relay), "Admit <no-reply@admit.test>", mail.WithReuse(1, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sender.Close() })
	e.Worker.Sender = sender
	e.Worker.Concurrency = 1

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Worker.Run(ctx); close(done) }()
	inFlight := <-relay.started // the second message is in DATA, on the first one's session
	stop()                      // SIGTERM
	time.Sleep(50 * time.Millisecond)
	close(relay.release) // the relay accepts it
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not stop")
	}

	got, conns := relay.snapshot()
	if len(got) != 2 || got[1] != inFlight || conns != 1 {
		t.Fatalf("want 2 messages on 1 kept session, the second %s; got %v on %d connections", inFlight, got, conns)
	}
	rows, err := e.DB.Client.Delivery.Query().All(testutil.System())
	if err != nil {
		t.Fatal(err)
	}
	counts := map[delivery.Status]int{}
	for _, d := range rows {
		counts[d.Status]++
		if slices.Contains(got, d.Recipient) != (d.Status == delivery.StatusSENT) {
			t.Errorf("%s is %s; the relay has it: %v", d.Recipient, d.Status, slices.Contains(got, d.Recipient))
		}
	}
	if counts[delivery.StatusSENT] != 2 || counts[delivery.StatusQUEUED] != 2 {
		t.Fatalf("after the stop: %v, want 2 SENT and 2 QUEUED (released)", counts)
	}

	// The next start sends the other two, once each.
	e.Deliver()
	got, _ = relay.snapshot()
	slices.Sort(got)
	if want := []string{"a@example.com", "b@example.com", "c@example.com", "d@example.com"}; !slices.Equal(got, want) {
		t.Fatalf("after restart the relay has %v, want each of %v once", got, want)
	}
}
