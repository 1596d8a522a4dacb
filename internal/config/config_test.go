package config_test

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"admit/internal/account"
	"admit/internal/config"
	"admit/internal/server"
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

// Every limit the server reads has a value from the defaults: a setting
// added to server.Limits but not read here would be zero, and zero turns
// most limits off.
func TestDefaultsMatchTheServersDefaultLimits(t *testing.T) {
	c, err := config.Load(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits != server.DefaultLimits {
		t.Errorf("limits from the default settings:\n%+v\nserver.DefaultLimits:\n%+v", c.Limits, server.DefaultLimits)
	}
	if c.SignInLimits != account.DefaultSignInLimits {
		t.Errorf("sign-in limits %+v, want %+v", c.SignInLimits, account.DefaultSignInLimits)
	}
}
