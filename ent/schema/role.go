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

// Role is an organization role. Admin (rank 100, admin rights) and Member
// (rank 10) are built in; admins add custom roles. A viewer never grants a
// role ranked above their own, nor admin rights they lack.
type Role struct{ ent.Schema }

// Mixin of the Role.
func (Role) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

// Fields of the Role.
func (Role) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").
			NotEmpty().
			MaxLen(100).
			Comment("Unique within the organization.").
			Annotations(entgql.OrderField("NAME")),
		field.String("description").
			Default("").
			MaxLen(500),
		field.Bool("admin").
			Default(false).
			Comment("Whether holders have administrator rights (manage users, roles, invitations, links and domains)."),
		field.Int("rank").
			Range(1, 100).
			Default(10).
			Comment("Seniority from 1 to 100; nobody grants a rank above their own. Admin is 100, Member 10.").
			Annotations(entgql.OrderField("RANK")),
		field.Bool("builtin").
			Default(false).
			Immutable().
			Comment("Built-in roles (Admin, Member) cannot be renamed or deleted."),
	}
}

// Edges of the Role.
func (Role) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("users", User.Type).
			Ref("role").
			Annotations(entgql.RelayConnection()),
	}
}

// Indexes of the Role.
func (Role) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("organization_id", "name").Unique(),
	}
}

// Annotations of the Role.
func (Role) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.QueryField(),
		entgql.RelayConnection(),
	}
}

// Policy of the Role.
func (Role) Policy() ent.Policy {
	return privacy.Policy{
		Mutation: privacy.MutationPolicy{
			rule.DenyIfNotAdmin("manage roles"),
			rule.DenyRoleAboveViewer(),
		},
	}
}
