package server

import (
	"embed"
	"net/http"
)

//go:embed static
var static embed.FS

// acceptPage serves the page invitation links open by default. The token is
// in its URL, so the page never sends a Referer, is never cached, loads
// nothing from elsewhere and runs no inline script.
func acceptPage(file, contentType string) http.Handler {
	b, err := static.ReadFile("static/" + file)
	if err != nil {
		panic(err) // embedded at build time
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
		_, _ = w.Write(b)
	})
}
