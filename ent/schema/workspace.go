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

// Workspace is a flow (join by link, with approval) or a group workspace.
type Workspace struct{ ent.Schema }

// Mixin of the Workspace.
func (Workspace) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

// Fields of the Workspace.
func (Workspace) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").
			NotEmpty().
			MaxLen(200).
			Annotations(entgql.OrderField("NAME")),
		field.Enum("type").
			Values("FLOW", "GROUP").
			Default("GROUP"),
		field.Bool("link_enabled").
			Default(false).
			Comment("Whether the workspace link accepts join requests."),
		field.Bool("link_allows_viewing").
			Default(false).
			Comment("Whether people waiting for approval may read the workspace."),
		field.Int("owner_id").
			Optional().
			Nillable().
			Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

// Edges of the Workspace.
func (Workspace) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("owner", User.Type).Field("owner_id").Unique(),
		edge.From("memberships", Membership.Type).
			Ref("workspace").
			Annotations(entgql.RelayConnection()),
		edge.From("join_requests", JoinRequest.Type).
			Ref("workspace").
			Annotations(entgql.RelayConnection()),
	}
}

// Annotations of the Workspace.
func (Workspace) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.QueryField(),
		entgql.RelayConnection(),
	}
}

// Policy of the Workspace: members read, admins manage.
func (Workspace) Policy() ent.Policy {
	return privacy.Policy{
		Mutation: privacy.MutationPolicy{
			rule.DenyIfNotAdmin("manage workspaces"),
		},
	}
}
