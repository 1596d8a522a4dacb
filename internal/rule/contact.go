package rule

import (
	"context"

	"entgo.io/ent/entql"

	"admit/ent"
	"admit/ent/contact"
	"admit/ent/privacy"
	"admit/internal/auth"
)

// FilterContactsToOwner shows every signed-in user only their own contact
// list: a contact says whom the owner works with, which is theirs alone,
// administrators included.
func FilterContactsToOwner() privacy.QueryRule {
	return filterViewer(func(f *ent.ContactFilter, v *auth.Viewer) {
		f.WhereOwnerID(entql.IntEQ(v.UserID))
	})
}

// DenyContactWriteUnlessOwner lets a user add people to their own contact
// list only; changes and removals are narrowed to their own rows.
func DenyContactWriteUnlessOwner() privacy.MutationRule {
	return privacy.MutationRuleFunc(func(ctx context.Context, m ent.Mutation) error {
		v := auth.FromContext(ctx)
		if v == nil {
			return ErrUnauthenticated
		}
		cm, ok := m.(*ent.ContactMutation)
		if !ok {
			return privacy.Denyf("rule: %T is not a contact mutation", m)
		}
		if m.Op().Is(ent.OpCreate) {
			if owner, _ := cm.OwnerID(); owner != v.UserID {
				return Forbidden("contacts may only be added to your own list")
			}
			return privacy.Skip
		}
		cm.Where(contact.OwnerID(v.UserID))
		return privacy.Skip
	})
}
