package password

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestHashAndVerify(t *testing.T) {
	ctx := context.Background()
	h, err := Hash(ctx, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	for pw, want := range map[string]bool{"correct horse battery": true, "wrong horse battery": false} {
		got, err := Verify(ctx, h, pw)
		if err != nil || got != want {
			t.Errorf("Verify(%q) = %v, %v; want %v", pw, got, err, want)
		}
	}
	if ok, err := Verify(ctx, "", "anything at all"); ok || err != nil {
		t.Errorf("Verify without a hash = %v, %v; want false, nil", ok, err)
	}
}

// A burst of hashes never runs more than Slots() at once (each holds
// 19 MiB), and a caller whose context ends while waiting gives up.
func TestHashingIsBounded(t *testing.T) {
	var running, peak atomic.Int32
	during = func() {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		running.Add(-1)
	}
	t.Cleanup(func() { during = nil })

	h := hash("correct horse battery")
	var wg sync.WaitGroup
	for i := range 4 * Slots() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				_, _ = Hash(context.Background(), "correct horse battery")
			} else {
				_, _ = Verify(context.Background(), h, "correct horse battery")
			}
		}()
	}
	wg.Wait()
	if p := int(peak.Load()); p > Slots() || p < 1 {
		t.Fatalf("peak concurrent hashes = %d, want 1..%d", p, Slots())
	}

	// Every slot taken: a caller waits, and stops when its context ends.
	for range Slots() {
		slots <- struct{}{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := Verify(ctx, h, "correct horse battery"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Verify with every slot busy: err = %v, want the context's deadline", err)
	}
	if _, err := Hash(ctx, "correct horse battery"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Hash with every slot busy: err = %v, want the context's deadline", err)
	}
	for range Slots() {
		<-slots
	}
}
