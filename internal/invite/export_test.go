package invite

import (
	"context"
	"time"

	"admit/ent"
	"admit/ent/invitation"
)

// BulkInvite exposes the bulk writer (keys of the result are "e:" and the
// address) to the external tests, which need
// testutil (and so cannot live in this package).
func BulkInvite(ctx context.Context, s *Service, c *ent.Client, orgID, roleID, inviterID int, emails ...string) (map[string]int, error) {
	now := s.Now()
	rows := make([]newInvitation, len(emails))
	for i, e := range emails {
		rows[i] = newInvitation{Email: e, Nonce: []byte("0123456789abcdef")}
	}
	return s.writeInvitations(ctx, c, batchFields{
		orgID: orgID, roleID: roleID, inviterID: inviterID, source: invitation.SourceMANUAL, kind: invitation.KindINTERNAL,
		now: now, expires: now.Add(time.Hour),
	}, rows)
}
