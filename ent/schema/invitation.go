package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"admit/ent/privacy"
	"admit/internal/rule"
)

// Invitation is one person invited into the organization (and optionally a
// workspace) by any path: typed addresses, a file, a link, an HR import or a
// workspace. Its token is stored only as a hash.
type Invitation struct{ ent.Schema }

// Mixin of the Invitation.
func (Invitation) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

// Fields of the Invitation.
func (Invitation) Fields() []ent.Field {
	return []ent.Field{
		field.String("email").
			Optional().
			Nillable().
			MaxLen(320).
			Comment("Normalized invitee address (email invitations).").
			Annotations(entgql.OrderField("EMAIL")),
		field.String("phone").
			Optional().
			Nillable().
			MaxLen(20).
			Comment("E.164 invitee number (phone invitations)."),
		field.String("name").
			Default("").
			MaxRuneLen(200).
			Comment("Invitee's name, when the inviter gave one."),
		field.String("external_id").
			Optional().
			Nillable().
			MaxLen(200).
			Annotations(entgql.MapsTo("externalID")),
		field.Enum("kind").
			Values("INTERNAL", "CLIENT").
			Default("INTERNAL"),
		field.Bool("admin").
			Default(false).
			Comment("The inviter asked for administrator rights (the Administrator toggle)."),
		field.Enum("source").
			Values("MANUAL", "FILE", "LINK", "HR", "WORKSPACE").
			Default("MANUAL"),
		field.Enum("delivery_mode").
			Values("INVITE", "ADD_TO_WORKSPACE", "ADD_TO_CONTACTS", "ADD_TO_CONTACTS_QUIETLY").
			Default("INVITE"),
		field.Enum("status").
			Values("PENDING", "ACCEPTED", "REVOKED", "EXPIRED").
			Default("PENDING").
			Annotations(entgql.OrderField("STATUS")),
		field.String("message").
			Default("").
			MaxRuneLen(2000).
			Comment("Personal note from the inviter, included in the message."),
		// The token is derived, never stored: HMAC(server key, id,
		// generation, nonce). A resend appends a new random nonce and raises
		// the generation; older tokens still verify, and read as replaced.
		field.JSON("token_nonces", [][]byte{}).
			Sensitive().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Int("token_generation").
			Default(1).
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Time("expires_at").
			Annotations(entgql.OrderField("EXPIRES_AT")),
		field.Int("send_count").
			Default(0),
		field.Time("last_sent_at").
			Optional().
			Nillable(),
		field.Time("accepted_at").
			Optional().
			Nillable(),
		field.Time("revoked_at").
			Optional().
			Nillable(),
		field.String("last_delivery_error").
			Default("").
			MaxLen(1000).
			Comment("Why the latest message failed, when it did; empty otherwise."),
		field.Int("role_id").
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Int("inviter_id").
			Optional().
			Nillable().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Int("workspace_id").
			Optional().
			Nillable().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Int("invite_link_id").
			Optional().
			Nillable().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Int("user_id").
			Optional().
			Nillable().
			Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

// Edges of the Invitation.
func (Invitation) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("role", Role.Type).Field("role_id").Unique().Required(),
		edge.To("inviter", User.Type).Field("inviter_id").Unique(),
		edge.To("workspace", Workspace.Type).Field("workspace_id").Unique(),
		edge.To("invite_link", InviteLink.Type).Field("invite_link_id").Unique(),
		edge.To("user", User.Type).
			Field("user_id").
			Unique().
			Comment("The account created or activated by accepting."),
		edge.From("deliveries", Delivery.Type).
			Ref("invitation").
			Annotations(entgql.RelayConnection()),
	}
}

// Indexes of the Invitation: at most one pending invitation per address, so
// concurrent invites of one address cannot both succeed.
func (Invitation) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("organization_id", "email").
			Unique().
			Annotations(entsql.IndexWhere("status = 'PENDING' AND email IS NOT NULL")),
		index.Fields("organization_id", "phone").
			Unique().
			Annotations(entsql.IndexWhere("status = 'PENDING' AND phone IS NOT NULL")),
		// Serves lookups by address (equality on all three columns, so
		// SQLite's planner picks it even without statistics) and listings
		// by organization.
		index.Fields("organization_id", "email", "status"),
	}
}

// Annotations of the Invitation.
func (Invitation) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.QueryField(),
		entgql.RelayConnection(),
	}
}

// Policy of the Invitation: admins, and a workspace's owners for the
// client invitations of their workspace.
func (Invitation) Policy() ent.Policy {
	return privacy.Policy{
		Query: privacy.QueryPolicy{
			rule.FilterInvitationsToManagers(),
		},
		Mutation: privacy.MutationPolicy{
			rule.DenyInvitationWriteUnlessAllowed(),
			rule.DenyRoleAboveViewer(),
		},
	}
}
