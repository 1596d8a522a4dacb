package db_test

import (
	"context"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	_ "admit/ent/runtime" // defaults and policies

	"admit/ent/organization"
	"admit/internal/db"
	"admit/internal/rule"
)

var storedTime = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?\+00:00$`)

// The finding: on SQLite updated_at was stored with Go's monotonic-clock
// suffix ("… +0000 UTC m=+157.85"). Every time is now stored in one format,
// and migration rewrites rows written the old way.
func TestSQLiteStoresTimesInOneFormat(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "t.db")
	d, err := db.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	if err := d.Migrate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	sys := rule.System(ctx)
	org, err := d.Client.Organization.Create().SetName("Acme").Save(sys)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Client.Organization.UpdateOne(org).SetName("Acme 2").Exec(sys); err != nil {
		t.Fatal(err)
	}
	raw := func(id int) (created, updated string) {
		t.Helper()
		if err := d.SQL.QueryRow(`SELECT CAST(created_at AS TEXT), CAST(updated_at AS TEXT) FROM organizations WHERE id = ?`, id).Scan(&created, &updated); err != nil {
			t.Fatal(err)
		}
		return created, updated
	}
	for _, v := range []string{first(raw(org.ID)), second(raw(org.ID))} {
		if !storedTime.MatchString(v) {
			t.Fatalf("stored %q, want the one format YYYY-MM-DD HH:MM:SS.fff+00:00", v)
		}
	}

	// A row an earlier version wrote, with time.Time.String and its
	// monotonic suffix, is rewritten at the next start.
	old := time.Date(2026, 12, 2, 0, 47, 19, 123456789, time.UTC)
	if _, err := d.SQL.Exec(`UPDATE organizations SET created_at = ?, updated_at = ? WHERE id = ?`,
		old.String(), old.String()+" m=+157.851", org.ID); err != nil {
		t.Fatal(err)
	}
	if c, u := raw(org.ID); storedTime.MatchString(c) || storedTime.MatchString(u) {
		t.Fatalf("fixture not in the old format: %q %q", c, u)
	}
	if err := d.Migrate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	c, u := raw(org.ID)
	if c != "2026-12-02 00:47:19.123456789+00:00" || u != c {
		t.Fatalf("after migration: created_at %q, updated_at %q", c, u)
	}
	got, err := d.Client.Organization.Query().Where(organization.ID(org.ID)).Only(sys)
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.Equal(old) || !got.UpdatedAt.Equal(old) {
		t.Fatalf("read back %v / %v, want %v", got.CreatedAt, got.UpdatedAt, old)
	}
}

func first(a, _ string) string  { return a }
func second(_, b string) string { return b }
