package main

import (
	"strings"
	"testing"

	"github.com/dhosauth/dhosauth/pkg/config"
)

func loader(t *testing.T, env map[string]string) *config.Loader {
	t.Helper()
	if _, ok := env["DATA_DIR"]; !ok {
		env["DATA_DIR"] = t.TempDir()
	}
	return config.NewLoaderFrom(config.MapLookup(env))
}

func TestLoadDefaults(t *testing.T) {
	s, err := load(loader(t, map[string]string{"ENVIRONMENT": "DEVELOPMENT"}))
	if err != nil {
		t.Fatal(err)
	}
	if s.addr != "0.0.0.0:8080" {
		t.Errorf("addr %q", s.addr)
	}
	if s.allowDropData {
		t.Error("drop data allowed by default")
	}
	if s.version.Version != "dev" || s.version.Build != "0" || s.version.Hash != "unknown" {
		t.Errorf("version %+v", s.version)
	}
	if s.common.Addr.Activation == "" || s.common.Addr.Session == "" {
		t.Errorf("service addresses %+v", s.common.Addr)
	}
}

func TestLoadSettings(t *testing.T) {
	s, err := load(loader(t, map[string]string{
		"ENVIRONMENT": "TEST", "HTTP_HOST": "127.0.0.1", "HTTP_PORT": "9000", "ALLOW_DROP_DATA": "true",
		"VERSION": "2.0.0", "BUILD_NUMBER": "77", "GIT_HASH": "deadbeef",
		"ACTIVATION_GRPC_ADDR": "activation:1", "SESSION_GRPC_ADDR": "session:2",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if s.addr != "127.0.0.1:9000" || !s.allowDropData {
		t.Errorf("settings %+v", s)
	}
	if s.version.Version != "2.0.0" || s.version.Build != "77" || s.version.Hash != "deadbeef" {
		t.Errorf("version %+v", s.version)
	}
	if s.common.Addr.Activation != "activation:1" || s.common.Addr.Session != "session:2" {
		t.Errorf("addresses %+v", s.common.Addr)
	}
}

func TestBuildVariablesWin(t *testing.T) {
	version, build, hash = "9.9.9", "123", "cafe"
	t.Cleanup(func() { version, build, hash = "", "", "" })
	s, err := load(loader(t, map[string]string{"ENVIRONMENT": "TEST", "VERSION": "env"}))
	if err != nil {
		t.Fatal(err)
	}
	if s.version.Version != "9.9.9" || s.version.Build != "123" || s.version.Hash != "cafe" {
		t.Errorf("version %+v", s.version)
	}
}

func TestLoadRejectsBadValues(t *testing.T) {
	_, err := load(loader(t, map[string]string{
		"ENVIRONMENT": "TEST", "HTTP_PORT": "eighty", "ALLOW_DROP_DATA": "maybe",
	}))
	if err == nil || !strings.Contains(err.Error(), "HTTP_PORT") || !strings.Contains(err.Error(), "ALLOW_DROP_DATA") {
		t.Errorf("err = %v", err)
	}
}

// In PRODUCTION the test-data endpoints are not served at all, so a
// shared ALLOW_DROP_DATA=true does not stop the edge from starting.
func TestLoadProduction(t *testing.T) {
	s, err := load(loader(t, map[string]string{
		"ENVIRONMENT": "PRODUCTION", "ALLOW_DROP_DATA": "true", "HS_KEY": strings.Repeat("h", 40), "HS_ISSUER": "https://x/",
		"INTERNAL_AUTH_KEY": strings.Repeat("k", 40),
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !s.common.Environment.IsProduction() {
		t.Errorf("environment %q", s.common.Environment)
	}
}

func TestLoadTrustedProxies(t *testing.T) {
	s, err := load(loader(t, map[string]string{"ENVIRONMENT": "TEST", "TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.trustedProxies) != 2 || s.trustedProxies[1].String() != "192.0.2.7/32" {
		t.Fatalf("trusted proxies %v", s.trustedProxies)
	}
	if s, _ := load(loader(t, map[string]string{"ENVIRONMENT": "TEST"})); len(s.trustedProxies) != 0 {
		t.Fatalf("trusted proxies by default: %v", s.trustedProxies)
	}
	_, err = load(loader(t, map[string]string{"ENVIRONMENT": "TEST", "TRUSTED_PROXIES": "10.0.0.0/33"}))
	if err == nil || !strings.Contains(err.Error(), "TRUSTED_PROXIES") {
		t.Fatalf("bad prefix: %v", err)
	}
}
