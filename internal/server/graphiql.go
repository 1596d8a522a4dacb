package server

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// graphiqlFiles is GraphiQL with its React and graphql-ws, served from the
// binary so the playground needs no network (graphiql/VERSIONS.md).
//
//go:embed graphiql
var graphiqlFiles embed.FS

// graphiqlCSP lets the playground load only what this server serves, and
// talk only to it ('self' covers its own websocket in CSP 3 browsers). Fonts
// and icons are data: URIs inside GraphiQL's stylesheet.
const graphiqlCSP = "default-src 'self'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// graphiqlHandler serves GET / and GET /graphiql/<file>.
func graphiqlHandler() http.Handler {
	sub, err := fs.Sub(graphiqlFiles, "graphiql")
	if err != nil {
		panic(err) // embedded at build time
	}
	types := map[string]string{".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := "index.html"
		if rest, ok := strings.CutPrefix(r.URL.Path, "/graphiql/"); ok {
			name = "vendor/" + path.Base(rest)
			if rest == "admit.js" || rest == "admit.css" {
				name = rest
			}
		}
		b, err := fs.ReadFile(sub, name)
		ct, known := types[path.Ext(name)]
		if err != nil || !known {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", ct)
		h.Set("Content-Security-Policy", graphiqlCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if name == "index.html" {
			h.Set("Cache-Control", "no-cache")
		} else {
			h.Set("Cache-Control", "public, max-age=86400")
		}
		_, _ = w.Write(b)
	})
}
