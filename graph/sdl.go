package graph

import (
	"bytes"
	"strings"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/formatter"
)

// SDL is the complete schema Admit serves, as one document, without
// gqlgen's Go-binding directives: what client teams feed their code
// generators (schema/export/admit.graphql).
func SDL() string {
	// Work on a copy: the executable schema is shared with the server.
	copied, err := gqlparser.LoadSchema(&ast.Source{Name: "admit.graphql", Input: format(NewExecutableSchema(Config{Resolvers: &Resolver{}}).Schema())})
	if err != nil {
		panic(err) // the schema the server runs always reloads
	}
	for name := range copied.Directives {
		if strings.HasPrefix(name, "go") {
			delete(copied.Directives, name)
		}
	}
	for _, def := range copied.Types {
		def.Directives = withoutGo(def.Directives)
		for _, f := range def.Fields {
			f.Directives = withoutGo(f.Directives)
		}
		for _, v := range def.EnumValues {
			v.Directives = withoutGo(v.Directives)
		}
	}
	return format(copied)
}

func format(s *ast.Schema) string {
	var b bytes.Buffer
	formatter.NewFormatter(&b, formatter.WithComments()).FormatSchema(s)
	return b.String()
}

// withoutGo drops gqlgen's @goModel, @goField and similar directives.
func withoutGo(ds ast.DirectiveList) ast.DirectiveList {
	var out ast.DirectiveList
	for _, d := range ds {
		if !strings.HasPrefix(d.Name, "go") {
			out = append(out, d)
		}
	}
	return out
}
