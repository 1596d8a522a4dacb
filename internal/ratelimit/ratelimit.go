// Package ratelimit counts events per key in fixed windows, in memory. Each
// replica counts on its own, so with R replicas behind a balancer a client
// gets at most R times the limit; that bounds abuse, which is its job.
package ratelimit

import (
	"sync"
	"time"
)

// Limiter allows Limit events per key per Window.
type Limiter struct {
	Limit  int
	Window time.Duration
	Now    func() time.Time

	mu      sync.Mutex
	windows map[string]*window
	sweep   time.Time
}

type window struct {
	start time.Time
	n     int
}

// Allow records an event for key. When the key is over its limit it
// returns false and how long until the window resets.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	if l == nil || l.Limit <= 0 {
		return true, 0
	}
	now := time.Now()
	if l.Now != nil {
		now = l.Now()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.windows == nil {
		l.windows = map[string]*window{}
	}
	if now.Sub(l.sweep) > l.Window {
		// Forget finished windows so the map cannot grow without bound.
		for k, w := range l.windows {
			if now.Sub(w.start) >= l.Window {
				delete(l.windows, k)
			}
		}
		l.sweep = now
	}
	w := l.windows[key]
	if w == nil || now.Sub(w.start) >= l.Window {
		w = &window{start: now}
		l.windows[key] = w
	}
	if w.n >= l.Limit {
		return false, w.start.Add(l.Window).Sub(now)
	}
	w.n++
	return true, 0
}
