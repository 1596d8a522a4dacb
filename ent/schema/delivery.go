package schema

import (
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"admit/ent/privacy"
	"admit/internal/rule"
)

// Delivery is an outbox row: one email or SMS, written in the same
// transaction as what caused it and sent by a worker after commit.
type Delivery struct{ ent.Schema }

// Mixin of the Delivery.
func (Delivery) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

// Fields of the Delivery.
func (Delivery) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("channel").Values("EMAIL", "SMS").Default("EMAIL"),
		field.String("recipient").MaxLen(320),
		field.String("template").MaxLen(100),
		field.String("subject").Default("").MaxLen(500),
		// Bodies are rendered by the worker when it sends, and kept with a
		// placeholder where the link goes, so no token rests in the outbox.
		field.Text("body_text").Default("").Sensitive().Annotations(entgql.Skip(entgql.SkipAll)),
		field.Text("body_html").Default("").Sensitive().Annotations(entgql.Skip(entgql.SkipAll)),
		field.Enum("status").
			Values("QUEUED", "SENDING", "SENT", "FAILED", "CANCELLED").
			Default("QUEUED").
			Annotations(entgql.OrderField("STATUS")),
		field.Int("attempts").Default(0),
		// When the message last entered the queue (null: when it was
		// created). Temporary failures are retried until it is
		// OUTBOX_MAX_AGE old; retryDeliveries sets it again.
		field.Time("queued_at").Optional().Nillable().Annotations(entgql.Skip(entgql.SkipAll)),
		field.Time("next_attempt_at").Default(time.Now),
		field.Time("lease_until").Optional().Nillable().Annotations(entgql.Skip(entgql.SkipAll)),
		field.String("last_error").Default("").MaxLen(1000),
		field.Time("sent_at").Optional().Nillable(),
		field.Int("invitation_id").Optional().Nillable().Annotations(entgql.Skip(entgql.SkipAll)),
		field.Int("join_request_id").Optional().Nillable().Annotations(entgql.Skip(entgql.SkipAll)),
		// The invitation token generation this message carries; the worker
		// derives the link at send time so no token is stored.
		field.Int("token_generation").Default(0).Annotations(entgql.Skip(entgql.SkipAll)),
		// The password reset a password_reset message is for; the worker
		// derives its link at send time, as for invitations.
		field.Int("password_reset_id").Optional().Nillable().Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

// Edges of the Delivery.
func (Delivery) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("invitation", Invitation.Type).Field("invitation_id").Unique(),
		edge.To("join_request", JoinRequest.Type).Field("join_request_id").Unique().Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

// Indexes of the Delivery.
func (Delivery) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("status", "next_attempt_at"),
		// The SMS caps count recent texts per number and per calling code.
		index.Fields("recipient", "sent_at"),
	}
}

// Annotations of the Delivery.
func (Delivery) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.QueryField(),
		entgql.RelayConnection(),
	}
}

// Policy of the Delivery: admins read; rows are written by the invite
// pipeline and the worker.
func (Delivery) Policy() ent.Policy {
	return privacy.Policy{
		Query: privacy.QueryPolicy{rule.DenyQueryIfNotAdmin("see deliveries")},
	}
}
