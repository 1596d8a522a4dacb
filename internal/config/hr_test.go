package config_test

import (
	"io"
	"strings"
	"testing"
	"time"

	"admit/internal/config"
)

// The HR settings: private hosts are refused unless turned on, and a bad
// value is a configuration error, not a silent default.
func TestHRSettings(t *testing.T) {
	c, err := config.Load(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.HRAllowPrivateHosts || c.HRSyncCheck != time.Minute {
		t.Errorf("defaults: allow private %v, check every %v", c.HRAllowPrivateHosts, c.HRSyncCheck)
	}
	env := map[string]string{"ADMIT_HR_ALLOW_PRIVATE_HOSTS": "true", "HR_SYNC_CHECK_INTERVAL": "30s"}
	if c, err = config.Load(nil, func(k string) string { return env[k] }, io.Discard); err != nil || !c.HRAllowPrivateHosts || c.HRSyncCheck != 30*time.Second {
		t.Errorf("set: %+v, %v", c.HRAllowPrivateHosts, err)
	}
	env["ADMIT_HR_ALLOW_PRIVATE_HOSTS"] = "sometimes"
	if _, err := config.Load(nil, func(k string) string { return env[k] }, io.Discard); err == nil || !strings.Contains(err.Error(), "ADMIT_HR_ALLOW_PRIVATE_HOSTS") {
		t.Errorf("a bad value: err = %v", err)
	}
}
