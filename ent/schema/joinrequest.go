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

// JoinRequest is a request to join a workspace through its link, approved
// (as an internal user or a client) or denied by an owner or admin.
type JoinRequest struct{ ent.Schema }

// Mixin of the JoinRequest.
func (JoinRequest) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

// Fields of the JoinRequest.
func (JoinRequest) Fields() []ent.Field {
	return []ent.Field{
		field.String("email").
			MaxLen(320).
			Comment("Normalized address of the requester."),
		field.String("name").
			Default("").
			MaxLen(200),
		field.Enum("status").
			Values("PENDING", "APPROVED", "DENIED").
			Default("PENDING").
			Annotations(entgql.OrderField("STATUS")),
		field.Enum("decided_as").
			Values("INTERNAL", "CLIENT").
			Optional().
			Nillable().
			Comment("On approval, whether the requester became an internal user or a client."),
		field.Time("decided_at").
			Optional().
			Nillable(),
		field.Int("workspace_id").
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Int("requester_id").
			Optional().
			Nillable().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Int("decided_by_id").
			Optional().
			Nillable().
			Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

// Edges of the JoinRequest.
func (JoinRequest) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("workspace", Workspace.Type).Field("workspace_id").Unique().Required(),
		edge.To("requester", User.Type).Field("requester_id").Unique(),
		edge.To("decided_by", User.Type).Field("decided_by_id").Unique(),
	}
}

// Indexes of the JoinRequest: one pending request per address and workspace.
func (JoinRequest) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("workspace_id", "email").
			Unique().
			Annotations(entsql.IndexWhere("status = 'PENDING'")),
	}
}

// Annotations of the JoinRequest.
func (JoinRequest) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.QueryField(),
		entgql.RelayConnection(),
	}
}

// Policy of the JoinRequest.
func (JoinRequest) Policy() ent.Policy {
	return privacy.Policy{
		Query: privacy.QueryPolicy{
			rule.DenyQueryIfNotAdmin("see join requests"),
		},
		Mutation: privacy.MutationPolicy{
			rule.DenyIfNotAdmin("decide join requests"),
		},
	}
}
