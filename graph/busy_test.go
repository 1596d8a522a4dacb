package graph_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"admit/internal/testutil"
)

// The finding: a long mutation held SQLite's writer, and an admin's
// inviteUsers then failed with INTERNAL "database is locked". A writer
// that waits too long now gets DATABASE_BUSY, which says a retry may work,
// and nothing is logged as an internal error.
func TestWriterThatWaitedTooLongIsToldTheDatabaseIsBusy(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	if e.DB.SQLitePath == "" {
		t.Skip("PostgreSQL has no single writer to wait for")
	}
	org := e.NewOrg("Acme")
	e.DB.SetSQLiteWriteWait(100 * time.Millisecond)

	tx, err := e.DB.Client.Tx(context.Background()) // holds the writer
	if err != nil {
		t.Fatal(err)
	}
	r := e.Do(org.AdminToken, `mutation { inviteUsers(input: {emails: ["jane@example.com"]}) { errors { code } } }`, nil)
	_ = tx.Rollback()
	r.MustFail("DATABASE_BUSY")
	if strings.Contains(strings.ToLower(string(r.Body)), "locked") || strings.Contains(string(r.Body), "INTERNAL") {
		t.Fatalf("response: %s", r.Body)
	}
	if strings.Contains(e.LogText(), "level=ERROR") {
		t.Fatalf("a busy database is not an internal error, but the log says:\n%s", e.LogText())
	}
	// Once the writer is free the same request succeeds.
	var out struct {
		InviteUsers struct{ Errors []struct{ Code string } }
	}
	e.Do(org.AdminToken, `mutation { inviteUsers(input: {emails: ["jane@example.com"]}) { errors { code } } }`, nil).MustData(&out)
	if len(out.InviteUsers.Errors) != 0 {
		t.Fatalf("retry: %+v", out.InviteUsers.Errors)
	}
}
