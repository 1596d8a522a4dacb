package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"

	"admit/ent/privacy"
	"admit/internal/rule"
)

// InviteLink is a link anyone may use to join: the company link (domains
// only, 10 days), shareable links for internal users or clients, and
// workspace links. Its token is derived from the server secret, the link ID
// and the generation, so it is never stored and a refresh kills the old one.
type InviteLink struct{ ent.Schema }

// Mixin of the InviteLink.
func (InviteLink) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

// Fields of the InviteLink.
func (InviteLink) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("purpose").
			Values("ORGANIZATION", "WORKSPACE").
			Default("ORGANIZATION"),
		field.Enum("kind").
			Values("INTERNAL", "CLIENT").
			Default("INTERNAL").
			Comment("Whether people joining through the link become internal users or clients."),
		field.Bool("restrict_to_domains").
			Default(false).
			Comment("Only addresses in the organization's verified domains may use the link."),
		field.Time("expires_at").
			Optional().
			Nillable().
			Annotations(entgql.OrderField("EXPIRES_AT")),
		field.Int("max_uses").
			Optional().
			Nillable().
			Positive(),
		field.Int("use_count").
			Default(0),
		field.Int("generation").
			Default(1).
			Comment("Raised by each refresh; the token is bound to it.").
			Annotations(entgql.Skip(entgql.SkipAll)),
		// The token is derived (HMAC of the server secret, the link, its
		// generation and that generation's random nonce), so an admin can
		// copy the link again without it ever being stored.
		field.JSON("token_nonces", [][]byte{}).
			Sensitive().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Time("revoked_at").
			Optional().
			Nillable(),
		field.Int("role_id").
			Optional().
			Nillable().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Int("workspace_id").
			Optional().
			Nillable().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Int("created_by_id").
			Optional().
			Nillable().
			Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

// Edges of the InviteLink.
func (InviteLink) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("role", Role.Type).Field("role_id").Unique(),
		edge.To("workspace", Workspace.Type).Field("workspace_id").Unique(),
		edge.To("created_by", User.Type).Field("created_by_id").Unique(),
	}
}

// Annotations of the InviteLink.
func (InviteLink) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.QueryField(),
		entgql.RelayConnection(),
	}
}

// Policy of the InviteLink: admins only.
func (InviteLink) Policy() ent.Policy {
	return privacy.Policy{
		Query: privacy.QueryPolicy{
			rule.DenyQueryIfNotAdmin("see invite links"),
		},
		Mutation: privacy.MutationPolicy{
			rule.DenyIfNotAdmin("manage invite links"),
			rule.DenyRoleAboveViewer(),
		},
	}
}
