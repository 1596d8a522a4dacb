package invite

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"admit/ent/auditevent"
	"admit/ent/delivery"
	"admit/ent/invitation"
)

var insertColumns = regexp.MustCompile(`INSERT INTO (\w+) \(([^)]*)\)`)

// The bulk SQL names its columns by hand. A column added to the schema
// must be written there too, or be nullable and listed here as left NULL
// on purpose; otherwise rows written in bulk would differ from rows ent
// writes.
func TestBulkWriteCoversEveryColumn(t *testing.T) {
	leftNull := map[string][]string{
		invitation.Table: {invitation.FieldPhone, invitation.FieldAcceptedAt,
			invitation.FieldRevokedAt, invitation.FieldInviteLinkID, invitation.FieldUserID},
		delivery.Table:   {delivery.FieldLeaseUntil, delivery.FieldSentAt, delivery.FieldJoinRequestID, delivery.FieldPasswordResetID, delivery.FieldQueuedAt},
		auditevent.Table: {},
	}
	all := map[string][]string{
		invitation.Table: invitation.Columns,
		delivery.Table:   delivery.Columns,
		auditevent.Table: auditevent.Columns,
	}
	for name, sql := range map[string]string{
		"postgres":           pgWriteInvitations,
		"sqlite invitations": sqliteInsertInvitations,
		"sqlite deliveries":  sqliteInsertDeliveries,
		"sqlite audit":       sqliteInsertAuditEvents,
	} {
		for _, m := range insertColumns.FindAllStringSubmatch(sql, -1) {
			table := m[1]
			var written []string
			for _, c := range strings.Split(m[2], ",") {
				written = append(written, strings.TrimSpace(c))
			}
			for _, col := range all[table] {
				if col == "id" || slices.Contains(leftNull[table], col) {
					continue
				}
				if !slices.Contains(written, col) {
					t.Errorf("%s: INSERT INTO %s does not write column %q", name, table, col)
				}
			}
			for _, col := range written {
				if !slices.Contains(all[table], col) {
					t.Errorf("%s: INSERT INTO %s writes unknown column %q", name, table, col)
				}
			}
		}
	}
	// Each statement must have been found, or the loop above checked nothing.
	if n := len(insertColumns.FindAllString(pgWriteInvitations, -1)); n != 3 {
		t.Fatalf("want 3 INSERTs in the PostgreSQL statement, found %d", n)
	}
}
