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
			MaxRuneLen(200).
			Annotations(entgql.OrderField("NAME")),
		field.Enum("type").
			Values("FLOW", "GROUP").
			Default("GROUP").
			Comment("FLOW workspaces take people through their link, with approval; GROUP workspaces add them directly."),
		field.String("description").
			Default("").
			MaxRuneLen(2000),
		field.Bool("link_enabled").
			Default(false).
			Comment("Whether the workspace link accepts join requests."),
		field.Bool("link_allows_viewing").
			Default(false).
			Comment("Whether people waiting for approval may read the workspace's name, description and members."),
		// The link token is derived, never stored: HMAC(server key,
		// workspace, generation, that generation's nonce). A refresh
		// appends a nonce and raises the generation; older links die.
		field.Int("link_generation").
			Default(0).
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.JSON("link_token_nonces", [][]byte{}).
			Optional().
			Sensitive().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Time("archived_at").
			Optional().
			Nillable().
			Comment("When the workspace was archived; an archived workspace takes no new members or requests."),
		field.Int("owner_id").
			Optional().
			Nillable().
			Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

// Edges of the Workspace.
func (Workspace) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("owner", User.Type).
			Field("owner_id").
			Unique().
			Comment("Who created the workspace."),
		edge.From("members", Membership.Type).
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

// Policy of the Workspace: admins see and manage every workspace, owners
// manage theirs, members read theirs, nobody else sees it.
func (Workspace) Policy() ent.Policy {
	return privacy.Policy{
		Query: privacy.QueryPolicy{
			rule.FilterWorkspacesToMembers(),
		},
		Mutation: privacy.MutationPolicy{
			rule.DenyWorkspaceWriteUnlessManager(),
		},
	}
}
