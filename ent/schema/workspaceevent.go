package schema

import (
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"admit/ent/privacy"
)

// WorkspaceEvent is the stored stream of join-request and membership
// events that subscribers resume from. Position counts up per
// organization in commit order, with no gaps, so a subscriber that passes
// the last cursor it saw gets exactly what it missed.
type WorkspaceEvent struct{ ent.Schema }

// Fields of the WorkspaceEvent.
func (WorkspaceEvent) Fields() []ent.Field {
	return []ent.Field{
		field.Int("organization_id").Immutable(),
		field.Int("position").Immutable(),
		field.Int("workspace_id").Immutable(),
		field.Enum("topic").Values("JOIN_REQUEST", "MEMBERSHIP").Immutable(),
		field.String("type").MaxLen(30).Immutable(),
		field.Int("object_id").Immutable(),
		field.Int("user_id").Optional().Immutable().Comment("The member a membership event is about."),
		field.Time("created_at").Default(time.Now).Immutable(),
	}
}

// Indexes of the WorkspaceEvent.
func (WorkspaceEvent) Indexes() []ent.Index {
	return []ent.Index{index.Fields("organization_id", "position").Unique()}
}

// Annotations of the WorkspaceEvent: not exposed as such; subscriptions
// turn events into the objects they are about.
func (WorkspaceEvent) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// Policy of the WorkspaceEvent: system code only (the event log).
func (WorkspaceEvent) Policy() ent.Policy {
	return privacy.Policy{
		Query:    privacy.QueryPolicy{privacy.AlwaysDenyRule()},
		Mutation: privacy.MutationPolicy{privacy.AlwaysDenyRule()},
	}
}
