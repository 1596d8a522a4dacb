package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"

	"admit/ent/privacy"
	"admit/internal/rule"
)

// Organization is a tenant: a company (expense product) or a portal
// (client-portal product). Every other row belongs to exactly one.
type Organization struct{ ent.Schema }

// Mixin of the Organization.
func (Organization) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of the Organization.
func (Organization) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").
			NotEmpty().
			MaxLen(200).
			Comment("Display name shown to invitees.").
			Annotations(entgql.OrderField("NAME")),
		field.Enum("kind").
			Values("COMPANY", "PORTAL").
			Default("COMPANY").
			Comment("COMPANY for an employee organization, PORTAL for a client portal."),
		field.Strings("domains").
			Default([]string{}).
			Comment("Verified email domains, normalized: lower case, IDNA ASCII, no trailing dot.").
			Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		field.Bool("restrict_invitations_to_domains").
			Default(false).
			Comment("When true, invitations may only go to addresses in the verified domains."),
		field.Int("event_position").
			Default(0).
			Comment("The position of the organization's latest workspace event.").
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Int("invitation_expiry_days").
			Default(14).
			Min(1).
			Max(365).
			Comment("Days an invitation stays valid after it is sent."),
		field.String("default_region").
			Default("").
			MaxLen(2).
			Comment("ISO 3166 region (such as GB or US) in which phone numbers typed without a country code are read; empty: numbers need their country code."),
	}
}

// Annotations of the Organization.
func (Organization) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}

// Policy of the Organization: a viewer sees only their own organization, and
// only its admins change it. Organizations are created by the operator's
// bootstrap and create-organization command, outside any viewer.
func (Organization) Policy() ent.Policy {
	return privacy.Policy{
		Query: privacy.QueryPolicy{
			rule.DenyIfNoViewer(),
			rule.FilterOwnOrganization(),
		},
		Mutation: privacy.MutationPolicy{
			rule.DenyIfNoViewer(),
			rule.DenyIfNotAdmin("change the organization"),
			privacy.OnMutationOperation(privacy.AlwaysDenyRule(), ent.OpCreate|ent.OpDelete|ent.OpDeleteOne),
			rule.FilterOwnOrganization(),
		},
	}
}
