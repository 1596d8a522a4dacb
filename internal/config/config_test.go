package config_test

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"admit/internal/config"
)

// The README's configuration table must list every setting the server reads.
func TestREADMEListsEverySetting(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range config.Settings {
		row := "| `" + s.Env + "` | `-" + s.Flag + "` |"
		if !strings.Contains(string(b), row) {
			t.Errorf("README.md has no row for %s (%s)", s.Env, row)
		}
	}
}

func TestFlagsOverrideEnvironment(t *testing.T) {
	env := map[string]string{"ADDR": ":1111", "SESSION_TTL": "1h", "CORS_ALLOWED_ORIGINS": "https://a.example, https://b.example/"}
	c, err := config.Load([]string{"-addr", ":2222"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":2222" {
		t.Errorf("Addr = %q, want the flag's :2222", c.Addr)
	}
	if c.SessionTTL != time.Hour {
		t.Errorf("SessionTTL = %v, want 1h from the environment", c.SessionTTL)
	}
	if got := strings.Join(c.CORSAllowedOrigins, " "); got != "https://a.example https://b.example" {
		t.Errorf("origins = %q", got)
	}
	if c.DatabaseURL != "admit.db" || c.Limits.MaxPageSize != 100 || !c.Introspection {
		t.Errorf("defaults not applied: %+v", c)
	}
}
