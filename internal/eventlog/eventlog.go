// Package eventlog stores workspace events (join requests, memberships) and
// streams them to subscribers, resumably. Each organization's events get
// positions 1, 2, 3… in commit order with no gaps: the position is taken
// from a counter on the organization row at commit time, and that row lock
// is held until the commit, so the next transaction's position can only be
// assigned, and seen, after this one is visible. A subscriber that sees
// position p knows every event before p is in the store, so it can replay
// whatever it missed (a dropped connection, an overflowing buffer, a lost
// NOTIFY) and never deliver one twice.
package eventlog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"entgo.io/ent/dialect"

	"admit/ent"
	"admit/ent/organization"
	"admit/ent/workspaceevent"
	"admit/internal/pubsub"
	"admit/internal/rule"
)

// Subjects of workspace events.
const (
	JoinRequest = "JOIN_REQUEST"
	Membership  = "MEMBERSHIP"
)

// topic is the broker topic of workspace events.
const topic = "workspace"

// Event is one stored workspace event.
type Event struct {
	Position    int
	OrgID       int
	WorkspaceID int
	Subject     string // JoinRequest or Membership
	Type        string // CREATED, APPROVED, … / ADDED, JOINED, …
	ObjectID    int    // the join request or membership
	UserID      int    // for membership events: the member
	At          time.Time
}

// Log records and streams events.
type Log struct {
	Broker  *pubsub.Broker
	Dialect string
	Now     func() time.Time
	// Buffer is each subscriber's queue of live events (default 8); a
	// subscriber that falls further behind is resynced from the store.
	Buffer int

	pending sync.Map // *ent.Tx → *batch
}

type batch struct {
	mu     sync.Mutex
	events []Event
}

// Record adds e to the transaction in ctx. It is stored and published when
// the transaction commits, and forgotten if it rolls back.
func (l *Log) Record(ctx context.Context, e Event) error {
	tx := ent.TxFromContext(ctx)
	if tx == nil {
		return errors.New("eventlog.Record: no transaction in context")
	}
	if l.Now != nil {
		e.At = l.Now()
	} else {
		e.At = time.Now()
	}
	v, loaded := l.pending.LoadOrStore(tx, &batch{})
	b := v.(*batch)
	b.mu.Lock()
	b.events = append(b.events, e)
	b.mu.Unlock()
	if loaded {
		return nil
	}
	tx.OnRollback(func(next ent.Rollbacker) ent.Rollbacker {
		return ent.RollbackFunc(func(ctx context.Context, tx *ent.Tx) error {
			l.pending.Delete(tx)
			return next.Rollback(ctx, tx)
		})
	})
	tx.OnCommit(func(next ent.Committer) ent.Committer {
		return ent.CommitFunc(func(ctx context.Context, tx *ent.Tx) error {
			l.pending.Delete(tx)
			b.mu.Lock()
			events := b.events
			b.mu.Unlock()
			relayed := l.Broker != nil && l.Broker.Relayed()
			if err := l.write(ctx, tx.Client(), events, relayed); err != nil {
				_ = tx.Rollback()
				return err
			}
			if err := next.Commit(ctx, tx); err != nil {
				return err
			}
			if !relayed && l.Broker != nil {
				for _, e := range events {
					l.Broker.Publish(e.pubsub())
				}
			}
			return nil
		})
	})
	return nil
}

// write assigns positions and stores events, last thing before commit so
// the organization row stays locked as briefly as possible. With a relay,
// the NOTIFY goes out in the same transaction: PostgreSQL delivers it at
// commit, in commit order, or never.
func (l *Log) write(ctx context.Context, c *ent.Client, events []Event, relayed bool) error {
	ctx = rule.System(ctx)
	byOrg := map[int][]int{}
	var orgs []int
	for i, e := range events {
		if _, ok := byOrg[e.OrgID]; !ok {
			orgs = append(orgs, e.OrgID)
		}
		byOrg[e.OrgID] = append(byOrg[e.OrgID], i)
	}
	for _, org := range orgs {
		idx := byOrg[org]
		rows, err := c.QueryContext(ctx,
			l.rebind("UPDATE organizations SET event_position = event_position + ? WHERE id = ? RETURNING event_position"),
			len(idx), org)
		if err != nil {
			return fmt.Errorf("eventlog: position: %w", err)
		}
		last := 0
		if rows.Next() {
			err = rows.Scan(&last)
		}
		if cerr := rows.Close(); err == nil {
			err = cerr
		}
		if err != nil || last == 0 {
			return fmt.Errorf("eventlog: position of organization %d: %v", org, err)
		}
		first := last - len(idx) + 1
		creates := make([]*ent.WorkspaceEventCreate, len(idx))
		for k, i := range idx {
			events[i].Position = first + k
			e := events[i]
			creates[k] = c.WorkspaceEvent.Create().
				SetOrganizationID(e.OrgID).
				SetPosition(e.Position).
				SetWorkspaceID(e.WorkspaceID).
				SetTopic(workspaceevent.Topic(e.Subject)).
				SetType(e.Type).
				SetObjectID(e.ObjectID).
				SetUserID(e.UserID).
				SetCreatedAt(e.At)
		}
		if err := c.WorkspaceEvent.CreateBulk(creates...).Exec(ctx); err != nil {
			return fmt.Errorf("eventlog: store: %w", err)
		}
	}
	if relayed {
		for _, e := range events {
			q, args := pubsub.NotifyStatement(e.pubsub())
			if _, err := c.ExecContext(ctx, q, args...); err != nil {
				return fmt.Errorf("eventlog: notify: %w", err)
			}
		}
	}
	return nil
}

func (l *Log) rebind(q string) string {
	if l.Dialect != dialect.Postgres {
		return q
	}
	out := make([]byte, 0, len(q)+8)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			out = fmt.Appendf(out, "$%d", n)
			continue
		}
		out = append(out, q[i])
	}
	return string(out)
}

func (e Event) pubsub() pubsub.Event {
	return pubsub.Event{Topic: topic, OrgID: e.OrgID, Kind: e.Type, ObjectID: e.ObjectID, At: e.At,
		Position: e.Position, WorkspaceID: e.WorkspaceID, Subject: e.Subject, UserID: e.UserID}
}

func fromPubsub(p pubsub.Event) Event {
	return Event{Position: p.Position, OrgID: p.OrgID, WorkspaceID: p.WorkspaceID, Subject: p.Subject,
		Type: p.Kind, ObjectID: p.ObjectID, UserID: p.UserID, At: p.At}
}

// Latest returns the position of org's newest event (0 when none).
func (l *Log) Latest(ctx context.Context, c *ent.Client, orgID int) (int, error) {
	pos, err := c.Organization.Query().
		Where(organization.ID(orgID)).
		Select(organization.FieldEventPosition).
		Int(rule.System(ctx))
	if err != nil {
		return 0, fmt.Errorf("eventlog.Latest: %w", err)
	}
	return pos, nil
}

// page is how many stored events one replay query reads.
const page = 500

// Subscribe streams org's events after position after (or, when after is
// negative, from now on) on a channel, as Follow does. The channel closes
// when ctx ends or the store cannot be read.
func (l *Log) Subscribe(ctx context.Context, c *ent.Client, orgID, after int) (<-chan Event, error) {
	out := make(chan Event)
	err := l.Follow(ctx, c, orgID, after, func(e Event) bool {
		select {
		case out <- e:
			return true
		case <-ctx.Done():
			return false
		}
	}, func() { close(out) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Follow calls deliver with org's events after position after (or, when
// after is negative, from now on), in position order with no gap and no
// repeat, from one goroutine at a time, until ctx ends, deliver returns
// false or the store cannot be read; then it calls done. It registers before
// it returns, so nothing that commits after Follow returns is missed.
//
// A follower waiting for events holds no goroutine: the broker queues each
// event on it and starts one to deliver the queue, which ends when the queue
// is empty. With thousands of idle subscribers that is thousands of
// goroutine stacks fewer.
func (l *Log) Follow(ctx context.Context, c *ent.Client, orgID, after int, deliver func(Event) bool, done func()) error {
	f := &follower{ctx: ctx, c: c, orgID: orgID, deliver: deliver, done: done, buffer: l.Buffer, last: after}
	if f.buffer <= 0 {
		f.buffer = 8
	}
	// Held as running until set up, so no delivery starts before last is
	// known; events that arrive meanwhile wait in the queue.
	f.running = true
	f.sub = l.Broker.Notify(topic, orgID, f.push)
	if after < 0 {
		var err error
		if f.last, err = l.Latest(ctx, c, orgID); err != nil {
			f.sub.Close()
			return err
		}
	} else {
		f.resync = true // replay what the store holds after the cursor
	}
	f.stopWait = context.AfterFunc(ctx, f.wake)
	f.mu.Lock()
	f.running = false
	f.startLocked()
	return nil
}

// follower is one Follow: the events queued for it, and whether a
// goroutine is delivering them.
type follower struct {
	ctx      context.Context
	c        *ent.Client
	orgID    int
	deliver  func(Event) bool
	done     func()
	buffer   int
	sub      *pubsub.Subscription
	stopWait func() bool

	mu      sync.Mutex
	queue   []Event
	resync  bool // read the store after last before the queue
	running bool // a goroutine is delivering (or Follow is setting up)
	stopped bool

	last int // the last position delivered; only the running goroutine uses it
}

// push is the broker's callback: it queues e (or, when the queue is full
// or events were missed, marks the follower for a replay from the store)
// and starts delivering. It never blocks.
func (f *follower) push(p pubsub.Event, resync bool) {
	f.mu.Lock()
	switch {
	case resync || len(f.queue) >= f.buffer:
		// The replay reads every queued event from the store too.
		f.resync, f.queue = true, nil
	default:
		f.queue = append(f.queue, fromPubsub(p))
	}
	f.startLocked()
}

// wake runs when ctx ends, so that the follower stops and calls done.
func (f *follower) wake() {
	f.mu.Lock()
	f.startLocked()
}

// startLocked starts a delivering goroutine if there is work and none is
// running, and unlocks f.mu.
func (f *follower) startLocked() {
	start := !f.running && !f.stopped && (f.resync || len(f.queue) > 0 || f.ctx.Err() != nil)
	if start {
		f.running = true
	}
	f.mu.Unlock()
	if start {
		go f.run()
	}
}

// run delivers the queue until it is empty, then returns; or stops the
// follower for good.
func (f *follower) run() {
	for {
		f.mu.Lock()
		resync, queue := f.resync, f.queue
		f.resync, f.queue = false, nil
		if f.ctx.Err() == nil && !resync && len(queue) == 0 {
			f.running = false
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
		ok := f.ctx.Err() == nil && (!resync || f.replay(0))
		for _, e := range queue {
			if !ok {
				break
			}
			ok = f.handle(e)
		}
		if !ok {
			f.stop()
			return
		}
	}
}

func (f *follower) stop() {
	f.mu.Lock()
	f.stopped, f.queue = true, nil
	f.mu.Unlock()
	f.sub.Close()
	f.stopWait()
	f.done()
}

// handle delivers a live event: skipped when a replay already delivered
// it, and preceded by a replay of what it would skip.
func (f *follower) handle(e Event) bool {
	switch {
	case e.Position <= f.last:
		return true
	case e.Position == f.last+1:
		return f.send(e)
	default:
		return f.replay(e.Position)
	}
}

func (f *follower) send(e Event) bool {
	if f.ctx.Err() != nil || !f.deliver(e) {
		return false
	}
	f.last = e.Position
	return true
}

// replay sends what the store holds after last, up to upTo (0: all).
func (f *follower) replay(upTo int) bool {
	for {
		q := f.c.WorkspaceEvent.Query().
			Where(workspaceevent.OrganizationID(f.orgID), workspaceevent.PositionGT(f.last)).
			Order(ent.Asc(workspaceevent.FieldPosition)).
			Limit(page)
		if upTo > 0 {
			q = q.Where(workspaceevent.PositionLTE(upTo))
		}
		rows, err := q.All(rule.System(f.ctx))
		if err != nil {
			return false
		}
		for _, r := range rows {
			if !f.send(stored(r)) {
				return false
			}
		}
		if len(rows) < page {
			return true
		}
	}
}

func stored(r *ent.WorkspaceEvent) Event {
	return Event{Position: r.Position, OrgID: r.OrganizationID, WorkspaceID: r.WorkspaceID,
		Subject: string(r.Topic), Type: r.Type, ObjectID: r.ObjectID, UserID: r.UserID, At: r.CreatedAt}
}
