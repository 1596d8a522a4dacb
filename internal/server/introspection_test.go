package server_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"admit/internal/server"
	"admit/internal/testutil"
)

// The finding: an unauthenticated 43 KB request of aliased __schema fields
// produced a 20 MB response. Introspection is now bounded on its own (the
// complexity limit does not see it), and so is every response.
func TestIntrospectionIsBounded(t *testing.T) {
	t.Parallel()
	e := testutil.New(t)
	aliased := func(n int, sel string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, " s%d: %s", i, sel)
		}
		return b.String() + " }"
	}
	for name, q := range map[string]string{
		"aliased __schema":      aliased(200, `__schema { types { name fields { name type { name } } } }`),
		"two __schema":          aliased(2, `__schema { queryType { name } }`),
		"many __type":           aliased(11, `__type(name: "User") { name }`),
		"aliases inside":        `{ __schema { a: types { name } b: types { name } } }`,
		"aliases via fragments": `{ __schema { ...A ...B } } fragment A on __Schema { a: types { name } } fragment B on __Schema { b: types { name } }`,
		"lists nested in lists": `{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }`,
	} {
		t.Run(name, func(t *testing.T) {
			r := e.Do("", q, nil)
			if !slices.ContainsFunc(r.Errors, func(g testutil.GQLError) bool {
				// gqlparser refuses some deep nesting itself.
				return g.Code() == "INTROSPECTION_LIMIT_EXCEEDED" || g.Code() == "GRAPHQL_VALIDATION_FAILED"
			}) {
				t.Fatalf("want INTROSPECTION_LIMIT_EXCEEDED, got HTTP %d: %.300s", r.Status, r.Body)
			}
			if len(r.Body) > 10_000 {
				t.Fatalf("refusal is %d bytes", len(r.Body))
			}
		})
	}
	// Ordinary uses pass: one __schema with fragments used twice, a few
	// __type lookups, __typename anywhere.
	for _, q := range []string{
		`{ __schema { queryType { ...T } mutationType { ...T } types { ...T fields { name } } } } fragment T on __Type { name kind }`,
		aliased(10, `__type(name: "User") { name fields { name args { name type { name ofType { name } } } } }`),
		`{ __typename }`,
	} {
		if r := e.Do("", q, nil); len(r.Errors) > 0 {
			t.Fatalf("%.80s: %s", q, r.Body)
		}
	}
}

func TestResponseSizeIsCapped(t *testing.T) {
	t.Parallel()
	e := testutil.New(t, func(o *server.Options) { o.Limits.MaxResponseBytes = 2000 })
	r := e.Do("", graphiQLIntrospection, nil)
	r.MustFail("RESPONSE_TOO_LARGE")
	if len(r.Body) > 1000 || strings.Contains(string(r.Body), "queryType") {
		t.Fatalf("the refused response leaks its data: %.300s", r.Body)
	}
	org := e.NewOrg("Acme")
	// A mutation whose answer is refused is rolled back.
	var names []string
	for i := range 20 {
		names = append(names, fmt.Sprintf(`r%d: createRole(input: {name: "%s %d", rank: 5}) { role { id name description rank admin createdAt updatedAt } errors { code } }`, i, strings.Repeat("x", 60), i))
	}
	e.Do(org.AdminToken, "mutation { "+strings.Join(names, " ")+" }", nil).MustFail("RESPONSE_TOO_LARGE")
	var out struct{ Roles struct{ TotalCount int } }
	e.Do(org.AdminToken, `{ roles { totalCount } }`, nil).MustData(&out)
	if out.Roles.TotalCount != 2 {
		t.Fatalf("want only the 2 built-in roles after the refused mutation, got %d", out.Roles.TotalCount)
	}
}
