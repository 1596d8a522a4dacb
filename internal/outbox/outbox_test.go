package outbox_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"admit/ent"
	"admit/ent/delivery"
	"admit/ent/invitation"
	"admit/internal/mail"
	"admit/internal/outbox"
	"admit/internal/pubsub"
	"admit/internal/secret"
	"admit/internal/testutil"
)

// The worker is driven by hand here: RunOnce (or Env.Deliver, which runs
// it until nothing is due) with the test clock, and the Env's in-memory
// mailbox as a sender that can be told to fail.

const inviteMutation = `mutation($in: InviteUsersInput!) {
  inviteUsers(input: $in) { results { email outcome invitation { id } } errors { code } }
}`

// invite invites emails as org's admin and returns the invitation IDs in
// order.
func invite(t *testing.T, e *testutil.Env, org *testutil.Org, emails ...string) []int {
	t.Helper()
	var out struct {
		InviteUsers struct {
			Results []struct {
				Email      *string
				Outcome    string
				Invitation *struct{ ID string }
			}
			Errors []struct{ Code string }
		}
	}
	r := e.Do(org.AdminToken, inviteMutation, map[string]any{"in": map[string]any{"emails": emails}})
	if len(r.Errors) > 0 {
		t.Fatalf("inviteUsers: %s", r.Body)
	}
	decodeStrict(t, r, &out)
	if len(out.InviteUsers.Errors) != 0 || len(out.InviteUsers.Results) != len(emails) {
		t.Fatalf("inviteUsers: want %d results and no errors, got %+v", len(emails), out.InviteUsers)
	}
	ids := make([]int, len(emails))
	for i, res := range out.InviteUsers.Results {
		if res.Outcome != "INVITED" || res.Invitation == nil {
			t.Fatalf("inviteUsers: want %s INVITED, got %+v", emails[i], res)
		}
		ids[i] = atoi(t, res.Invitation.ID)
	}
	return ids
}

func decodeStrict(t *testing.T, r *testutil.Response, v any) {
	t.Helper()
	if len(r.Errors) > 0 {
		t.Fatalf("want no GraphQL errors, got HTTP %d: %s", r.Status, r.Body)
	}
	dec := json.NewDecoder(bytes.NewReader(r.Data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %s: %v", r.Data, err)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("ID %q: %v", s, err)
	}
	return n
}

// deliveriesOf returns the delivery rows of an invitation, oldest first.
func deliveriesOf(t *testing.T, e *testutil.Env, invitationID int) []*ent.Delivery {
	t.Helper()
	ds, err := e.DB.Client.Delivery.Query().
		Where(delivery.InvitationID(invitationID)).
		Order(ent.Asc(delivery.FieldID)).
		All(testutil.System())
	if err != nil {
		t.Fatalf("load deliveries: %v", err)
	}
	return ds
}

// deliveryOf returns the only delivery row of an invitation.
func deliveryOf(t *testing.T, e *testutil.Env, invitationID int) *ent.Delivery {
	t.Helper()
	ds := deliveriesOf(t, e, invitationID)
	if len(ds) != 1 {
		t.Fatalf("want one delivery for invitation %d, got %d", invitationID, len(ds))
	}
	return ds[0]
}

func runOnce(t *testing.T, w *outbox.Worker) int {
	t.Helper()
	n, err := w.RunOnce(context.Background())
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	return n
}

type adminView struct {
	Invitations map[string]string // email → lastDeliveryError
	Deliveries  map[string]deliveryView
}

type deliveryView struct {
	Status    string
	Attempts  int
	LastError string
}

// adminViewOf reads invitations and deliveries through GraphQL as the admin.
func adminViewOf(t *testing.T, e *testutil.Env, token string) adminView {
	t.Helper()
	var out struct {
		Invitations struct {
			Edges []struct {
				Node struct {
					Email             *string
					LastDeliveryError string
				}
			}
		}
		Deliveries struct {
			Edges []struct {
				Node struct {
					Recipient string
					Status    string
					Attempts  int
					LastError string
				}
			}
		}
	}
	decodeStrict(t, e.Do(token, `{
  invitations(first: 100) { edges { node { email lastDeliveryError } } }
  deliveries(first: 100) { edges { node { recipient status attempts lastError } } }
}`, nil), &out)
	v := adminView{Invitations: map[string]string{}, Deliveries: map[string]deliveryView{}}
	for _, edge := range out.Invitations.Edges {
		if edge.Node.Email != nil {
			v.Invitations[*edge.Node.Email] = edge.Node.LastDeliveryError
		}
	}
	for _, edge := range out.Deliveries.Edges {
		n := edge.Node
		v.Deliveries[n.Recipient] = deliveryView{Status: n.Status, Attempts: n.Attempts, LastError: n.LastError}
	}
	return v
}

// events drains the events a subscription holds now.
func events(sub *pubsub.Subscription) []pubsub.Event {
	var out []pubsub.Event
	for {
		select {
		case ev := <-sub.C:
			out = append(out, ev)
		default:
			return out
		}
	}
}

func kinds(evs []pubsub.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Kind
	}
	return out
}

func TestWorkerRetriesTransientErrorsWithBackoff(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	sub := e.Broker.Subscribe("invitation", org.ID, 16)
	defer sub.Close()
	id := invite(t, e, org, "ann@example.com")[0]

	e.Mail.Fail = errors.New("dial tcp 192.0.2.1:587: connect: connection refused")
	before := e.Clock.Now()
	e.Deliver()
	d := deliveryOf(t, e, id)
	if d.Status != delivery.StatusQUEUED || d.Attempts != 1 || d.LeaseUntil != nil {
		t.Fatalf("after one transient failure: want QUEUED, 1 attempt, no lease, got %s, %d, %v", d.Status, d.Attempts, d.LeaseUntil)
	}
	// The first retry waits BaseBackoff/2 plus up to BaseBackoff (1s here).
	if wait := d.NextAttemptAt.Sub(before); wait < 500*time.Millisecond || wait > 1500*time.Millisecond {
		t.Fatalf("want the retry 0.5s to 1.5s away, got %v", wait)
	}
	if !strings.Contains(d.LastError, "connection refused") {
		t.Fatalf("want the error in last_error, got %q", d.LastError)
	}
	if v := adminViewOf(t, e, org.AdminToken); v.Invitations["ann@example.com"] != "" || v.Deliveries["ann@example.com"] != (deliveryView{"QUEUED", 1, d.LastError}) {
		t.Fatalf("while retrying: want no lastDeliveryError and the delivery QUEUED, got %+v", v)
	}
	if evs := events(sub); len(evs) != 0 {
		t.Fatalf("want no event for a transient failure, got %v", kinds(evs))
	}

	// Before the retry is due nothing happens, even with the mail server back.
	e.Mail.Fail = nil
	if n := runOnce(t, e.Worker); n != 0 {
		t.Fatalf("before the retry time: want nothing handled, got %d", n)
	}
	e.Clock.Advance(d.NextAttemptAt.Sub(e.Clock.Now()) - 50*time.Millisecond)
	if n := runOnce(t, e.Worker); n != 0 {
		t.Fatalf("just before the retry time: want nothing handled, got %d", n)
	}
	if got := deliveryOf(t, e, id); got.Attempts != 1 || got.Status != delivery.StatusQUEUED || len(e.Mail.Messages()) != 0 {
		t.Fatalf("want the row untouched before its time, got %s with %d attempts and %d messages", got.Status, got.Attempts, len(e.Mail.Messages()))
	}

	// A second failure pushes it further out.
	e.Mail.Fail = errors.New("read tcp: i/o timeout")
	e.Clock.Advance(100 * time.Millisecond)
	if n := runOnce(t, e.Worker); n != 1 {
		t.Fatalf("at the retry time: want the row handled, got %d", n)
	}
	d = deliveryOf(t, e, id)
	if d.Status != delivery.StatusQUEUED || d.Attempts != 2 || !d.NextAttemptAt.After(e.Clock.Now()) || !strings.Contains(d.LastError, "i/o timeout") {
		t.Fatalf("after a second failure: want QUEUED, 2 attempts, a later retry and the new error, got %s, %d, %v, %q", d.Status, d.Attempts, d.NextAttemptAt, d.LastError)
	}

	e.Mail.Fail = nil
	e.Clock.Advance(3 * time.Second)
	e.Deliver()
	d = deliveryOf(t, e, id)
	if d.Status != delivery.StatusSENT || d.Attempts != 3 || d.LastError != "" || d.SentAt == nil {
		t.Fatalf("after recovering: want SENT on attempt 3 with no error, got %s, %d, %q, %v", d.Status, d.Attempts, d.LastError, d.SentAt)
	}
	if n := len(e.Mail.To("ann@example.com")); n != 1 {
		t.Fatalf("want exactly one message, got %d", n)
	}
	if evs := events(sub); !slices.Equal(kinds(evs), []string{"SENT"}) || evs[0].ObjectID != id {
		t.Fatalf("want one SENT event for invitation %d, got %+v", id, evs)
	}
}

func TestWorkerGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		maxAttempts int // 0: the default
		want        int
	}{
		// No attempt cap by default (OUTBOX_MAX_AGE decides, see
		// TestWorkerRetriesForMaxAge); a configured one still holds.
		{"configured", 3, 3},
		{"configured higher", 5, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := testutil.New(t)
			e.Worker.MaxAttempts = tt.maxAttempts
			org := e.NewOrg("Acme")
			sub := e.Broker.Subscribe("invitation", org.ID, 16)
			defer sub.Close()
			id := invite(t, e, org, "bob@example.com")[0]
			e.Mail.Fail = errors.New("421 4.7.0 try again later")
			for attempt := 1; attempt <= tt.want; attempt++ {
				e.Deliver()
				d := deliveryOf(t, e, id)
				wantStatus := delivery.StatusQUEUED
				if attempt == tt.want {
					wantStatus = delivery.StatusFAILED
				}
				if d.Status != wantStatus || d.Attempts != attempt {
					t.Fatalf("after attempt %d: want %s with %d attempts, got %s with %d", attempt, wantStatus, attempt, d.Status, d.Attempts)
				}
				e.Clock.Advance(11 * time.Second) // past MaxBackoff (10s) plus jitter
			}
			// Failed for good: no more attempts, even with the server back.
			e.Mail.Fail = nil
			e.Clock.Advance(time.Hour)
			if n := runOnce(t, e.Worker); n != 0 {
				t.Fatalf("after giving up: want nothing handled, got %d", n)
			}
			if n := len(e.Mail.Messages()); n != 0 {
				t.Fatalf("want no message, got %d", n)
			}
			admin := e.SignIn(org.AdminEmail, org.AdminPassword) // the clock outran the first session
			v := adminViewOf(t, e, admin)
			if !strings.Contains(v.Invitations["bob@example.com"], "try again later") {
				t.Fatalf("want the invitation's lastDeliveryError set, got %+v", v.Invitations)
			}
			if dv := v.Deliveries["bob@example.com"]; dv.Status != "FAILED" || dv.Attempts != tt.want || !strings.Contains(dv.LastError, "try again later") {
				t.Fatalf("want the delivery FAILED after %d attempts with its error, got %+v", tt.want, dv)
			}
			if evs := events(sub); !slices.Equal(kinds(evs), []string{"FAILED"}) {
				t.Fatalf("want one FAILED event, got %v", kinds(evs))
			}
		})
	}
}

func TestWorkerErrorClasses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		err       error
		permanent bool
	}{
		{"550 reply", &textproto.Error{Code: 550, Msg: "5.1.1 no such user"}, true},
		{"wrapped 554 reply", fmt.Errorf("mail: DATA: %w", &textproto.Error{Code: 554, Msg: "5.7.1 rejected"}), true},
		{"451 reply", &textproto.Error{Code: 451, Msg: "4.3.0 try later"}, false},
		{"deadline", fmt.Errorf("mail: connect: %w", context.DeadlineExceeded), false},
		{"network error", errors.New("connection reset by peer"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if mail.IsPermanent(tt.err) != tt.permanent {
				t.Fatalf("want IsPermanent %v for %v", tt.permanent, tt.err)
			}
			e := testutil.New(t)
			org := e.NewOrg("Acme")
			id := invite(t, e, org, "carol@example.com")[0]
			e.Mail.Fail = tt.err
			e.Deliver()
			d := deliveryOf(t, e, id)
			v := adminViewOf(t, e, org.AdminToken)
			if tt.permanent {
				if d.Status != delivery.StatusFAILED || d.Attempts != 1 || d.LastError == "" {
					t.Fatalf("want FAILED at once, got %s after %d attempts (%q)", d.Status, d.Attempts, d.LastError)
				}
				if v.Invitations["carol@example.com"] != d.LastError {
					t.Fatalf("want lastDeliveryError %q, got %q", d.LastError, v.Invitations["carol@example.com"])
				}
				return
			}
			if d.Status != delivery.StatusQUEUED || d.Attempts != 1 || !d.NextAttemptAt.After(e.Clock.Now()) {
				t.Fatalf("want QUEUED for a retry, got %s after %d attempts, next %v", d.Status, d.Attempts, d.NextAttemptAt)
			}
			if v.Invitations["carol@example.com"] != "" {
				t.Fatalf("want no lastDeliveryError while retrying, got %q", v.Invitations["carol@example.com"])
			}
		})
	}
}

func TestWorkerCancelsSupersededMessages(t *testing.T) {
	t.Parallel()
	const email = "dave@example.com"
	tests := []struct {
		name string
		// change acts on the queued invitation; wantGen is the token
		// generation of the one message expected afterwards, 0 for none.
		change  func(t *testing.T, e *testutil.Env, org *testutil.Org, id int)
		wantGen int
	}{
		{"revoked", func(t *testing.T, e *testutil.Env, org *testutil.Org, id int) {
			r := e.Do(org.AdminToken, `mutation($id: ID!) { revokeInvitation(input: {id: $id}) { errors { code } } }`, map[string]any{"id": testutil.ID(id)})
			if len(r.Errors) > 0 || strings.Contains(string(r.Data), "code") {
				t.Fatalf("revoke: %s", r.Body)
			}
		}, 0},
		{"resent", func(t *testing.T, e *testutil.Env, org *testutil.Org, id int) {
			e.Clock.Advance(61 * time.Second)
			r := e.Do(org.AdminToken, `mutation($id: ID!) { resendInvitation(input: {id: $id}) { errors { code } } }`, map[string]any{"id": testutil.ID(id)})
			if len(r.Errors) > 0 || strings.Contains(string(r.Data), "code") {
				t.Fatalf("resend: %s", r.Body)
			}
		}, 2},
		// The same changes landing between the queueing and the send,
		// without the API's own cancelling of queued rows.
		{"revoked behind the queue's back", func(t *testing.T, e *testutil.Env, org *testutil.Org, id int) {
			if err := e.DB.Client.Invitation.UpdateOneID(id).SetStatus(invitation.StatusREVOKED).Exec(testutil.System()); err != nil {
				t.Fatal(err)
			}
		}, 0},
		{"new generation behind the queue's back", func(t *testing.T, e *testutil.Env, org *testutil.Org, id int) {
			inv, err := e.DB.Client.Invitation.Get(testutil.System(), id)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.DB.Client.Invitation.UpdateOneID(id).
				SetTokenNonces(append(slices.Clone(inv.TokenNonces), secret.NewNonce())).
				SetTokenGeneration(2).
				Exec(testutil.System()); err != nil {
				t.Fatal(err)
			}
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := testutil.New(t)
			org := e.NewOrg("Acme")
			sub := e.Broker.Subscribe("invitation", org.ID, 16)
			defer sub.Close()
			id := invite(t, e, org, email)[0]
			tt.change(t, e, org, id)
			e.Deliver()

			ds := deliveriesOf(t, e, id)
			first := ds[0]
			if first.Status != delivery.StatusCANCELLED || first.Attempts != 0 || first.SentAt != nil || first.LeaseUntil != nil {
				t.Fatalf("want the first message CANCELLED without an attempt, got %s, %d attempts", first.Status, first.Attempts)
			}
			msgs := e.Mail.To(email)
			if tt.wantGen == 0 {
				if len(msgs) != 0 || len(ds) != 1 {
					t.Fatalf("want nothing sent, got %d messages and %d rows", len(msgs), len(ds))
				}
				for _, ev := range events(sub) {
					if ev.Kind == "SENT" || ev.Kind == "FAILED" {
						t.Fatalf("want no delivery event for a cancelled message, got %+v", ev)
					}
				}
				return
			}
			if len(msgs) != 1 || len(ds) != 2 || ds[1].Status != delivery.StatusSENT {
				t.Fatalf("want only the new message sent, got %d messages and rows %v", len(msgs), ds)
			}
			if tok := testutil.TokenIn(t, msgs[0]); !strings.HasPrefix(tok, fmt.Sprintf("adi_%d_%d_", id, tt.wantGen)) {
				t.Fatalf("want a generation-%d token, got %q", tt.wantGen, tok)
			}
		})
	}
}

func TestWorkerReclaimsExpiredLeases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		lease time.Duration // lease_until relative to now
	}{
		{"expired lease", -time.Second},
		{"live lease", time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := testutil.New(t)
			org := e.NewOrg("Acme")
			id := invite(t, e, org, "erin@example.com")[0]
			d := deliveryOf(t, e, id)
			// A worker claimed the row and died before recording anything.
			if err := e.DB.Client.Delivery.UpdateOneID(d.ID).
				SetStatus(delivery.StatusSENDING).
				SetLeaseUntil(e.Clock.Now().Add(tt.lease)).
				Exec(testutil.System()); err != nil {
				t.Fatal(err)
			}
			if tt.lease > 0 {
				if n := runOnce(t, e.Worker); n != 0 {
					t.Fatalf("while the lease lasts: want nothing handled, got %d", n)
				}
				if got := deliveryOf(t, e, id); got.Status != delivery.StatusSENDING || len(e.Mail.Messages()) != 0 {
					t.Fatalf("want the claimed row left alone, got %s and %d messages", got.Status, len(e.Mail.Messages()))
				}
				e.Clock.Advance(tt.lease + time.Second)
			}
			e.Deliver()
			got := deliveryOf(t, e, id)
			if got.Status != delivery.StatusSENT || got.Attempts != 1 || got.LeaseUntil != nil {
				t.Fatalf("want the row sent by the next worker, got %s, %d attempts, lease %v", got.Status, got.Attempts, got.LeaseUntil)
			}
			if n := len(e.Mail.To("erin@example.com")); n != 1 {
				t.Fatalf("want one message, got %d", n)
			}
		})
	}
}

// allText returns every column of every row of table as text.
func allText(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	rows, err := db.Query("SELECT * FROM " + table)
	if err != nil {
		t.Fatalf("select %s: %v", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			switch v := v.(type) {
			case []byte:
				out = append(out, string(v))
			case nil:
			default:
				out = append(out, fmt.Sprint(v))
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWorkerKeepsNoToken(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	emails := []string{"fay@example.com", "gil@example.com"}
	invite(t, e, org, emails...)
	// One failed attempt first, so the log has something to say.
	e.Mail.Fail = errors.New("connection reset by peer")
	e.Deliver()
	e.Mail.Fail = nil
	e.Clock.Advance(2 * time.Second)
	e.Deliver()

	var tokens []string
	for _, email := range emails {
		msgs := e.Mail.To(email)
		if len(msgs) != 1 {
			t.Fatalf("want one message to %s, got %d", email, len(msgs))
		}
		tok := testutil.TokenIn(t, msgs[0])
		tokens = append(tokens, tok, tok[len(tok)-43:]) // the token and its MAC alone
	}

	rows, err := e.DB.SQL.Query("SELECT recipient, subject, body_text, body_html, status FROM deliveries ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var rcpt, subject, text, html, status string
		if err := rows.Scan(&rcpt, &subject, &text, &html, &status); err != nil {
			t.Fatal(err)
		}
		n++
		if status != "SENT" || !strings.Contains(subject, "Acme") {
			t.Fatalf("%s: want a SENT row with its subject kept, got %s %q", rcpt, status, subject)
		}
		if !strings.Contains(text, testutil.AcceptURL("[token]")) && !strings.Contains(text, "accept?token=[token]") {
			t.Fatalf("%s: want the link kept with the token masked in body_text, got:\n%s", rcpt, text)
		}
		if !strings.Contains(html, "[token]") {
			t.Fatalf("%s: want the token masked in body_html, got:\n%s", rcpt, html)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(emails) {
		t.Fatalf("want %d delivery rows, got %d", len(emails), n)
	}
	for _, table := range []string{"deliveries", "invitations", "audit_events"} {
		for _, val := range allText(t, e.DB.SQL, table) {
			for _, tok := range tokens {
				if strings.Contains(val, tok) {
					t.Fatalf("table %s holds a token: %q", table, val)
				}
			}
		}
	}
	logText := e.LogText()
	if !strings.Contains(logText, "outbox: send failed") {
		t.Fatalf("want the failed attempt logged, got:\n%s", logText)
	}
	for _, tok := range tokens {
		if strings.Contains(logText, tok) {
			t.Fatalf("the log holds a token:\n%s", logText)
		}
	}
}

// countingSender counts sends per Message-ID.
type countingSender struct {
	mu    sync.Mutex
	sends map[string]int
	total int
}

func (s *countingSender) Send(_ context.Context, m mail.Message) error {
	time.Sleep(time.Millisecond) // a send takes a while, so the workers overlap
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sends[m.MessageID]++
	s.total++
	return nil
}

func TestTwoWorkersSendEachMessageOnce(t *testing.T) {
	t.Parallel()
	if testutil.PostgresURL() == "" {
		t.Skip("needs PostgreSQL (TEST_DATABASE_URL): FOR UPDATE SKIP LOCKED")
	}
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	const n = 200
	emails := make([]string, n)
	for i := range emails {
		emails[i] = fmt.Sprintf("user%03d@example.com", i)
	}
	var out struct {
		InviteUsers struct {
			Counts struct{ Invited int }
			Errors []struct{ Code string }
		}
	}
	decodeStrict(t, e.Do(org.AdminToken, `mutation($in: InviteUsersInput!) { inviteUsers(input: $in) { counts { invited } errors { code } } }`,
		map[string]any{"in": map[string]any{"emails": emails}}), &out)
	if out.InviteUsers.Counts.Invited != n || len(out.InviteUsers.Errors) != 0 {
		t.Fatalf("want %d invited, got %+v", n, out.InviteUsers)
	}

	sender := &countingSender{sends: map[string]int{}}
	newWorker := func() *outbox.Worker {
		return &outbox.Worker{
			Client: e.DB.Client, Dialect: e.DB.Dialect, Sender: sender, Invites: e.Invites, Broker: e.Broker,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: e.Clock.Now,
			AcceptURL: testutil.AcceptURL, MessageIDDomain: "admit.test", Batch: 3,
		}
	}
	workers := []*outbox.Worker{newWorker(), newWorker()}
	handled := make([]int, len(workers))
	errs := make([]error, len(workers))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for {
				k, err := w.RunOnce(context.Background())
				if err != nil {
					errs[i] = err
					return
				}
				if k == 0 {
					return
				}
				handled[i] += k
			}
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", i, err)
		}
	}
	t.Logf("rows handled per worker: %v", handled)

	if handled[0]+handled[1] != n {
		t.Fatalf("want %d rows claimed in all, each once, got %v", n, handled)
	}
	if len(sender.sends) != n || sender.total != n {
		t.Fatalf("want %d distinct messages sent once each, got %d distinct in %d sends", n, len(sender.sends), sender.total)
	}
	for id, c := range sender.sends {
		if c != 1 {
			t.Fatalf("message %s sent %d times", id, c)
		}
	}
	sent, err := e.DB.Client.Delivery.Query().Where(delivery.StatusEQ(delivery.StatusSENT), delivery.Attempts(1)).Count(testutil.System())
	if err != nil {
		t.Fatal(err)
	}
	total, err := e.DB.Client.Delivery.Query().Count(testutil.System())
	if err != nil {
		t.Fatal(err)
	}
	if sent != n || total != n {
		t.Fatalf("want all %d rows SENT on their first attempt, got %d of %d", n, sent, total)
	}
}
