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

// HREmployee is one employee as an HR connection's last successful sync
// read it. hrEmployees lists these with a status computed at read time;
// GraphQL sees them through the hand-written HREmployee type.
type HREmployee struct{ ent.Schema }

// Mixin of the HREmployee.
func (HREmployee) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

// Fields of the HREmployee.
func (HREmployee) Fields() []ent.Field {
	return []ent.Field{
		field.Int("connection_id"),
		field.String("employee_id").
			NotEmpty().
			MaxLen(200).
			Comment("The provider's ID of the employee."),
		field.String("name").
			Default("").
			MaxRuneLen(200),
		field.String("email").
			Default("").
			MaxLen(320).
			Comment("Work email as the provider gave it."),
		field.String("phone").
			Default("").
			MaxLen(50),
		field.String("department").
			Default("").
			MaxRuneLen(200),
		field.Enum("employment_status").
			Values("ACTIVE", "PENDING", "INACTIVE", "LEAVE").
			Default("ACTIVE"),
		field.Time("start_date").
			Optional().
			Nillable(),
		field.Time("end_date").
			Optional().
			Nillable(),
		field.Time("provider_updated_at").
			Optional().
			Nillable(),
	}
}

// Edges of the HREmployee.
func (HREmployee) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("connection", HRConnection.Type).
			Ref("employees").
			Field("connection_id").
			Unique().
			Required(),
	}
}

// Indexes of the HREmployee.
func (HREmployee) Indexes() []ent.Index {
	return []ent.Index{index.Fields("connection_id", "employee_id").Unique()}
}

// Annotations of the HREmployee.
func (HREmployee) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// Policy of the HREmployee: admins only.
func (HREmployee) Policy() ent.Policy {
	return privacy.Policy{
		Query:    privacy.QueryPolicy{rule.DenyQueryIfNotAdmin("see HR employees")},
		Mutation: privacy.MutationPolicy{rule.DenyIfNotAdmin("manage HR employees")},
	}
}
