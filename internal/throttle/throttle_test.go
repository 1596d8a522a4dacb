package throttle_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"admit/internal/testutil"
	"admit/internal/throttle"
)

func TestHitCountsInAWindowSharedByEveryClient(t *testing.T) {
	t.Parallel()
	d := testutil.OpenDB(t)
	clock := &testutil.Clock{}
	clock.Advance(time.Duration(time.Now().UnixNano()))
	// Two counters on one database stand for two replicas.
	replicas := []*throttle.Counter{{Dialect: d.Dialect, Now: clock.Now}, {Dialect: d.Dialect, Now: clock.Now}}
	ctx := context.Background()
	for i := range 5 {
		ok, _, err := replicas[i%2].Hit(ctx, d.Client, "k", 5, time.Minute)
		if err != nil || !ok {
			t.Fatalf("hit %d: ok=%v err=%v, want allowed", i+1, ok, err)
		}
	}
	ok, wait, err := replicas[0].Hit(ctx, d.Client, "k", 5, time.Minute)
	if err != nil || ok {
		t.Fatalf("6th hit: ok=%v err=%v, want refused", ok, err)
	}
	if wait <= 0 || wait > time.Minute {
		t.Fatalf("wait = %v, want within the window", wait)
	}
	if ok, _, _ := replicas[1].Hit(ctx, d.Client, "other", 5, time.Minute); !ok {
		t.Fatal("another key: want allowed")
	}
	// Undo takes one back; Reset all of them.
	if err := replicas[0].Reset(ctx, d.Client, "k"); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := replicas[0].Hit(ctx, d.Client, "k", 1, time.Minute); !ok {
		t.Fatal("after Reset: want allowed")
	}
	if err := replicas[0].Undo(ctx, d.Client, "k"); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := replicas[0].Hit(ctx, d.Client, "k", 1, time.Minute); !ok {
		t.Fatal("after Undo: want allowed")
	}
	if ok, _, _ := replicas[0].Hit(ctx, d.Client, "k", 1, time.Minute); ok {
		t.Fatal("over the limit again: want refused")
	}
	// A new window starts when the old one ends.
	clock.Advance(time.Minute)
	if ok, _, _ := replicas[1].Hit(ctx, d.Client, "k", 1, time.Minute); !ok {
		t.Fatal("next window: want allowed")
	}
}

// Concurrent hits are counted exactly: of 3×limit at once, limit pass.
func TestHitIsAtomic(t *testing.T) {
	t.Parallel()
	d := testutil.OpenDB(t)
	c := &throttle.Counter{Dialect: d.Dialect}
	const limit = 10
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for range 3 * limit {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, _, err := c.Hit(context.Background(), d.Client, "burst", limit, time.Hour)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if allowed != limit {
		t.Fatalf("%d of %d concurrent hits allowed, want %d", allowed, 3*limit, limit)
	}
}

func TestAddress(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":                  "192.0.2.1",
		"::ffff:192.0.2.1":           "192.0.2.1",
		"2001:db8:1:2:3:4:5:6":       "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1":       "2001:db8:1:2::/64",
		"not an address, kept as is": "not an address, kept as is",
	} {
		if got := throttle.Address(in); got != want {
			t.Errorf("Address(%q) = %q, want %q", in, got, want)
		}
	}
}
