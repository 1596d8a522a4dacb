package outbox_test

import (
	"errors"
	"testing"
	"time"

	"admit/ent/delivery"
	"admit/internal/testutil"
)

// The finding: with SMTP down, messages were FAILED for good after 6
// attempts in 75 s to 3 minutes. Now they are retried, with capped
// backoff, for OUTBOX_MAX_AGE (24h by default), and admins can retry
// FAILED deliveries once the relay is back.
func TestWorkerRetriesForMaxAgeThenAdminsRetry(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	id := invite(t, e, org, "bob@example.com")[0]
	e.Mail.Fail = errors.New("421 4.7.0 try again later")
	attempts := 0
	for range 20 { // twenty attempts over 20 hours: still queued
		e.Deliver()
		attempts++
		if d := deliveryOf(t, e, id); d.Status != delivery.StatusQUEUED || d.Attempts != attempts {
			t.Fatalf("after %d attempts within a day: %s with %d attempts", attempts, d.Status, d.Attempts)
		}
		e.Clock.Advance(time.Hour)
	}
	e.Clock.Advance(5 * time.Hour) // past 24h
	e.Deliver()
	if d := deliveryOf(t, e, id); d.Status != delivery.StatusFAILED {
		t.Fatalf("after a day of failures: %s, want FAILED", d.Status)
	}

	// The relay is back; an admin retries. A member may not.
	e.Mail.Fail = nil
	admin := e.SignIn(org.AdminEmail, org.AdminPassword) // the clock outran the first session
	e.NewUser(org, "member@acme.test", org.MemberRoleID)
	const q = `mutation { retryDeliveries(input: {}) { queued errors { code } } }`
	e.Do(e.SignIn("member@acme.test", testutil.DefaultPassword), q, nil).MustFail("FORBIDDEN")
	// Another organization's admin retries nothing of this one.
	other := e.NewOrg("Globex")
	var out struct {
		RetryDeliveries struct {
			Queued int
			Errors []struct{ Code string }
		}
	}
	e.Do(other.AdminToken, q, nil).MustData(&out)
	if out.RetryDeliveries.Queued != 0 {
		t.Fatalf("another organization's admin queued %d", out.RetryDeliveries.Queued)
	}
	e.Do(admin, q, nil).MustData(&out)
	if out.RetryDeliveries.Queued != 1 {
		t.Fatalf("queued %d, want 1", out.RetryDeliveries.Queued)
	}
	e.Deliver()
	if d := deliveryOf(t, e, id); d.Status != delivery.StatusSENT {
		t.Fatalf("after the retry: %s, want SENT", d.Status)
	}
	if n := len(e.Mail.To("bob@example.com")); n != 1 {
		t.Fatalf("want the message sent once, got %d", n)
	}
}
