package pubsub

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/lib/pq"
)

// channel is the PostgreSQL NOTIFY channel Admit's replicas share.
const channel = "admit_events"

// wireEvent is an Event as sent through NOTIFY: identifiers only, far below
// PostgreSQL's 8000-byte payload limit.
type wireEvent struct {
	Topic string    `json:"t"`
	Org   int       `json:"o"`
	Kind  string    `json:"k"`
	ID    int       `json:"i"`
	At    time.Time `json:"a"`
	Pos   int       `json:"p,omitempty"`
	WS    int       `json:"w,omitempty"`
	Subj  string    `json:"s,omitempty"`
	User  int       `json:"u,omitempty"`
}

func toWire(e Event) wireEvent {
	return wireEvent{Topic: e.Topic, Org: e.OrgID, Kind: e.Kind, ID: e.ObjectID, At: e.At,
		Pos: e.Position, WS: e.WorkspaceID, Subj: e.Subject, User: e.UserID}
}

// NotifyStatement is the SQL that announces e to every replica. Run inside
// a transaction, PostgreSQL delivers it only if and when that commits, in
// commit order.
func NotifyStatement(e Event) (string, []any) {
	payload, _ := json.Marshal(toWire(e))
	return "SELECT pg_notify($1, $2)", []any{channel, string(payload)}
}

// RelayThroughPostgres makes b publish through PostgreSQL NOTIFY and
// deliver what any replica publishes, so a subscriber on one replica hears
// events that happened on another. It holds one dedicated LISTEN
// connection (not through a transaction-pooling proxy) until ctx ends.
func (b *Broker) RelayThroughPostgres(ctx context.Context, dsn string, db *sql.DB, log *slog.Logger) error {
	ready := make(chan error, 1)
	l := pq.NewListener(dsn, time.Second, time.Minute, func(ev pq.ListenerEventType, err error) {
		switch ev {
		case pq.ListenerEventConnected:
			select {
			case ready <- nil:
			default:
			}
		case pq.ListenerEventConnectionAttemptFailed:
			select {
			case ready <- err:
			default:
			}
		case pq.ListenerEventDisconnected:
			log.Warn("pubsub: lost the LISTEN connection; events may be missed until it is back", "error", err)
		}
	})
	if err := l.Listen(channel); err != nil {
		l.Close()
		return fmt.Errorf("pubsub: listen: %w", err)
	}
	select {
	case err := <-ready:
		if err != nil {
			l.Close()
			return fmt.Errorf("pubsub: listen: %w", err)
		}
	case <-time.After(10 * time.Second):
		l.Close()
		return fmt.Errorf("pubsub: listen: no connection after 10s")
	}
	b.mu.Lock()
	b.remote = func(e Event) {
		payload, _ := json.Marshal(toWire(e))
		// After the change committed (callers publish after commit), so
		// NOTIFY needs no transaction of its own.
		if _, err := db.ExecContext(context.WithoutCancel(ctx), "SELECT pg_notify($1, $2)", channel, string(payload)); err != nil {
			log.Error("pubsub: notify failed; delivering locally only", "error", err)
			b.deliver(e)
		}
	}
	b.mu.Unlock()
	go func() {
		defer l.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case n := <-l.Notify:
				if n == nil {
					// Reconnected: what was sent meanwhile is lost here,
					// so subscribers replay it from the event store.
					b.ResyncAll()
					continue
				}
				var w wireEvent
				if err := json.Unmarshal([]byte(n.Extra), &w); err != nil {
					log.Warn("pubsub: bad notification", "error", err)
					continue
				}
				b.deliver(Event{Topic: w.Topic, OrgID: w.Org, Kind: w.Kind, ObjectID: w.ID, At: w.At,
					Position: w.Pos, WorkspaceID: w.WS, Subject: w.Subj, UserID: w.User})
			case <-time.After(90 * time.Second):
				go func() { _ = l.Ping() }() // notice a dead connection
			}
		}
	}()
	return nil
}
