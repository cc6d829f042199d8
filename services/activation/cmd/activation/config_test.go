package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/config"
	"github.com/dhosauth/dhosauth/pkg/service/servicetest"
	"github.com/dhosauth/dhosauth/services/activation/internal/activation"
)

func load(env map[string]string) (settings, error) {
	l := config.NewLoaderFrom(config.MapLookup(env))
	s := loadSettings(l)
	return s, l.Err()
}

func TestDefaults(t *testing.T) {
	dir := t.TempDir()
	s, err := load(map[string]string{"ENVIRONMENT": "DEVELOPMENT", "DATA_DIR": dir})
	if err != nil {
		t.Fatal(err)
	}
	want := activation.DefaultConfig()
	want.Production = false
	if s.Rules != want {
		t.Fatalf("rules %+v, want %+v", s.Rules, want)
	}
	if len(s.CodeHashKey) < 32 {
		t.Fatalf("generated key too short: %d", len(s.CodeHashKey))
	}
	if _, err := os.Stat(filepath.Join(dir, "code-hash.key")); err != nil {
		t.Fatalf("key file: %v", err)
	}
	again, err := load(map[string]string{"ENVIRONMENT": "DEVELOPMENT", "DATA_DIR": dir})
	if err != nil || string(again.CodeHashKey) != string(s.CodeHashKey) {
		t.Fatal("the generated key is not reused")
	}
}

func TestContractNames(t *testing.T) {
	s, err := load(map[string]string{
		"ENVIRONMENT":                       "TEST",
		"DATA_DIR":                          t.TempDir(),
		"OTP_LENGTH":                        "6",
		"AUTHORISATION_CODE_LENGTH":         "40",
		"SEND_ENTRY_ACTIVATION_CODE_LENGTH": "10",
		"ACTIVATION_EXPIRY_END_OF_NTH_DAY":  "2",
		"MAX_ACTIVATION_ATTEMPTS":           "3",
		"ALLOW_DROP_DATA":                   "true",
		"CODE_HASH_KEY":                     strings.Repeat("k", 32),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := activation.Config{OTPLength: 6, ActivationCodeLength: 40, DeviceCodeLength: 10, ExpiryDays: 2, MaxAttempts: 3, AllowDropData: true, Limits: activation.DefaultLimits()}
	if s.Rules != want || string(s.CodeHashKey) != strings.Repeat("k", 32) {
		t.Fatalf("got %+v", s.Rules)
	}
}

func TestProductionNeedsCodeHashKey(t *testing.T) {
	_, err := load(map[string]string{"ENVIRONMENT": "PRODUCTION", "HS_ISSUER": "x", "HS_KEY": strings.Repeat("h", 32), "INTERNAL_AUTH_KEY": strings.Repeat("i", 32)})
	if err == nil || !strings.Contains(err.Error(), "CODE_HASH_KEY") {
		t.Fatalf("got %v, want a CODE_HASH_KEY error", err)
	}
	s, err := load(map[string]string{"HS_ISSUER": "x", "HS_KEY": strings.Repeat("h", 32), "INTERNAL_AUTH_KEY": strings.Repeat("i", 32), "CODE_HASH_KEY": strings.Repeat("c", 32)})
	if err != nil || !s.Rules.Production {
		t.Fatalf("unset ENVIRONMENT is production: %v", err)
	}
	_, err = load(map[string]string{"ENVIRONMENT": "PRODUCTION", "HS_ISSUER": "x", "INTERNAL_AUTH_KEY": strings.Repeat("i", 32), "CODE_HASH_KEY": "short"})
	if err == nil || !strings.Contains(err.Error(), "CODE_HASH_KEY") {
		t.Fatalf("short key: %v", err)
	}
}

func TestAllErrorsListed(t *testing.T) {
	_, err := load(map[string]string{
		"ENVIRONMENT":             "PRODUCTION",
		"OTP_LENGTH":              "two",
		"MAX_ACTIVATION_ATTEMPTS": "0",
		"ALLOW_DROP_DATA":         "maybe",
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{"OTP_LENGTH", "MAX_ACTIVATION_ATTEMPTS", "ALLOW_DROP_DATA", "CODE_HASH_KEY", "INTERNAL_AUTH_KEY"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not mention %s:\n%v", name, err)
		}
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	servicetest.RunRejects(t, map[string]string{"ENVIRONMENT": "PRODUCTION", "CODE_HASH_KEY": "", "LOG_LEVEL": "LOUD"}, run, "CODE_HASH_KEY", "LOG_LEVEL")
}

// TestRunStartsAndStops starts the real process wiring on SQLite and stops
// it by cancelling the context, as SIGTERM does.
func TestRunStartsAndStops(t *testing.T) {
	r := servicetest.StartRun(t, map[string]string{"ACTIVATION_GRPC_ADDR": "127.0.0.1:0"}, run)
	r.Serving(500 * time.Millisecond)
	r.Stop()
}

func TestRateLimitSettings(t *testing.T) {
	s, err := load(map[string]string{
		"ENVIRONMENT":                    "TEST",
		"DATA_DIR":                       t.TempDir(),
		"RATE_LIMIT_PER_ADDRESS":         "5/1m",
		"RATE_LIMIT_PER_PRINCIPAL":       "off",
		"RATE_LIMIT_DEVICE_CODE_GUESSES": "50/2h",
	})
	if err != nil {
		t.Fatal(err)
	}
	l := s.Rules.Limits
	if l.PerAddress.String() != "5/1m0s" || !l.PerPrincipal.Off() || l.DeviceCodeGuesses.String() != "50/2h0m0s" {
		t.Fatalf("limits %+v", l)
	}
	if _, err := load(map[string]string{"ENVIRONMENT": "TEST", "DATA_DIR": t.TempDir(), "RATE_LIMIT_PER_ADDRESS": "lots"}); err == nil || !strings.Contains(err.Error(), "RATE_LIMIT_PER_ADDRESS") {
		t.Fatalf("bad limit: %v", err)
	}
}
