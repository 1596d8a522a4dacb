//go:build ignore

// gqlgen runs gqlgen's code generation (as `go run github.com/99designs/gqlgen`
// does, with gqlgen.yml) plus one plugin: the fields of objects backed by
// an ent entity are resolved one after another on the goroutine that
// marshals the object, not each in a goroutine of its own.
//
// gqlgen starts a goroutine for every field that is a resolver or a method
// taking a context (entgql's edge methods, Invitation.status) as soon as an
// object has more than one. In a list of 100 invitations with their role,
// inviter and status that was 200 goroutines besides the 100 for the rows,
// each growing its stack through gqlgen's deep call chain: about a fifth of
// the server's CPU on the read path (runtime.copystack, newstack). The
// edges of listed rows are loaded ahead by entgql's field collection, so
// these fields wait for nothing; rows of a list are still marshalled
// concurrently.
package main

import (
	"fmt"
	"go/types"
	"os"
	"strings"

	"github.com/99designs/gqlgen/api"
	"github.com/99designs/gqlgen/codegen"
	"github.com/99designs/gqlgen/codegen/config"
)

type sequentialEntObjects struct{}

func (sequentialEntObjects) Name() string { return "sequential-ent-objects" }

func (sequentialEntObjects) GenerateCode(data *codegen.Data) error {
	for _, o := range data.Objects {
		if !o.Root && strings.HasPrefix(strings.TrimPrefix(types.TypeString(o.Type, nil), "*"), "admit/ent.") {
			o.DisableConcurrency = true
		}
	}
	return nil
}

func main() {
	cfg, err := config.LoadConfigFromDefaultLocations()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gqlgen:", err)
		os.Exit(1)
	}
	if err := api.Generate(cfg, api.AddPlugin(sequentialEntObjects{})); err != nil {
		fmt.Fprintln(os.Stderr, "gqlgen:", err)
		os.Exit(1)
	}
}
