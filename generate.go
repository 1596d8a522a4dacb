package main

// Code generation runs from the module root, ent first (it writes
// schema/ent.graphql), then gqlgen (it reads every schema/*.graphql).
//go:generate go run -mod=mod ./ent/entc.go
//go:generate go run -mod=mod ./gqlgen.go
//go:generate sh -c "go run . schema > schema/export/admit.graphql"
