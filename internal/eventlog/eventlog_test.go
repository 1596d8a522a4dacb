package eventlog_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"admit/ent"
	"admit/ent/workspaceevent"
	"admit/internal/account"
	"admit/internal/eventlog"
	"admit/internal/pubsub"
	"admit/internal/rule"
	"admit/internal/testutil"
)

func setup(t *testing.T, buffer int) (*ent.Client, *eventlog.Log, int) {
	t.Helper()
	d := testutil.OpenDB(t)
	org, _, err := account.CreateOrganization(context.Background(), d.Client, account.NewOrganization{
		Name: "Acme", AdminEmail: "admin@acme.test", AdminPassword: testutil.DefaultPassword,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d.Client, &eventlog.Log{Broker: pubsub.New(), Dialect: d.Dialect, Buffer: buffer}, org.ID
}

// record stores one event in its own transaction, committed or not.
func record(t *testing.T, c *ent.Client, l *eventlog.Log, orgID, object int, commit bool) {
	t.Helper()
	ctx := context.Background()
	tx, err := c.Tx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Record(ent.NewTxContext(ctx, tx), eventlog.Event{OrgID: orgID, WorkspaceID: 1, Subject: eventlog.JoinRequest, Type: "CREATED", ObjectID: object}); err != nil {
		t.Fatal(err)
	}
	if commit {
		err = tx.Commit()
	} else {
		err = tx.Rollback()
	}
	if err != nil {
		t.Fatal(err)
	}
}

func receive(t *testing.T, ch <-chan eventlog.Event) eventlog.Event {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	return eventlog.Event{}
}

// A subscriber that reads nothing while 50 events commit overflows its
// 2-event buffer; it is then resynced from the store and still gets every
// event, in order, once.
func TestSlowSubscriberIsResyncedFromTheStore(t *testing.T) {
	t.Parallel()
	c, l, org := setup(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := l.Subscribe(ctx, c, org, -1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		record(t, c, l, org, i, true)
	}
	for i := range 50 {
		e := receive(t, ch)
		if e.Position != i+1 || e.ObjectID != i {
			t.Fatalf("event %d: got position %d object %d", i, e.Position, e.ObjectID)
		}
	}
	select {
	case e := <-ch:
		t.Fatalf("want no repeat, got %+v", e)
	case <-time.After(200 * time.Millisecond):
	}
}

// Rolled-back events are neither stored nor delivered, and leave no gap.
func TestRolledBackEventsLeaveNoTrace(t *testing.T) {
	t.Parallel()
	c, l, org := setup(t, 8)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := l.Subscribe(ctx, c, org, -1)
	if err != nil {
		t.Fatal(err)
	}
	record(t, c, l, org, 1, false)
	record(t, c, l, org, 2, true)
	if e := receive(t, ch); e.ObjectID != 2 || e.Position != 1 {
		t.Fatalf("want the committed event at position 1, got %+v", e)
	}
	n, err := c.WorkspaceEvent.Query().Count(rule.System(ctx))
	if err != nil || n != 1 {
		t.Fatalf("want 1 stored event, got %d (%v)", n, err)
	}
}

// Concurrent writers get dense, unique positions in commit order, and a
// subscriber resuming from 0 reads them all.
func TestConcurrentWritersGetDensePositions(t *testing.T) {
	t.Parallel()
	c, l, org := setup(t, 8)
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				record(t, c, l, org, w*100+i, true)
			}
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	positions, err := c.WorkspaceEvent.Query().Where(workspaceevent.OrganizationID(org)).
		Order(ent.Asc(workspaceevent.FieldPosition)).Select(workspaceevent.FieldPosition).Ints(rule.System(ctx))
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range positions {
		if p != i+1 {
			t.Fatalf("positions are not 1..60: %v", positions)
		}
	}
	ch, err := l.Subscribe(ctx, c, org, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		if e := receive(t, ch); e.Position != i+1 {
			t.Fatalf("replay %d: got position %d", i, e.Position)
		}
	}
}
