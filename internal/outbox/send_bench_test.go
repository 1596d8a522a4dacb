package outbox_test

import (
	"fmt"
	"io"
	"log"
	"net"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"admit/internal/mail"
	"admit/internal/testutil"
)

// slowRelay is an SMTP server that takes delay to accept each message, as
// a relay across a network does.
type slowRelay struct{ delay time.Duration }

func (r slowRelay) NewSession(*smtp.Conn) (smtp.Session, error) { return relaySession(r), nil }

type relaySession slowRelay

func (relaySession) Mail(string, *smtp.MailOptions) error { return nil }
func (relaySession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s relaySession) Data(r io.Reader) error {
	time.Sleep(s.delay)
	_, err := io.Copy(io.Discard, r)
	return err
}
func (relaySession) Reset()        {}
func (relaySession) Logout() error { return nil }

func startRelay(b *testing.B, delay time.Duration) string {
	srv := smtp.NewServer(slowRelay{delay})
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	b.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

// BenchmarkSendThroughSlowRelay drains 200 queued invitation messages
// through real SMTP to a relay that takes 10 ms per message, at several
// OUTBOX_CONCURRENCY settings. Compare msgs/s within one run:
//
//	go test ./internal/outbox/ -run '^$' -bench SendThroughSlowRelay -benchtime 3x
func BenchmarkSendThroughSlowRelay(b *testing.B) {
	for _, concurrency := range []int{1, 4, 8} {
		b.Run(fmt.Sprintf("concurrency=%d", concurrency), func(b *testing.B) {
			e := testutil.New(b)
			org := e.NewOrg("Acme")
			sender, err := mail.NewSMTP("smtp://"+startRelay(b, 10*time.Millisecond), "Admit <no-reply@admit.test>")
			if err != nil {
				b.Fatal(err)
			}
			e.Worker.Sender = sender
			e.Worker.Concurrency = concurrency
			const perRound = 200
			b.ResetTimer()
			for round := range b.N {
				b.StopTimer()
				emails := make([]string, perRound)
				for i := range emails {
					emails[i] = fmt.Sprintf("r%d-p%d@example.com", round, i)
				}
				r := e.Do(org.AdminToken, inviteMutation, map[string]any{"in": map[string]any{"emails": emails}})
				if len(r.Errors) > 0 {
					b.Fatalf("inviteUsers: %s", r.Body)
				}
				b.StartTimer()
				e.Deliver()
			}
			b.ReportMetric(float64(perRound*b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
