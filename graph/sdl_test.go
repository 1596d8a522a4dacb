package graph_test

import (
	"os"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"admit/graph"
)

// The committed schema for client code generators is what the server
// serves, stands on its own, and carries no gqlgen directives.
func TestExportedSchemaIsCurrent(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../schema/export/admit.graphql")
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != graph.SDL() {
		t.Fatal("schema/export/admit.graphql is stale: run go generate ./... (or go run . schema > schema/export/admit.graphql)")
	}
	s, err := gqlparser.LoadSchema(&ast.Source{Name: "admit.graphql", Input: string(b)})
	if err != nil {
		t.Fatalf("the exported schema does not load on its own: %v", err)
	}
	for _, name := range []string{"Query", "Mutation", "Subscription", "Workspace", "JoinRequestEvent"} {
		if s.Types[name] == nil {
			t.Fatalf("the exported schema has no %s", name)
		}
	}
	if strings.Contains(string(b), "@goModel") || strings.Contains(string(b), "@goField") {
		t.Fatal("the exported schema carries gqlgen directives")
	}
}

// The README names every code a payload or a GraphQL error can carry, and
// every outcome of an invite result.
func TestREADMENamesEveryCodeAndOutcome(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	var missing []string
	for _, c := range graph.AllErrorCode {
		if !strings.Contains(readme, "`"+string(c)+"`") {
			missing = append(missing, string(c))
		}
	}
	for _, o := range graph.AllInviteOutcome {
		if !strings.Contains(readme, "`"+string(o)+"`") {
			missing = append(missing, string(o))
		}
	}
	if len(missing) > 0 {
		t.Fatalf("README.md does not name %v", missing)
	}
}
