// Package outbox sends the queued Delivery rows. Rows are written in the
// same transaction as what caused them, so a message is never lost nor sent
// for a rolled-back change; the worker claims rows, sends them outside any
// transaction, and records the outcome. With several replicas on PostgreSQL
// each row is claimed by one worker (FOR UPDATE SKIP LOCKED); a worker that
// dies mid-send leaves a lease that expires, and the row is sent again.
package outbox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"golang.org/x/sync/errgroup"

	"admit/ent"
	"admit/ent/delivery"
	"admit/ent/invitation"
	"admit/ent/joinrequest"
	"admit/internal/account"
	"admit/internal/db"
	"admit/internal/invite"
	"admit/internal/mail"
	"admit/internal/phone"
	"admit/internal/pubsub"
	"admit/internal/rule"
	"admit/internal/secret"
	"admit/internal/sms"
	"admit/internal/telemetry"
)

// Worker sends queued deliveries.
type Worker struct {
	Client  *ent.Client
	Dialect string
	Sender  mail.Sender
	// SMS sends the deliveries of the SMS channel (invitations to phones).
	SMS sms.Sender
	// SMSLimits guard the SMS channel against pumping and floods.
	SMSLimits SMSLimits
	Invites   *invite.Service
	Broker    *pubsub.Broker
	Log       *slog.Logger
	Now       func() time.Time
	// AcceptURL turns an invitation token into the link in the message.
	AcceptURL func(token string) string
	// MessageIDDomain is the right-hand side of Message-IDs.
	MessageIDDomain string
	// SignInURL is where "you already have an account" messages point.
	SignInURL string
	// JoinRequestURL turns a join requester's token into the link that
	// confirms the request.
	JoinRequestURL func(token string) string
	// Metrics counts sends by channel and result; may be nil.
	Metrics interface{ Sent(channel, result string) }
	// Accounts derives password reset links; ResetURL turns a reset token
	// into the link in the message.
	Accounts *account.Service
	ResetURL func(token string) string

	// MaxAge is how long a message that keeps failing for temporary
	// reasons (the relay is down) is retried, from when it was queued
	// (default 24h); then it is FAILED, and admins may retry it.
	MaxAge      time.Duration
	MaxAttempts int           // optional cap on attempts before FAILED (0, the default: only MaxAge)
	BaseBackoff time.Duration // first retry delay (default 30s); doubles, with full jitter
	MaxBackoff  time.Duration // cap on one delay (default 1h)
	Lease       time.Duration // how long a claim lasts (default 2m)
	Batch       int           // rows claimed at a time (default 50)
	// Concurrency is how many messages of a batch are sent at once (default
	// 4): sending one at a time would leave a 10,000-row import waiting on
	// 10,000 relay round trips in a row. main keeps as many SMTP sessions.
	Concurrency int
	Poll        time.Duration // idle wait between polls (default 2s)
	// Gather is how long a kicked idle worker waits before it claims, so
	// that invitations sent one at a time go out in batches: without it
	// every single invite cost a claim, a load and their commits of its own
	// (PostgreSQL CPU per invite 1.4–2.4 ms instead of 0.8–1.4 ms,
	// BENCHMARKS.md "Peer comparison"). Default 50ms; a message waits
	// at most that much longer.
	Gather time.Duration
	// Drain bounds how long, once Run's context ends, the messages already
	// being sent may take to finish (default 20s). They are recorded on a
	// context that outlives the signal; claimed rows not yet started are
	// released for another worker (or the next start) at once.
	Drain time.Duration

	kick  chan struct{}
	once  sync.Once
	smsMu sync.Mutex
}

func (w *Worker) init() {
	w.once.Do(func() {
		w.kick = make(chan struct{}, 1)
		if w.MaxAge == 0 {
			w.MaxAge = 24 * time.Hour
		}
		if w.BaseBackoff == 0 {
			w.BaseBackoff = 30 * time.Second
		}
		if w.MaxBackoff == 0 {
			w.MaxBackoff = time.Hour
		}
		if w.Lease == 0 {
			w.Lease = 2 * time.Minute
		}
		if w.Batch == 0 {
			w.Batch = 50
		}
		if w.Concurrency == 0 {
			w.Concurrency = 4
		}
		if w.Poll == 0 {
			w.Poll = 2 * time.Second
		}
		if w.Gather == 0 {
			w.Gather = 50 * time.Millisecond
		}
		if w.Drain == 0 {
			w.Drain = 20 * time.Second
		}

		if w.Now == nil {
			w.Now = time.Now
		}
		if w.Log == nil {
			w.Log = slog.Default()
		}
	})
}

// Kick wakes the worker (after new rows commit) without blocking.
func (w *Worker) Kick() {
	w.init()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run sends until ctx ends.
func (w *Worker) Run(ctx context.Context) {
	w.init()
	for {
		n, err := w.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			w.Log.ErrorContext(ctx, "outbox: run failed", "error", err)
		}
		if n >= w.Batch && err == nil {
			continue // a full batch: there may be more
		}
		// A short batch took every due row; rows queued since have kicked.
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
			select {
			case <-ctx.Done():
				return
			case <-time.After(w.Gather):
			}
		case <-time.After(w.Poll):
		}
	}
}

// RunOnce claims one batch of due rows and sends them. It returns how many
// rows it handled.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	w.init()
	// On SQLite the worker's writes take every other turn when requests
	// queue for the writer, so it keeps sending under load.
	ctx = db.WithPriority(rule.System(ctx))
	ids, err := w.claim(ctx)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	// One query per edge for the whole batch, not per row.
	rows, err := w.Client.Delivery.Query().
		Where(delivery.IDIn(ids...)).
		Order(ent.Asc(delivery.FieldID)).
		WithInvitation(func(q *ent.InvitationQuery) {
			q.WithOrganization().WithRole().WithWorkspace().WithInviter()
		}).
		All(ctx)
	if err != nil {
		return 0, fmt.Errorf("outbox: load: %w", err)
	}
	// Sends run on a context the stop signal does not cancel at once: a
	// message handed to the relay must be recorded as sent, or it would be
	// sent again when its lease runs out. Once ctx ends they get Drain to
	// finish; rows not started by then are released.
	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	go func() {
		select {
		case <-ctx.Done():
			t := time.NewTimer(w.Drain)
			defer t.Stop()
			select {
			case <-t.C:
				stopWork()
			case <-work.Done():
			}
		case <-work.Done():
		}
	}()
	// A failure to record one row does not stop the others: every claimed
	// row is settled or, failing that, its lease runs out and it is retried.
	var g errgroup.Group
	g.SetLimit(w.Concurrency)
	for _, d := range rows {
		g.Go(func() error {
			if ctx.Err() != nil {
				return w.release(work, d.ID)
			}
			return w.send(work, d)
		})
	}
	return len(ids), g.Wait()
}

// queuedAt is when d last entered the queue.
func queuedAt(d *ent.Delivery) time.Time {
	if d.QueuedAt != nil {
		return *d.QueuedAt
	}
	return d.CreatedAt
}

// release hands a claimed row back unsent (shutting down).
func (w *Worker) release(ctx context.Context, id int) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := w.Client.Delivery.Update().
		Where(delivery.ID(id), delivery.StatusEQ(delivery.StatusSENDING)).
		SetStatus(delivery.StatusQUEUED).ClearLeaseUntil().
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("outbox: release %d: %w", id, err)
	}
	return nil
}

// claim marks a batch of due rows as being sent by this worker, in one
// statement: UPDATE … WHERE id IN (SELECT … LIMIT n [FOR UPDATE SKIP LOCKED])
// RETURNING id. On PostgreSQL rows another replica is claiming are skipped,
// not waited for; SQLite has one writer at a time anyway.
func (w *Worker) claim(ctx context.Context) ([]int, error) {
	now := w.Now()
	t := entsql.Dialect(w.Dialect)
	due := t.Select(delivery.FieldID).
		From(t.Table(delivery.Table)).
		Where(entsql.Or(
			entsql.And(entsql.EQ(delivery.FieldStatus, delivery.StatusQUEUED.String()), entsql.LTE(delivery.FieldNextAttemptAt, now)),
			entsql.And(entsql.EQ(delivery.FieldStatus, delivery.StatusSENDING.String()), entsql.LT(delivery.FieldLeaseUntil, now)),
		)).
		OrderBy(delivery.FieldID).
		Limit(w.Batch)
	if w.Dialect == dialect.Postgres {
		due.ForUpdate(entsql.WithLockAction(entsql.SkipLocked))
	}
	query, args := t.Update(delivery.Table).
		Set(delivery.FieldStatus, delivery.StatusSENDING.String()).
		Set(delivery.FieldLeaseUntil, now.Add(w.Lease)).
		Where(entsql.In(delivery.FieldID, due)).
		Returning(delivery.FieldID).
		Query()
	rows, err := w.Client.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("outbox: claim: %w", err)
	}
	defer rows.Close()
	var ids []int
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("outbox: claim: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

var errSuperseded = errors.New("superseded")

// SMSLimits are the SMS channel's guards. Texts over a cap are held (sent
// later, not failed); numbers Admit must never text fail at once.
type SMSLimits struct {
	// Regions, when set, are the only regions whose numbers are texted.
	Regions []string
	// PerNumber texts to one number per NumberWindow (default 3 per 10
	// minutes).
	PerNumber    int
	NumberWindow time.Duration
	// PerCountryDay texts per calling code per 24 hours (default 1,000),
	// so a burst to one country's numbers cannot run up a bill.
	PerCountryDay int
}

// smsHold reports how long a text to number must wait for the caps.
func (w *Worker) smsHold(ctx context.Context, number string, now time.Time) (time.Duration, string, error) {
	l := w.SMSLimits
	perNumber, window, perCountry := cmp.Or(l.PerNumber, 3), cmp.Or(l.NumberWindow, 10*time.Minute), cmp.Or(l.PerCountryDay, 1000)
	recent, err := w.Client.Delivery.Query().
		Where(delivery.ChannelEQ(delivery.ChannelSMS), delivery.Recipient(number), delivery.StatusEQ(delivery.StatusSENT), delivery.SentAtGT(now.Add(-window))).
		Order(ent.Asc(delivery.FieldSentAt)).
		Limit(perNumber).
		All(ctx)
	if err != nil {
		return 0, "", fmt.Errorf("outbox: SMS cap: %w", err)
	}
	if len(recent) >= perNumber {
		wait := recent[0].SentAt.Add(window).Sub(now)
		return max(wait, time.Second), fmt.Sprintf("held: %d texts to this number in %s", perNumber, window), nil
	}
	cc := phone.CountryCode(number)
	if cc == 0 {
		return 0, "", nil
	}
	n, err := w.Client.Delivery.Query().
		Where(delivery.ChannelEQ(delivery.ChannelSMS), delivery.RecipientHasPrefix(fmt.Sprintf("+%d", cc)), delivery.StatusEQ(delivery.StatusSENT), delivery.SentAtGT(now.Add(-24*time.Hour))).
		Count(ctx)
	if err != nil {
		return 0, "", fmt.Errorf("outbox: SMS cap: %w", err)
	}
	if n >= perCountry {
		return time.Hour, fmt.Sprintf("held: %d texts to +%d numbers in 24 hours", perCountry, cc), nil
	}
	return 0, "", nil
}

// send renders and sends one claimed row and records what happened.
func (w *Worker) send(ctx context.Context, d *ent.Delivery) error {
	id := d.ID
	ctx, traced := telemetry.Send(ctx, string(d.Channel), d.Template)
	msg, token, err := w.render(ctx, d)
	defer func() { traced(err) }()
	if errors.Is(err, errSuperseded) {
		return w.Client.Delivery.UpdateOneID(id).SetStatus(delivery.StatusCANCELLED).ClearLeaseUntil().Exec(ctx)
	}
	if err == nil && d.Channel == delivery.ChannelSMS {
		// One text at a time per worker, from the cap's count to the
		// record of the send, so concurrent sends cannot all pass a cap
		// that only one of them fits under. Replicas can still overlap.
		w.smsMu.Lock()
		defer w.smsMu.Unlock()
		if cerr := phone.CheckTextable(d.Recipient, w.SMSLimits.Regions); cerr != nil {
			err = mail.Permanent(cerr)
		} else if wait, why, herr := w.smsHold(ctx, d.Recipient, w.Now()); herr != nil {
			return herr
		} else if wait > 0 {
			// Not an attempt: released to be tried once the cap allows.
			return w.Client.Delivery.UpdateOneID(id).
				SetStatus(delivery.StatusQUEUED).
				SetNextAttemptAt(w.Now().Add(wait)).
				SetLastError(why).
				ClearLeaseUntil().
				Exec(context.WithoutCancel(ctx))
		}
	}
	if err == nil {
		err = w.dispatch(ctx, d, msg)
	}
	now := w.Now()
	attempts := d.Attempts + 1
	up := w.Client.Delivery.UpdateOneID(id).SetAttempts(attempts).ClearLeaseUntil()
	if msg.Text != "" {
		// Keep the bodies as rendered, with the link masked: no token rests here.
		up.SetSubject(msg.Subject).
			SetBodyText(mask(msg.Text, token)).
			SetBodyHTML(mask(msg.HTML, token))
	}
	kind := ""
	switch {
	case err == nil:
		up.SetStatus(delivery.StatusSENT).SetSentAt(now).SetLastError("")
		kind = "SENT"
	case mail.IsPermanent(err) || (w.MaxAttempts > 0 && attempts >= w.MaxAttempts) || now.Sub(queuedAt(d)) >= w.MaxAge:
		up.SetStatus(delivery.StatusFAILED).SetLastError(truncate(err.Error(), 1000))
		kind = "FAILED"
	default:
		up.SetStatus(delivery.StatusQUEUED).SetNextAttemptAt(now.Add(w.backoff(attempts))).SetLastError(truncate(err.Error(), 1000))
	}
	// Recorded whatever happens to ctx: what was sent must not be sent again.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	ctx = rctx
	if uerr := up.Exec(ctx); uerr != nil {
		return fmt.Errorf("outbox: record %d: %w", id, uerr)
	}
	if w.Metrics != nil {
		result := "retry"
		switch kind {
		case "SENT":
			result = "sent"
		case "FAILED":
			result = "failed"
		}
		w.Metrics.Sent(string(d.Channel), result)
	}
	if err != nil {
		w.Log.WarnContext(ctx, "outbox: send failed", "delivery", id, "attempt", attempts, "final", kind == "FAILED", "error", err)
	}
	if inv := d.Edges.Invitation; inv != nil && kind != "" {
		lastErr := ""
		if kind == "FAILED" {
			lastErr = truncate(err.Error(), 1000)
		}
		if lastErr != inv.LastDeliveryError { // most sends change nothing here
			if uerr := w.Client.Invitation.UpdateOneID(inv.ID).SetLastDeliveryError(lastErr).Exec(ctx); uerr != nil {
				return fmt.Errorf("outbox: record %d: %w", id, uerr)
			}
		}
		w.publish(ctx, pubsub.Event{Topic: "invitation", OrgID: inv.OrganizationID, Kind: kind, ObjectID: inv.ID, At: now})
	}
	return nil
}

// dispatch hands a rendered message to its channel's sender.
func (w *Worker) dispatch(ctx context.Context, d *ent.Delivery, msg mail.Message) error {
	if d.Channel != delivery.ChannelSMS {
		return w.Sender.Send(ctx, msg)
	}
	if w.SMS == nil {
		return mail.Permanent(errors.New("outbox: no SMS sender is configured"))
	}
	return w.SMS.Send(ctx, sms.Message{To: d.Recipient, Body: msg.Text})
}

// publish announces e. When events are relayed through PostgreSQL the
// NOTIFY runs on the worker's client (its own pool), not through
// Broker.Publish on the request pool: under a saturating load that pool
// has no connection to spare, and every send would wait for one.
func (w *Worker) publish(ctx context.Context, e pubsub.Event) {
	if w.Broker == nil {
		return
	}
	if !w.Broker.Relayed() {
		w.Broker.Publish(e)
		return
	}
	query, args := pubsub.NotifyStatement(e)
	if _, err := w.Client.ExecContext(ctx, query, args...); err != nil {
		// The row is recorded; a subscriber that missed the event sees the
		// change on its next read.
		w.Log.ErrorContext(ctx, "outbox: notify failed", "error", err)
	}
}

// render builds the message of a row. An invitation message whose
// invitation moved on (resent, revoked, accepted) is superseded.
func (w *Worker) render(ctx context.Context, d *ent.Delivery) (mail.Message, string, error) {
	m := mail.Message{To: d.Recipient, MessageID: fmt.Sprintf("<delivery-%d@%s>", d.ID, w.MessageIDDomain)}
	switch d.Template {
	case invite.TemplateInvitation:
		inv := d.Edges.Invitation
		if inv == nil || inv.Status != invitation.StatusPENDING || inv.TokenGeneration != d.TokenGeneration {
			return m, "", errSuperseded
		}
		token, ok := w.Invites.Token(inv, d.TokenGeneration)
		if !ok {
			return m, "", errSuperseded
		}
		data := mail.Invitation{
			OrganizationName: inv.Edges.Organization.Name,
			RoleName:         inv.Edges.Role.Name,
			Note:             inv.Message,
			AcceptURL:        w.AcceptURL(token),
			ExpiresAt:        inv.ExpiresAt,
			Resent:           d.TokenGeneration > 1,
		}
		if inv.Edges.Inviter != nil {
			data.InviterName = inv.Edges.Inviter.Name
		}
		if inv.Edges.Workspace != nil {
			data.WorkspaceName = inv.Edges.Workspace.Name
		}
		if d.Channel == delivery.ChannelSMS {
			m.Text = sms.InvitationText(data.OrganizationName, data.InviterName, data.WorkspaceName, data.AcceptURL)
			return m, token, nil
		}
		var err error
		m.Subject, m.Text, m.HTML, err = mail.RenderInvitation(data)
		return m, token, err
	case invite.TemplateJoinRequestConfirm:
		jr, err := w.Client.JoinRequest.Query().
			Where(joinrequest.ID(derefInt(d.JoinRequestID))).
			WithWorkspace().
			WithOrganization().
			Only(ctx)
		if ent.IsNotFound(err) {
			return m, "", errSuperseded
		}
		if err != nil {
			return m, "", fmt.Errorf("outbox: join request: %w", err)
		}
		if (jr.Status != joinrequest.StatusUNCONFIRMED && jr.Status != joinrequest.StatusPENDING) || len(jr.TokenNonces) == 0 || w.JoinRequestURL == nil {
			return m, "", errSuperseded
		}
		token := w.Invites.Keys.Derive(secret.JoinRequest, jr.ID, 1, jr.TokenNonces[0])
		m.Subject, m.Text, m.HTML, err = mail.RenderJoinRequestConfirm(mail.JoinRequestConfirm{
			OrganizationName: jr.Edges.Organization.Name,
			WorkspaceName:    jr.Edges.Workspace.Name,
			ConfirmURL:       w.JoinRequestURL(token),
		})
		return m, token, err
	case invite.TemplateAccountExists:
		// Loaded here, not for every batch: only this message needs it.
		org, err := w.Client.Organization.Get(ctx, d.OrganizationID)
		if err != nil {
			return m, "", fmt.Errorf("outbox: organization: %w", err)
		}
		m.Subject, m.Text, m.HTML, err = mail.RenderAccountExists(mail.AccountExists{
			OrganizationName: org.Name,
			SignInURL:        w.SignInURL,
		})
		return m, "", err
	case account.TemplatePasswordReset:
		if d.PasswordResetID == nil || w.Accounts == nil || w.ResetURL == nil {
			return m, "", errSuperseded
		}
		r, err := w.Client.PasswordReset.Get(ctx, *d.PasswordResetID)
		if ent.IsNotFound(err) {
			return m, "", errSuperseded
		}
		if err != nil {
			return m, "", fmt.Errorf("outbox: password reset: %w", err)
		}
		token, ok := w.Accounts.ResetToken(r)
		if !ok { // used, replaced or expired: the link would not work
			return m, "", errSuperseded
		}
		org, err := w.Client.Organization.Get(ctx, d.OrganizationID)
		if err != nil {
			return m, "", fmt.Errorf("outbox: organization: %w", err)
		}
		m.Subject, m.Text, m.HTML, err = mail.RenderPasswordReset(mail.PasswordReset{
			OrganizationName: org.Name,
			ResetURL:         w.ResetURL(token),
		})
		return m, token, err
	default:
		return m, "", fmt.Errorf("outbox: unknown template %q", d.Template)
	}
}

// Stats reports the queue: messages queued or being sent, and the age of
// the oldest queued one (for metrics).
func (w *Worker) Stats(ctx context.Context) (int, time.Duration, error) {
	w.init()
	ctx = rule.System(ctx)
	depth, err := w.Client.Delivery.Query().
		Where(delivery.StatusIn(delivery.StatusQUEUED, delivery.StatusSENDING)).
		Count(ctx)
	if err != nil || depth == 0 {
		return depth, 0, err
	}
	oldest, err := w.Client.Delivery.Query().
		Where(delivery.StatusEQ(delivery.StatusQUEUED)).
		Order(ent.Asc(delivery.FieldCreatedAt)).
		First(ctx)
	if ent.IsNotFound(err) {
		return depth, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	return depth, max(0, w.Now().Sub(oldest.CreatedAt)), nil
}

// backoff is the capped exponential delay with full jitter before retry n.
func (w *Worker) backoff(n int) time.Duration {
	ceiling := w.BaseBackoff << min(n-1, 20)
	if ceiling <= 0 || ceiling > w.MaxBackoff {
		ceiling = w.MaxBackoff
	}
	return w.BaseBackoff/2 + time.Duration(rand.Int64N(int64(ceiling)))
}

func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// mask hides the token in a body kept in the outbox.
func mask(body, token string) string {
	if token == "" {
		return body
	}
	return strings.ReplaceAll(body, token, "[token]")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
