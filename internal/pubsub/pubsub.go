// Package pubsub fans events out to subscribers in this process. Publishers
// never block: a subscriber that falls behind by more than its buffer loses
// events (and is told so by a dropped count) rather than stalling the server.
package pubsub

import (
	"sync"
	"time"
)

// Event is something that happened to an object of one organization.
// Subscribers reload the object with their own viewer, so events carry only
// identifiers, never data another tenant could read.
type Event struct {
	Topic    string // e.g. "invitation"
	OrgID    int
	Kind     string // e.g. SENT, FAILED, ACCEPTED, REVOKED
	ObjectID int
	At       time.Time
	// Workspace events also carry their stored position, so subscribers
	// notice a gap and replay it from the store.
	Position    int
	WorkspaceID int
	Subject     string // JOIN_REQUEST or MEMBERSHIP
	UserID      int
}

// Broker is an in-process event hub.
type Broker struct {
	mu       sync.Mutex
	subs     map[*Subscription]struct{}
	watchers map[*watcher]struct{}
	// remote, when set, publishes through PostgreSQL; every replica's
	// listener (this one's included) then delivers the event locally.
	remote func(Event)
}

// Subscription receives the events of one topic and organization.
type Subscription struct {
	C chan Event
	// Resync is signalled when events may have been missed (the buffer
	// overflowed, or the cross-replica listener reconnected); the
	// subscriber then reads what it missed from the store.
	Resync  chan struct{}
	topic   string
	orgID   int
	broker  *Broker
	dropped int
	// fn, for a subscription made with Notify, receives the events instead
	// of C and Resync.
	fn func(e Event, resync bool)
}

// New returns an empty broker.
func New() *Broker {
	return &Broker{subs: map[*Subscription]struct{}{}, watchers: map[*watcher]struct{}{}}
}

type watcher struct {
	topic string
	fn    func(Event)
}

// Watch calls fn with every event of topic, of every organization, that
// reaches this process, until stop is called. It is for the server's own
// bookkeeping (closing the sockets of ended sessions), not for clients, so
// Subscribers does not count it. fn runs in the publisher's goroutine and
// must not block.
func (b *Broker) Watch(topic string, fn func(Event)) (stop func()) {
	w := &watcher{topic: topic, fn: fn}
	b.mu.Lock()
	b.watchers[w] = struct{}{}
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		delete(b.watchers, w)
		b.mu.Unlock()
	}
}

// Subscribe registers a subscriber before returning, so no event published
// after Subscribe returns is missed.
func (b *Broker) Subscribe(topic string, orgID, buffer int) *Subscription {
	s := &Subscription{C: make(chan Event, buffer), Resync: make(chan struct{}, 1), topic: topic, orgID: orgID, broker: b}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Notify registers fn for the events of one topic and organization, as
// Subscribe does, but without a channel: fn runs in the publisher's
// goroutine, in publication order, and must not block. resync is true (and
// e empty) when events may have been missed. A subscriber that waits for
// events then holds no goroutine, only this registration.
func (b *Broker) Notify(topic string, orgID int, fn func(e Event, resync bool)) *Subscription {
	s := &Subscription{topic: topic, orgID: orgID, broker: b, fn: fn}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Close unregisters the subscription. Its channel is not closed, so a
// publisher racing with Close can never send on a closed channel.
func (s *Subscription) Close() {
	s.broker.mu.Lock()
	delete(s.broker.subs, s)
	s.broker.mu.Unlock()
}

// Publish announces e to every replica's subscribers, or to this
// process's when there is no relay. It never blocks on a subscriber.
func (b *Broker) Publish(e Event) {
	b.mu.Lock()
	remote := b.remote
	b.mu.Unlock()
	if remote != nil {
		remote(e)
		return
	}
	b.deliver(e)
}

// deliver hands e to this process's matching subscribers.
func (b *Broker) deliver(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for w := range b.watchers {
		if w.topic == e.Topic {
			w.fn(e)
		}
	}
	for s := range b.subs {
		if s.topic != e.Topic || s.orgID != e.OrgID {
			continue
		}
		if s.fn != nil {
			s.fn(e, false)
			continue
		}
		select {
		case s.C <- e:
		default:
			s.dropped++
			s.resync()
		}
	}
}

func (s *Subscription) resync() {
	if s.fn != nil {
		s.fn(Event{}, true)
		return
	}
	select {
	case s.Resync <- struct{}{}:
	default:
	}
}

// ResyncAll tells every subscriber that it may have missed events.
func (b *Broker) ResyncAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		s.resync()
	}
}

// Relayed reports whether events travel through PostgreSQL, so that a
// publisher may NOTIFY inside its own transaction.
func (b *Broker) Relayed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.remote != nil
}

// Subscribers counts live subscriptions (for tests and metrics).
func (b *Broker) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}
