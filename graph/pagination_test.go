package graph_test

import (
	"testing"

	"admit/internal/testutil"
)

// Lists that select pageInfo without totalCount skip entgql's COUNT; their
// pageInfo must still say whether there is more, page after page, and
// totalCount, or pageInfo alone, must still be counted.
func TestPageInfoWithAndWithoutTotalCount(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	org := e.NewOrg("Pages")
	for _, m := range []string{"a@pages.test", "b@pages.test", "c@pages.test"} {
		e.NewUser(org, m, org.MemberRoleID)
	}
	type page struct {
		Users struct {
			Edges []struct {
				Node struct{ Email string }
			}
			PageInfo struct {
				HasNextPage, HasPreviousPage bool
				EndCursor                    *string
			}
			TotalCount *int
		}
	}
	const q = `query($after: Cursor) { users(first: 2, after: $after, orderBy: {field: EMAIL}) {
		edges { node { email } } pageInfo { hasNextPage hasPreviousPage endCursor } } }`
	var first page
	wantData(t, e.Do(org.AdminToken, q, nil), &first)
	if got := first.Users; len(got.Edges) != 2 || got.Edges[0].Node.Email != "a@pages.test" || got.Edges[1].Node.Email != "admin@pages.test" || !got.PageInfo.HasNextPage || got.PageInfo.HasPreviousPage || got.PageInfo.EndCursor == nil {
		t.Fatalf("first page: want a, admin, a next page and a cursor, got %+v", got)
	}
	var second page
	wantData(t, e.Do(org.AdminToken, q, map[string]any{"after": *first.Users.PageInfo.EndCursor}), &second)
	if got := second.Users; len(got.Edges) != 2 || got.Edges[0].Node.Email != "b@pages.test" || got.Edges[1].Node.Email != "c@pages.test" || got.PageInfo.HasNextPage || !got.PageInfo.HasPreviousPage {
		t.Fatalf("second page: want b, c and no next page, got %+v", got)
	}

	var counted page
	wantData(t, e.Do(org.AdminToken, `{ users(first: 2) { edges { node { email } } pageInfo { hasNextPage hasPreviousPage endCursor } totalCount } }`, nil), &counted)
	if got := counted.Users; got.TotalCount == nil || *got.TotalCount != 4 || !got.PageInfo.HasNextPage || len(got.Edges) != 2 {
		t.Fatalf("with totalCount: want 4 and a next page, got %+v", got)
	}
	var infoOnly struct {
		Users struct {
			PageInfo struct{ HasNextPage bool }
		}
	}
	wantData(t, e.Do(org.AdminToken, `{ users(first: 2) { pageInfo { hasNextPage } } }`, nil), &infoOnly)
	if !infoOnly.Users.PageInfo.HasNextPage {
		t.Fatalf("pageInfo alone: want a next page, got %+v", infoOnly)
	}
}
