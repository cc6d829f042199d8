package main

import (
	"strings"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/config"
	"github.com/dhosauth/dhosauth/pkg/service"
)

func loadFrom(t *testing.T, env map[string]string) (ssoSettings, error) {
	t.Helper()
	env["DATA_DIR"] = t.TempDir()
	l := config.NewLoaderFrom(config.MapLookup(env))
	c := service.LoadCommon(l, "session")
	s := loadSSO(l, c)
	return s, l.Err()
}

// TestLocalLoginDefault: local password sign-in is on outside production,
// off in PRODUCTION unless LOCAL_LOGIN_ENABLED says so (with a warning).
func TestLocalLoginDefault(t *testing.T) {
	s, err := loadFrom(t, map[string]string{"ENVIRONMENT": "DEVELOPMENT"})
	if err != nil || !s.LocalLogin || len(s.RoleScopes["send clinician"]) == 0 || s.HTTPListen != DefaultHTTPAddr {
		t.Fatalf("development: %+v %v", s, err)
	}
	prod := map[string]string{"ENVIRONMENT": "PRODUCTION", "TOKEN_ISSUER": "https://auth.example/", "INTERNAL_AUTH_KEY": strings.Repeat("k", 40)}
	s, err = loadFrom(t, prod)
	if err != nil || s.LocalLogin || len(s.RoleScopes) != 0 {
		t.Fatalf("production: %+v %v", s, err)
	}
	prod["LOCAL_LOGIN_ENABLED"] = "true"
	s, err = loadFrom(t, prod)
	if err != nil || !s.LocalLogin || len(s.Notes) != 1 {
		t.Fatalf("production, enabled: %+v %v", s, err)
	}
}

// TestSSOConfigErrors: every problem is reported.
func TestSSOConfigErrors(t *testing.T) {
	_, err := loadFrom(t, map[string]string{
		"ENVIRONMENT":          "DEVELOPMENT",
		"OIDC_PROVIDERS":       `[{"id":"x"}]`,
		"OIDC_CLIENTS":         `[{"client_id":"a"}]`,
		"ROLE_SCOPES":          `{"r":["internal:revoke"]}`,
		"SESSION_IDLE_TIMEOUT": "1s",
	})
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"OIDC_PROVIDERS", "OIDC_CLIENTS", "ROLE_SCOPES", "SESSION_IDLE_TIMEOUT"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}

// TestRateLimitConfig: the activation service's variables and defaults;
// "off" turns a limit off (the end-to-end tests do); a bad value is
// reported.
func TestRateLimitConfig(t *testing.T) {
	s, err := loadFrom(t, map[string]string{"ENVIRONMENT": "DEVELOPMENT"})
	if err != nil || s.Limits.PerAddress.String() != "30/15m0s" || s.Limits.PerPrincipal.String() != "10/15m0s" {
		t.Fatalf("defaults: %v %v (%v)", s.Limits.PerAddress, s.Limits.PerPrincipal, err)
	}
	s, err = loadFrom(t, map[string]string{"ENVIRONMENT": "DEVELOPMENT", "RATE_LIMIT_PER_ADDRESS": "off", "RATE_LIMIT_PER_PRINCIPAL": "5/1m"})
	if err != nil || !s.Limits.PerAddress.Off() || s.Limits.PerPrincipal.Max != 5 || s.Limits.PerPrincipal.Window != time.Minute {
		t.Fatalf("off and 5/1m: %v %v (%v)", s.Limits.PerAddress, s.Limits.PerPrincipal, err)
	}
	_, err = loadFrom(t, map[string]string{"ENVIRONMENT": "DEVELOPMENT", "RATE_LIMIT_PER_PRINCIPAL": "ten"})
	if err == nil || !strings.Contains(err.Error(), "RATE_LIMIT_PER_PRINCIPAL") {
		t.Fatalf("a bad limit: %v", err)
	}
}
