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
// (as an internal user or a client) or denied by an owner or admin. A
// request by someone not signed in stays UNCONFIRMED, unseen by approvers,
// until its address is proven through the emailed link.
type JoinRequest struct{ ent.Schema }

// Mixin of the JoinRequest.
func (JoinRequest) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, TenantMixin{}} }

// Fields of the JoinRequest.
func (JoinRequest) Fields() []ent.Field {
	return []ent.Field{
		field.String("email").
			MaxLen(320).
			Comment("Normalized address of the requester.").
			Annotations(entgql.OrderField("EMAIL")),
		field.String("name").
			Default("").
			MaxRuneLen(200),
		field.String("message").
			Default("").
			MaxRuneLen(2000).
			Comment("What the requester wrote to the approvers."),
		field.Enum("status").
			Values("UNCONFIRMED", "PENDING", "APPROVED", "DENIED", "CANCELLED").
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
		field.String("deny_reason").
			Default("").
			MaxRuneLen(1000).
			Comment("Why the request was denied, when it was."),
		field.Time("confirmed_at").
			Optional().
			Nillable().
			Comment("When the requester's address was proven (at once for signed-in requesters)."),
		// The requester's token is derived, never stored (as invitation
		// tokens are); it confirms the address, shows the request and
		// cancels it, and nothing else.
		field.JSON("token_nonces", [][]byte{}).
			Sensitive().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.Time("last_sent_at").
			Optional().
			Nillable().
			Annotations(entgql.Skip(entgql.SkipAll)),
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
		field.Int("invitation_id").
			Optional().
			Nillable().
			Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

// Edges of the JoinRequest.
func (JoinRequest) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("workspace", Workspace.Type).Field("workspace_id").Unique().Required(),
		edge.To("requester", User.Type).
			Field("requester_id").
			Unique().
			Comment("The requester's account, when they have one in the organization."),
		edge.To("decided_by", User.Type).Field("decided_by_id").Unique(),
		edge.To("invitation", Invitation.Type).
			Field("invitation_id").
			Unique().
			Comment("The invitation sent on approval to a person new to the organization."),
	}
}

// Indexes of the JoinRequest: one open request per address and workspace,
// so a second request returns the first.
func (JoinRequest) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("workspace_id", "email").
			Unique().
			Annotations(entsql.IndexWhere("status IN ('UNCONFIRMED', 'PENDING')")),
	}
}

// Annotations of the JoinRequest.
func (JoinRequest) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.QueryField(),
		entgql.RelayConnection(),
	}
}

// Policy of the JoinRequest: admins and the workspace's owners see its
// confirmed requests and decide them; requests are created by the public
// link path, outside any viewer; nobody decides their own request.
func (JoinRequest) Policy() ent.Policy {
	return privacy.Policy{
		Query: privacy.QueryPolicy{
			rule.FilterJoinRequestsToDeciders(),
		},
		Mutation: privacy.MutationPolicy{
			rule.DenyJoinRequestWriteUnlessDecider(),
		},
	}
}
