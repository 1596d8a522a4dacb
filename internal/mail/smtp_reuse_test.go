package mail

import (
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Sessions kept between messages (WithReuse, issue 13): what the relay
// sees on the wire.

func sendN(t *testing.T, s *SMTP, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		m := Message{To: fmt.Sprintf("p%d@example.org", i), Subject: "Hi", Text: "Hi", MessageID: fmt.Sprintf("delivery-%d@admit", i)}
		if err := s.Send(context.Background(), m); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
}

// until polls cond: a bound on a wait for something that happens in the
// background, not a speed limit.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Many messages, one connection: one STARTTLS and one AUTH, RSET between
// messages, and each message keeps its own Message-ID.
func TestReuseSendsManyMessagesOnOneConnection(t *testing.T) {
	ts := startServer(t, serverOptions{tls: startTLS, user: testUser, password: testPassword})
	s := newSender(t, ts, testUser, testPassword, WithReuse(2, time.Minute))
	t.Cleanup(func() { _ = s.Close() })
	sendN(t, s, 0, 5)

	mails, auths, conns := ts.snapshot()
	if conns != 1 || len(auths) != 1 {
		t.Fatalf("want 5 messages on 1 connection with 1 AUTH, got %d connections and %d AUTHs", conns, len(auths))
	}
	if len(mails) != 5 {
		t.Fatalf("want 5 messages, got %d", len(mails))
	}
	for i, m := range mails {
		if !m.tls || len(m.to) != 1 || m.to[0] != fmt.Sprintf("p%d@example.org", i) {
			t.Fatalf("message %d: want one recipient p%d@example.org over TLS, got %v (TLS %v)", i, i, m.to, m.tls)
		}
		if got, want := parseMessage(t, m.data).header.Get("Message-ID"), fmt.Sprintf("<delivery-%d@admit>", i); got != want {
			t.Fatalf("message %d: want Message-ID %s, got %s", i, want, got)
		}
	}
	if n := strings.Count(ts.script.String(), "RSET"); n != 4 {
		t.Fatalf("want RSET before each of the 4 messages after the first, saw %d", n)
	}
	if s.kept() != 1 {
		t.Fatalf("want the session kept open, %d kept", s.kept())
	}
	// Close ends it with QUIT.
	_ = s.Close()
	if s.kept() != 0 || !strings.Contains(ts.script.String(), "QUIT") {
		t.Fatalf("want Close to QUIT the kept session; %d kept", s.kept())
	}
}

// Concurrent sends use at most as many connections as run at once, and
// keep at most size of them.
func TestReuseKeepsAtMostSizeSessions(t *testing.T) {
	ts := startServer(t, serverOptions{tls: plainTCP})
	s := newSender(t, ts, "", "", WithReuse(2, time.Minute))
	t.Cleanup(func() { _ = s.Close() })
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				errs <- s.Send(context.Background(), Message{To: fmt.Sprintf("w%d-%d@example.org", w, i), Subject: "Hi", Text: "Hi"})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	mails, _, conns := ts.snapshot()
	if len(mails) != 40 {
		t.Fatalf("want 40 messages, got %d", len(mails))
	}
	if conns > 40/2 {
		t.Fatalf("want sessions reused, got %d connections for 40 messages", conns)
	}
	if k := s.kept(); k > 2 {
		t.Fatalf("want at most 2 sessions kept, got %d", k)
	}
}

// A kept session the server has closed, or that it answers 421, is
// replaced by a new connection, and the message goes out once, without
// an error.
func TestReuseReconnects(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(ts *testServer)
	}{
		{"server dropped the connection", func(ts *testServer) { ts.dropAll() }},
		{"421 to MAIL FROM", func(ts *testServer) {
			ts.mu.Lock()
			ts.nextMailErr = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Closing connection"}
			ts.mu.Unlock()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, serverOptions{tls: startTLS})
			s := newSender(t, ts, "", "", WithReuse(1, time.Minute))
			t.Cleanup(func() { _ = s.Close() })
			sendN(t, s, 0, 1)
			tt.breakIt(ts)
			sendN(t, s, 1, 2)
			mails, _, conns := ts.snapshot()
			if len(mails) != 3 || conns != 2 {
				t.Fatalf("want 3 messages on 2 connections, got %d on %d", len(mails), conns)
			}
			for i, m := range mails {
				if m.to[0] != fmt.Sprintf("p%d@example.org", i) {
					t.Fatalf("want each message once, in order; message %d went to %v", i, m.to)
				}
			}
		})
	}
}

// Replies to a message on a kept session mean what they meant before: 4xx
// transient, 5xx permanent, not retried on another connection; and the
// session stays for the next message.
func TestReuseKeepsReplyClasses(t *testing.T) {
	for _, tt := range []struct {
		code int
		perm bool
	}{{451, false}, {550, true}} {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			ts := startServer(t, serverOptions{tls: startTLS})
			s := newSender(t, ts, "", "", WithReuse(1, time.Minute))
			t.Cleanup(func() { _ = s.Close() })
			sendN(t, s, 0, 1)
			ts.mu.Lock()
			ts.nextMailErr = &smtp.SMTPError{Code: tt.code, EnhancedCode: smtp.EnhancedCode{tt.code / 100, 0, 0}, Message: "No"}
			ts.mu.Unlock()
			err := s.Send(context.Background(), Message{To: "bob@example.org", Subject: "Hi", Text: "Hi"})
			var tp *textproto.Error
			if !errors.As(err, &tp) || tp.Code != tt.code || IsPermanent(err) != tt.perm {
				t.Fatalf("want a %d reply error, IsPermanent %v; got %v", tt.code, tt.perm, err)
			}
			sendN(t, s, 1, 1)
			mails, _, conns := ts.snapshot()
			if len(mails) != 2 || conns != 1 {
				t.Fatalf("want 2 messages on 1 connection, got %d on %d", len(mails), conns)
			}
		})
	}
}

// A session idle for longer than the idle timeout is closed with QUIT.
func TestReuseClosesIdleSessions(t *testing.T) {
	ts := startServer(t, serverOptions{tls: plainTCP})
	s := newSender(t, ts, "", "", WithReuse(1, 50*time.Millisecond))
	t.Cleanup(func() { _ = s.Close() })
	sendN(t, s, 0, 1)
	until(t, "the idle session to close", func() bool {
		return s.kept() == 0 && strings.Contains(ts.script.String(), "QUIT")
	})
	// The next message opens a new one.
	sendN(t, s, 1, 1)
	if mails, _, conns := ts.snapshot(); len(mails) != 2 || conns != 2 {
		t.Fatalf("want 2 messages on 2 connections, got %d on %d", len(mails), conns)
	}
}

// Without WithReuse every message has its own connection, as before.
func TestNoReuseByDefault(t *testing.T) {
	ts := startServer(t, serverOptions{tls: startTLS})
	s := newSender(t, ts, "", "")
	sendN(t, s, 0, 3)
	if mails, _, conns := ts.snapshot(); len(mails) != 3 || conns != 3 || s.kept() != 0 {
		t.Fatalf("want 3 messages on 3 connections, none kept; got %d on %d, %d kept", len(mails), conns, s.kept())
	}
}
