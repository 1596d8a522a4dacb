package outbox_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"math/big"
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

// startTLSRelay is startRelay offering STARTTLS with a fresh self-signed
// certificate, as a real relay does; the client config trusts it.
func startTLSRelay(b *testing.B) (addr string, client *tls.Config) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench relay"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	srv := smtp.NewServer(slowRelay{})
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	b.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String(), &tls.Config{RootCAs: pool}
}

// BenchmarkDrainWithSessionReuse queues 10,000 invitation messages and
// times the outbox draining them through real SMTP to a local relay that
// accepts at once (plain, and with STARTTLS as real relays require), with
// one connection per message and with sessions kept (mail.WithReuse, as
// main wires it), at the default OUTBOX_CONCURRENCY of 4. Compare within
// one run:
//
//	go test ./internal/outbox/ -run '^$' -bench DrainWithSessionReuse -benchtime 1x
func BenchmarkDrainWithSessionReuse(b *testing.B) {
	const queued, concurrency = 10000, 4
	for _, relay := range []string{"plain", "starttls"} {
		for _, reuse := range []bool{false, true} {
			name := fmt.Sprintf("relay=%s/reuse=%v", relay, reuse)
			b.Run(name, func(b *testing.B) {
				e := testutil.New(b)
				org := e.NewOrg("Acme")
				var addr string
				var opts []mail.SMTPOption
				if relay == "plain" {
					addr = startRelay(b, 0)
				} else {
					var tc *tls.Config
					addr, tc = startTLSRelay(b)
					opts = append(opts, mail.WithTLSConfig(tc))
				}
				if reuse {
					opts = append(opts, mail.WithReuse(concurrency, mail.DefaultIdleTimeout))
				}
				sender, err := mail.NewSMTP("smtp://"+addr, "Admit <no-reply@admit.test>", opts...)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = sender.Close() })
				e.Worker.Sender = sender
				e.Worker.Concurrency = concurrency
				var total time.Duration
				for round := range b.N {
					for chunk := 0; chunk < queued; chunk += 1000 {
						emails := make([]string, 1000)
						for i := range emails {
							emails[i] = fmt.Sprintf("r%d-p%d@example.com", round, chunk+i)
						}
						r := e.Do(org.AdminToken, inviteMutation, map[string]any{"in": map[string]any{"emails": emails}})
						if len(r.Errors) > 0 {
							b.Fatalf("inviteUsers: %.300s", r.Body)
						}
					}
					start := time.Now()
					e.Deliver()
					total += time.Since(start)
				}
				b.ReportMetric(float64(queued*b.N)/total.Seconds(), "msgs/s")
				b.ReportMetric(total.Seconds()/float64(b.N), "s/drain")
			})
		}
	}
}
