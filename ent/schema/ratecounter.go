package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"admit/ent/privacy"
)

// RateCounter counts events under one key (such as failed sign-ins of one
// address) in a fixed window. The counts live in the database so that every
// replica shares them: adding replicas does not multiply anyone's attempts.
// Only internal/throttle reads or writes them, outside any viewer.
type RateCounter struct{ ent.Schema }

// Fields of the RateCounter.
func (RateCounter) Fields() []ent.Field {
	return []ent.Field{
		field.String("key").MaxLen(300).Immutable().
			Comment("What is counted, such as signin:account:<address hash>."),
		field.Int("count").
			Comment("Events in the current window."),
		field.Int64("window_end").
			Comment("When the current window ends, in Unix milliseconds (a number, so every database compares it the same way)."),
	}
}

// Indexes of the RateCounter.
func (RateCounter) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("key").Unique(),
		index.Fields("window_end"),
	}
}

// Annotations of the RateCounter.
func (RateCounter) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// Policy of the RateCounter: system code only.
func (RateCounter) Policy() ent.Policy {
	return privacy.Policy{
		Query:    privacy.QueryPolicy{privacy.AlwaysDenyRule()},
		Mutation: privacy.MutationPolicy{privacy.AlwaysDenyRule()},
	}
}
