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

// HRConnection is an organization's link to an HR system: its credentials
// (encrypted, never returned), the autopilot settings, the sync lease that
// lets exactly one replica run a sync, and what the last sync did.
type HRConnection struct{ ent.Schema }

// Mixin of the HRConnection.
func (HRConnection) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

// Fields of the HRConnection.
func (HRConnection) Fields() []ent.Field {
	return []ent.Field{
		field.String("provider").
			NotEmpty().
			MaxLen(50).
			Comment("The provider's name, as in hrProviders: bamboohr, personio, hibob, merge or kombo."),
		// The credentials as one AES-GCM sealed JSON object (internal/hr),
		// under a key derived from ADMIT_SECRET_KEY and bound to the
		// organization and provider.
		field.Bytes("api_key_encrypted").
			Sensitive().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.String("credentials_hint").
			Default("").
			MaxLen(20).
			Comment("The last four characters of the secret credential, masked: ••••abcd."),
		field.String("base_url").
			Default("").
			MaxLen(500).
			Comment("The base-URL override (regional hosts); empty for the provider's default.").
			Annotations(entgql.MapsTo("baseURL")),
		field.Bool("auto_invite").
			Default(false).
			Comment("Each sync invites employees who are new, with role."),
		field.Int("role_id").
			Optional().
			Nillable().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Int("sync_interval_seconds").
			Default(0).
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Bool("deactivate_leavers").
			Default(false).
			Comment("Each sync deactivates members whose employment ended and ends their sessions."),
		field.Int("actor_id").
			Optional().
			Nillable().
			Comment("The administrator scheduled syncs act as: whoever last connected or changed the settings.").
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Time("next_sync_at").
			Optional().
			Nillable().
			Comment("When the next scheduled sync is due; null without a sync interval."),
		field.Time("sync_lease_until").
			Optional().
			Nillable().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Time("last_sync_at").
			Optional().
			Nillable().
			Comment("When the last sync (or the check at connect time) finished."),
		field.Enum("last_sync_status").
			Values("SUCCEEDED", "FAILED").
			Optional().
			Nillable(),
		field.String("last_sync_error").
			Default("").
			MaxLen(1000).
			Comment("Why the last sync failed; empty when it succeeded."),
		field.Int("last_sync_employees").
			Default(0).
			Comment("Employees the last sync read."),
		field.Int("last_sync_invited").
			Default(0).
			Comment("Employees the last sync invited."),
		field.Int("last_sync_deactivated").
			Default(0).
			Comment("Members the last sync deactivated."),
	}
}

// Edges of the HRConnection.
func (HRConnection) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("role", Role.Type).
			Field("role_id").
			Unique().
			Comment("The role autopilot invites with; the built-in Member role when null."),
		edge.To("employees", HREmployee.Type).
			Annotations(entsql.OnDelete(entsql.Cascade), entgql.Skip(entgql.SkipAll)),
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

// Policy of the HRConnection: admins only, and autopilot's role is at most
// the admin's own.
func (HRConnection) Policy() ent.Policy {
	return privacy.Policy{
		Query: privacy.QueryPolicy{rule.DenyQueryIfNotAdmin("see HR connections")},
		Mutation: privacy.MutationPolicy{
			rule.DenyIfNotAdmin("manage HR connections"),
			rule.DenyRoleAboveViewer(),
		},
	}
}
