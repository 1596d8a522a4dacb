package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"admit/ent/privacy"
	"admit/internal/rule"
)

// Membership places a user in a workspace. A person invited to the
// workspace is NOT_JOINED until they accept their invitation.
type Membership struct{ ent.Schema }

// Mixin of the Membership.
func (Membership) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

// Fields of the Membership.
func (Membership) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("role").
			Values("OWNER", "MEMBER").
			Default("MEMBER").
			Comment("OWNERs manage the workspace; MEMBERs take part in it."),
		field.Enum("status").
			Values("NOT_JOINED", "JOINED").
			Default("NOT_JOINED").
			Annotations(entgql.OrderField("STATUS")),
		field.Int("workspace_id").
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Int("user_id").
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Int("invitation_id").
			Optional().
			Nillable().
			Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

// Edges of the Membership.
func (Membership) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("workspace", Workspace.Type).Field("workspace_id").Unique().Required(),
		edge.To("user", User.Type).Field("user_id").Unique().Required(),
		edge.To("invitation", Invitation.Type).
			Field("invitation_id").
			Unique().
			Comment("The invitation that brings a NOT_JOINED member in.").
			Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

// Indexes of the Membership.
func (Membership) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("workspace_id", "user_id").Unique(),
		index.Fields("user_id"),
	}
}

// Annotations of the Membership.
func (Membership) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.QueryField(),
		entgql.RelayConnection(),
	}
}

// Policy of the Membership: members read their workspaces' members;
// admins and the workspace's owners change them.
func (Membership) Policy() ent.Policy {
	return privacy.Policy{
		Query: privacy.QueryPolicy{
			rule.FilterMembershipsToMembers(),
		},
		Mutation: privacy.MutationPolicy{
			rule.DenyMembershipWriteUnlessManager(),
		},
	}
}
