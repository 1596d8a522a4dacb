package pubsub_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"admit/internal/pubsub"
	"admit/internal/testutil"
)

func TestPublishReachesOnlyMatchingSubscribersAndNeverBlocks(t *testing.T) {
	b := pubsub.New()
	mine := b.Subscribe("invitation", 1, 1)
	other := b.Subscribe("invitation", 2, 1)
	defer mine.Close()
	defer other.Close()
	b.Publish(pubsub.Event{Topic: "invitation", OrgID: 1, Kind: "SENT", ObjectID: 7})
	b.Publish(pubsub.Event{Topic: "invitation", OrgID: 1, Kind: "SENT", ObjectID: 8}) // buffer full: dropped, not blocking
	if e := <-mine.C; e.ObjectID != 7 {
		t.Fatalf("got %+v, want object 7", e)
	}
	select {
	case e := <-other.C:
		t.Fatalf("organization 2 heard organization 1's event %+v", e)
	default:
	}
	mine.Close()
	if n := b.Subscribers(); n != 1 {
		t.Fatalf("%d subscribers after Close, want 1", n)
	}
}

// Two replicas share one PostgreSQL: an event published on one reaches a
// subscriber on the other.
func TestRelayThroughPostgresReachesOtherReplicas(t *testing.T) {
	if testutil.PostgresURL() == "" {
		t.Skip("needs PostgreSQL: set TEST_DATABASE_URL (CI's second pass does)")
	}
	d := testutil.OpenDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, b := pubsub.New(), pubsub.New()
	for _, br := range []*pubsub.Broker{a, b} {
		if err := br.RelayThroughPostgres(ctx, testutil.PostgresURL(), d.SQL, log); err != nil {
			t.Fatal(err)
		}
	}
	sub := b.Subscribe("invitation", 42, 4)
	defer sub.Close()
	a.Publish(pubsub.Event{Topic: "invitation", OrgID: 42, Kind: "ACCEPTED", ObjectID: 9, At: time.Now()})
	select {
	case e := <-sub.C:
		if e.Kind != "ACCEPTED" || e.ObjectID != 9 {
			t.Fatalf("got %+v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the other replica's subscriber heard nothing")
	}
}
