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

// User is a person in an organization: an internal user or a client.
type User struct{ ent.Schema }

// Mixin of the User.
func (User) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

// Fields of the User.
func (User) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").
			Default("").
			MaxLen(200).
			Comment("Full name.").
			Annotations(entgql.OrderField("NAME")),
		field.String("email").
			Optional().
			Nillable().
			MaxLen(320).
			Comment("Normalized address; unique within the organization.").
			Annotations(entgql.OrderField("EMAIL")),
		field.String("phone").
			Optional().
			Nillable().
			MaxLen(20).
			Comment("E.164 phone number; unique within the organization."),
		field.String("external_id").
			Optional().
			Nillable().
			MaxLen(200).
			Comment("The organization's own User ID for this person; unique within the organization.").
			Annotations(entgql.MapsTo("externalID")),
		field.Enum("kind").
			Values("INTERNAL", "CLIENT").
			Default("INTERNAL").
			Comment("INTERNAL users work in the organization; CLIENTs are its customers."),
		field.Enum("status").
			Values("INVITED", "ACTIVE", "DEACTIVATED").
			Default("ACTIVE").
			Annotations(entgql.OrderField("STATUS")),
		field.String("password_hash").
			Optional().
			Sensitive().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Int("role_id").
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Time("last_sign_in_at").
			Optional().
			Nillable(),
	}
}

// Edges of the User.
func (User) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("role", Role.Type).
			Field("role_id").
			Unique().
			Required(),
		edge.From("memberships", Membership.Type).
			Ref("user").
			Annotations(entgql.RelayConnection()),
		edge.From("contacts", Contact.Type).
			Ref("owner").
			Annotations(entgql.RelayConnection()),
	}
}

// Indexes of the User.
func (User) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("organization_id", "email").Unique(),
		index.Fields("organization_id", "phone").Unique(),
		index.Fields("organization_id", "external_id").Unique(),
	}
}

// Annotations of the User.
func (User) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.QueryField(),
		entgql.RelayConnection(),
	}
}

// Policy of the User.
func (User) Policy() ent.Policy {
	return privacy.Policy{
		Mutation: privacy.MutationPolicy{
			rule.DenyUserWriteUnlessAllowed(),
			rule.DenyRoleAboveViewer(),
		},
	}
}
