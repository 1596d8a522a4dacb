package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"admit/ent/privacy"
	"admit/internal/rule"
)

// HRConnection is an organization's link to an HR system. The API key is
// stored encrypted and never returned.
type HRConnection struct{ ent.Schema }

// Mixin of the HRConnection.
func (HRConnection) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

// Fields of the HRConnection.
func (HRConnection) Fields() []ent.Field {
	return []ent.Field{
		field.String("provider").
			NotEmpty().
			MaxLen(50),
		field.Bytes("api_key_encrypted").
			Sensitive().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Time("last_import_at").
			Optional().
			Nillable(),
	}
}

// Indexes of the HRConnection.
func (HRConnection) Indexes() []ent.Index {
	return []ent.Index{index.Fields("organization_id", "provider").Unique()}
}

// Annotations of the HRConnection.
func (HRConnection) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.QueryField("hrConnections"),
		entgql.RelayConnection(),
	}
}

// Policy of the HRConnection: admins only.
func (HRConnection) Policy() ent.Policy {
	return privacy.Policy{
		Query:    privacy.QueryPolicy{rule.DenyQueryIfNotAdmin("see HR connections")},
		Mutation: privacy.MutationPolicy{rule.DenyIfNotAdmin("manage HR connections")},
	}
}
