package ratelimit_test

import (
	"testing"
	"time"

	"admit/internal/ratelimit"
)

func TestLimiterCountsPerKeyAndWindow(t *testing.T) {
	now := time.Unix(1000, 0)
	l := &ratelimit.Limiter{Limit: 2, Window: time.Minute, Now: func() time.Time { return now }}
	for i := 0; i < 2; i++ {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("event %d refused, want allowed", i+1)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait != time.Minute {
		t.Fatalf("third event: ok=%v wait=%v, want refused for 1m", ok, wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another key was refused")
	}
	now = now.Add(61 * time.Second)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("a new window was refused")
	}
}
