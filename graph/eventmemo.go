package graph

import (
	"sync"

	"admit/internal/auth"
)

// eventMemo shares, among the subscribers of one event, the work that is the
// same for all of them: re-checking one session, and loading the event's
// object for one viewer (same user, role and rights). With a thousand
// sockets of a few approvers, an event then costs a few queries, not two
// thousand. Each subscriber still gets exactly what its own, current viewer
// may read: the memo only skips asking the same question twice.
type eventMemo struct {
	mu    sync.Mutex
	byKey map[eventKey]*memoEvent
	order []eventKey // oldest first, for eviction
}

// eventKey names one stored event.
type eventKey struct{ org, position int }

type memoEvent struct {
	mu       sync.Mutex
	sessions map[int]*memoCall[*auth.Viewer]
	loads    map[viewerKey]*memoCall[any]
	frames   map[frameKey]*memoCall[[]byte]
}

// frameKey names one subscription response to an event: the same
// operation (query, operation name, variables) run by the same viewer, as
// the socket authenticated and as it is now, answers in the same bytes.
type frameKey struct {
	op              string
	viewer, current viewerKey
}

// viewerKey is everything of a viewer that authorization reads.
type viewerKey struct {
	org, user, role, rank int
	admin, client         bool
}

func keyOf(v *auth.Viewer) viewerKey {
	return viewerKey{org: v.OrgID, user: v.UserID, role: v.RoleID, rank: v.Rank, admin: v.Admin, client: v.Client}
}

// memoCall is one shared call. Its waiters wait on done, which wakes them
// all at once when it closes; sync.Once would hand its mutex from waiter
// to waiter, a thousand wake-ups in a row on the fan-out path.
type memoCall[T any] struct {
	done chan struct{}
	v    T
	err  error
}

// call returns c's result, running fn first if this caller created c.
func (c *memoCall[T]) call(leader bool, fn func() (T, error)) (T, error) {
	if leader {
		defer close(c.done)
		c.v, c.err = fn()
	} else {
		<-c.done
	}
	return c.v, c.err
}

// callOf returns the call of k in calls, creating it (and reporting that the
// caller leads it) when there is none. The caller holds the map's lock.
func callOf[K comparable, T any](calls map[K]*memoCall[T], k K) (c *memoCall[T], leader bool) {
	if c = calls[k]; c == nil {
		c = &memoCall[T]{done: make(chan struct{})}
		calls[k] = c
		leader = true
	}
	return c, leader
}

// memoEvents is how many recent events keep their memo.
const memoEvents = 256

// frameEvents is how many recent events keep their shared frames: a frame
// is wanted while an event fans out, and with subscribers that share no
// operation there is one per socket; a subscriber that reaches an older
// event (a replay) executes its own.
const frameEvents = 8

func (m *eventMemo) event(k eventKey) *memoEvent {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byKey == nil {
		m.byKey = map[eventKey]*memoEvent{}
	}
	e := m.byKey[k]
	if e == nil {
		e = &memoEvent{sessions: map[int]*memoCall[*auth.Viewer]{}, loads: map[viewerKey]*memoCall[any]{},
			frames: map[frameKey]*memoCall[[]byte]{}}
		m.byKey[k] = e
		m.order = append(m.order, k)
		if n := len(m.order); n > frameEvents {
			if old := m.byKey[m.order[n-1-frameEvents]]; old != nil {
				old.mu.Lock()
				old.frames = nil
				old.mu.Unlock()
			}
		}
		if len(m.order) > memoEvents {
			delete(m.byKey, m.order[0])
			m.order = m.order[1:]
		}
	}
	return e
}

// session runs check once per session for this event.
func (e *memoEvent) session(id int, check func() (*auth.Viewer, error)) (*auth.Viewer, error) {
	e.mu.Lock()
	c, leader := callOf(e.sessions, id)
	e.mu.Unlock()
	return c.call(leader, check)
}

// load runs fn once per viewer for this event.
func (e *memoEvent) load(v *auth.Viewer, fn func() (any, error)) (any, error) {
	k := keyOf(v)
	e.mu.Lock()
	c, leader := callOf(e.loads, k)
	e.mu.Unlock()
	return c.call(leader, fn)
}

// frame runs fn once per frameKey for this event: fn executes the
// operation for one subscriber and returns the response's data, or nil when
// it cannot be shared (errors, a closed socket).
func (e *memoEvent) frame(k frameKey, fn func() []byte) []byte {
	e.mu.Lock()
	if e.frames == nil { // an old event: no longer shared
		e.mu.Unlock()
		return fn()
	}
	c, leader := callOf(e.frames, k)
	e.mu.Unlock()
	v, _ := c.call(leader, func() ([]byte, error) { return fn(), nil })
	return v
}
