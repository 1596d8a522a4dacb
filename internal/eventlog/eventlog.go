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
// repeat, from one goroutine, until ctx ends, deliver returns false or the
// store cannot be read; then it calls done. It registers before it
// returns, so nothing that commits after Follow returns is missed.
func (l *Log) Follow(ctx context.Context, c *ent.Client, orgID, after int, deliver func(Event) bool, done func()) error {
	buffer := l.Buffer
	if buffer <= 0 {
		buffer = 8
	}
	sub := l.Broker.Subscribe(topic, orgID, buffer)
	last := after
	if after < 0 {
		var err error
		if last, err = l.Latest(ctx, c, orgID); err != nil {
			sub.Close()
			return err
		}
	}
	go func() {
		defer done()
		defer sub.Close()
		send := func(e Event) bool {
			if ctx.Err() != nil || !deliver(e) {
				return false
			}
			last = e.Position
			return true
		}
		// replay sends what the store holds after last, up to upTo (0: all).
		replay := func(upTo int) bool {
			for {
				q := c.WorkspaceEvent.Query().
					Where(workspaceevent.OrganizationID(orgID), workspaceevent.PositionGT(last)).
					Order(ent.Asc(workspaceevent.FieldPosition)).
					Limit(page)
				if upTo > 0 {
					q = q.Where(workspaceevent.PositionLTE(upTo))
				}
				rows, err := q.All(rule.System(ctx))
				if err != nil {
					return false
				}
				for _, r := range rows {
					if !send(stored(r)) {
						return false
					}
				}
				if len(rows) < page {
					return true
				}
			}
		}
		if after >= 0 && !replay(0) {
			return
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-sub.Resync:
				if !replay(0) {
					return
				}
			case p := <-sub.C:
				e := fromPubsub(p)
				switch {
				case e.Position <= last:
					// Already delivered by a replay.
				case e.Position == last+1:
					if !send(e) {
						return
					}
				default:
					if !replay(e.Position) {
						return
					}
				}
			}
		}
	}()
	return nil
}

func stored(r *ent.WorkspaceEvent) Event {
	return Event{Position: r.Position, OrgID: r.OrganizationID, WorkspaceID: r.WorkspaceID,
		Subject: string(r.Topic), Type: r.Type, ObjectID: r.ObjectID, UserID: r.UserID, At: r.CreatedAt}
}
