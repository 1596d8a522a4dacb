package invite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"entgo.io/ent/dialect"

	"admit/ent"
	"admit/ent/auditevent"
	"admit/ent/delivery"
	"admit/ent/invitation"
)

// newInvitation is one row of a bulk write, in the JSON shape the SQL
// below reads. Nonce marshals to standard base64, as ent stores
// token_nonces.
type newInvitation struct {
	// Email and Phone are written as NULL when empty; one is set.
	Email string `json:"e,omitempty"`
	Phone string `json:"p,omitempty"`
	Name  string `json:"n"`
	Nonce []byte `json:"t"`
	// ExternalID is written as NULL when empty.
	ExternalID string `json:"x,omitempty"`
}

// batchFields is what every invitation of one request shares.
type batchFields struct {
	orgID, roleID, inviterID int
	workspaceID              *int
	source                   invitation.Source
	kind                     invitation.Kind
	admin                    bool
	mode                     invitation.DeliveryMode
	message                  string
	now, expires             time.Time
}

// Why hand-written SQL here and ent builders everywhere else: this is the
// one path that writes thousands of rows per request (file imports). ent's
// CreateBulk sends 19 bound parameters per invitation in multi-row VALUES
// statements, one per table per 1,000 rows, plus a read-back of the ids,
// and the database parses each of them. Here the rows travel as a single
// JSON parameter: PostgreSQL writes invitations, their outbox rows and
// their audit events in one statement, SQLite in three, and neither parses
// more than a few hundred bytes of SQL.
//
// Authorization is unchanged: the same ent privacy policies that guard
// the builders are evaluated on mutations describing the batch. Every
// field those rules read (organization, role, inviter, workspace) is
// shared by all rows, so one evaluation per table decides for all of them.
// TestBulkWriteCoversEveryColumn keeps the column lists in step with the
// schema.
//
// ON CONFLICT DO NOTHING has no target: a row may meet either partial
// unique index (one pending invitation per address, and per phone), and
// both databases then skip it whichever index refuses it.
//
// A quiet mode (ADD_TO_CONTACTS_QUIETLY) writes no message: the
// invitation counts as never sent until it is resent.

const pgWriteInvitations = `
WITH input AS (
	SELECT r.e, r.p, r.n, r.t, r.x FROM jsonb_to_recordset($1::jsonb) AS r(e text, p text, n text, t text, x text)
), created AS (
	INSERT INTO invitations (created_at, updated_at, organization_id, email, phone, name, kind, admin, source,
		delivery_mode, status, message, token_nonces, token_generation, expires_at, send_count,
		last_sent_at, last_delivery_error, role_id, inviter_id, workspace_id, external_id)
	SELECT $2::timestamptz, $2::timestamptz, $3::bigint, e, p, n, $12::varchar, $13::boolean, $4::varchar,
		$14::varchar, 'PENDING', $5::varchar, jsonb_build_array(t), 1, $6::timestamptz,
		CASE WHEN $15::boolean THEN 0 ELSE 1 END, CASE WHEN $15::boolean THEN NULL ELSE $2::timestamptz END,
		'', $7::bigint, $8::bigint, $9::bigint, x
	FROM input
	ORDER BY e, p
	ON CONFLICT DO NOTHING
	RETURNING id, email, phone
), queued AS (
	INSERT INTO deliveries (created_at, updated_at, organization_id, channel, recipient, template,
		subject, body_text, body_html, status, attempts, next_attempt_at, last_error,
		invitation_id, token_generation)
	SELECT $2::timestamptz, $2::timestamptz, $3::bigint, CASE WHEN email IS NULL THEN 'SMS' ELSE 'EMAIL' END,
		COALESCE(email, phone), $10::varchar, '', '', '', 'QUEUED', 0, $2::timestamptz, '', id, 1
	FROM created
	WHERE NOT $15::boolean
), audited AS (
	INSERT INTO audit_events (created_at, organization_id, action, target_type, target_id, summary, actor_id)
	SELECT $2::timestamptz, $3::bigint, $11::varchar, 'Invitation', id, COALESCE(email, phone), $8::bigint
	FROM created
)
SELECT id, email, phone FROM created`

// SQLite has no data-modifying WITH: three statements. "WHERE true" keeps
// the parser from reading ON CONFLICT as a join constraint.
const (
	sqliteInsertInvitations = `
INSERT INTO invitations (created_at, updated_at, organization_id, email, phone, name, kind, admin, source,
	delivery_mode, status, message, token_nonces, token_generation, expires_at, send_count,
	last_sent_at, last_delivery_error, role_id, inviter_id, workspace_id, external_id)
SELECT ?1, ?1, ?2, j.value ->> 'e', j.value ->> 'p', j.value ->> 'n', ?10, ?11, ?3,
	?12, 'PENDING', ?4, json_array(j.value ->> 't'), 1, ?5, CASE WHEN ?13 THEN 0 ELSE 1 END,
	CASE WHEN ?13 THEN NULL ELSE ?1 END, '', ?6, ?7, ?8, j.value ->> 'x'
FROM json_each(?9) AS j WHERE true
ON CONFLICT DO NOTHING
RETURNING id, email, phone`
	sqliteInsertDeliveries = `
INSERT INTO deliveries (created_at, updated_at, organization_id, channel, recipient, template,
	subject, body_text, body_html, status, attempts, next_attempt_at, last_error,
	invitation_id, token_generation)
SELECT ?1, ?1, ?2, j.value ->> 'c', j.value ->> 'r', ?3, '', '', '', 'QUEUED', 0, ?1, '', j.value ->> 'i', 1
FROM json_each(?4) AS j`
	sqliteInsertAuditEvents = `
INSERT INTO audit_events (created_at, organization_id, action, target_type, target_id, summary, actor_id)
SELECT ?1, ?2, ?3, 'Invitation', j.value ->> 'i', j.value ->> 'r', ?4
FROM json_each(?5) AS j`
)

// createdAction is the audit action of a new invitation.
const createdAction = "invitation.created"

// writeInvitations inserts an invitation, a queued message and an audit
// event for each row, with c (the request's transaction), and returns the
// new ids by personKey. A row whose address or phone gained a pending
// invitation from a concurrent request is skipped by a partial unique index
// (ON CONFLICT DO NOTHING) and is absent from the map.
func (s *Service) writeInvitations(ctx context.Context, c *ent.Client, b batchFields, rows []newInvitation) (map[string]int, error) {
	if len(rows) == 0 {
		return map[string]int{}, nil
	}
	if err := b.authorize(ctx, c, rows[0]); err != nil {
		return nil, err
	}
	for _, r := range rows {
		if err := invitation.EmailValidator(r.Email); r.Email != "" && err != nil {
			return nil, fmt.Errorf("invite: %q: %w", r.Email, err)
		}
		if err := invitation.PhoneValidator(r.Phone); r.Phone != "" && err != nil {
			return nil, fmt.Errorf("invite: %q: %w", r.Phone, err)
		}
		if err := invitation.NameValidator(r.Name); err != nil {
			return nil, fmt.Errorf("invite: name for %q: %w", r.Email, err)
		}
		if err := invitation.ExternalIDValidator(r.ExternalID); r.ExternalID != "" && err != nil {
			return nil, fmt.Errorf("invite: external ID for %q: %w", r.Email, err)
		}
	}
	input, err := json.Marshal(rows)
	if err != nil {
		return nil, err
	}
	if s.Dialect == dialect.Postgres {
		return scanCreated(c.QueryContext(ctx, pgWriteInvitations,
			string(input), b.now, b.orgID, string(b.source), b.message, b.expires,
			b.roleID, b.inviterID, b.workspaceID, TemplateInvitation, createdAction, string(b.kind),
			b.admin, string(b.mode), b.quiet()))
	}
	created, err := scanCreated(c.QueryContext(ctx, sqliteInsertInvitations,
		b.now, b.orgID, string(b.source), b.message, b.expires, b.roleID, b.inviterID, b.workspaceID, string(input), string(b.kind),
		b.admin, string(b.mode), b.quiet()))
	if err != nil || len(created) == 0 {
		return created, err
	}
	type createdRow struct {
		ID        int    `json:"i"`
		Recipient string `json:"r"`
		Channel   string `json:"c"`
	}
	// In input order, so messages go out in the order the file lists them.
	out := make([]createdRow, 0, len(created))
	for _, r := range rows {
		if id, ok := created[personKey(r.Email, r.Phone)]; ok {
			if r.Email != "" {
				out = append(out, createdRow{id, r.Email, string(delivery.ChannelEMAIL)})
			} else {
				out = append(out, createdRow{id, r.Phone, string(delivery.ChannelSMS)})
			}
		}
	}
	ids, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	if !b.quiet() {
		if _, err := c.ExecContext(ctx, sqliteInsertDeliveries, b.now, b.orgID, TemplateInvitation, string(ids)); err != nil {
			return nil, fmt.Errorf("invite: queue messages: %w", err)
		}
	}
	if _, err := c.ExecContext(ctx, sqliteInsertAuditEvents, b.now, b.orgID, createdAction, b.inviterID, string(ids)); err != nil {
		return nil, fmt.Errorf("invite: audit: %w", err)
	}
	return created, nil
}

// quiet reports whether the batch's invitations go unsent for now.
func (b batchFields) quiet() bool { return b.mode == invitation.DeliveryModeADD_TO_CONTACTS_QUIETLY }

// authorize evaluates the ent privacy policies of the three tables on
// mutations that carry the batch's shared fields, exactly as the builders'
// hooks would for each row.
func (b batchFields) authorize(ctx context.Context, c *ent.Client, first newInvitation) error {
	inv := c.Invitation.Create().
		SetOrganizationID(b.orgID).
		SetNillableEmail(nonEmpty(first.Email)).
		SetNillablePhone(nonEmpty(first.Phone)).
		SetName(first.Name).
		SetSource(b.source).
		SetKind(b.kind).
		SetAdmin(b.admin).
		SetDeliveryMode(b.mode).
		SetMessage(b.message).
		SetRoleID(b.roleID).
		SetInviterID(b.inviterID).
		SetNillableWorkspaceID(b.workspaceID).
		SetTokenNonces([][]byte{first.Nonce}).
		SetExpiresAt(b.expires)
	if err := invitation.Policy.EvalMutation(ctx, inv.Mutation()); err != nil {
		return err
	}
	del := c.Delivery.Create().
		SetOrganizationID(b.orgID).
		SetRecipient(cmpOr(first.Email, first.Phone)).
		SetTemplate(TemplateInvitation)
	if err := delivery.Policy.EvalMutation(ctx, del.Mutation()); err != nil {
		return err
	}
	ev := c.AuditEvent.Create().
		SetOrganizationID(b.orgID).
		SetActorID(b.inviterID).
		SetAction(createdAction)
	return auditevent.Policy.EvalMutation(ctx, ev.Mutation())
}

func scanCreated(rows *sql.Rows, err error) (map[string]int, error) {
	if err != nil {
		return nil, fmt.Errorf("invite: insert: %w", err)
	}
	defer rows.Close()
	created := map[string]int{}
	for rows.Next() {
		var id int
		var email, phone sql.NullString
		if err := rows.Scan(&id, &email, &phone); err != nil {
			return nil, fmt.Errorf("invite: insert: %w", err)
		}
		created[personKey(email.String, phone.String)] = id
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("invite: insert: %w", err)
	}
	return created, nil
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
