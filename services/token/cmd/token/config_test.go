package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/config"
	"github.com/dhosauth/dhosauth/pkg/service"
	"github.com/dhosauth/dhosauth/services/token/internal/token"
)

var testRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

const internalKey = "0123456789abcdef0123456789abcdef-internal"

func load(env map[string]string) (settings, *config.Loader) {
	l := config.NewLoaderFrom(config.MapLookup(env))
	return loadSettings(l), l
}

func TestDefaultsOutsideProduction(t *testing.T) {
	dir := t.TempDir()
	s, l := load(map[string]string{"ENVIRONMENT": "DEVELOPMENT", "DATA_DIR": dir})
	if err := l.Err(); err != nil {
		t.Fatalf("config: %v", err)
	}
	want := map[string]string{
		"GDM patient": "read:gdm_patient_abbreviated read:gdm_location read:gdm_message write:gdm_message read:gdm_bg_reading write:gdm_bg_reading read:gdm_medication read:gdm_question read:gdm_answer write:gdm_answer read:gdm_trustomer read:gdm_telemetry write:gdm_telemetry write:gdm_terms_agreement",
		"device":      "read:send_entry_identifier read:send_device read:send_location read:send_trustomer",
		"clinician":   "read:send_clinician read:send_encounter write:send_encounter read:send_observation write:send_observation read:send_patient write:send_patient read:send_location read:send_device read:send_trustomer read:send_rule",
	}
	got := map[string]string{
		"GDM patient": strings.Join(s.Token.PatientScopes, " "),
		"device":      strings.Join(s.Token.DeviceScopes, " "),
		"clinician":   strings.Join(s.Token.ClinicianScopes, " "),
	}
	for k := range want {
		if got[k] != want[k] {
			t.Errorf("%s scope set = %q, want %q", k, got[k], want[k])
		}
	}
	if s.Token.PatientLifetime != 900*time.Second || s.Token.ClinicianLifetime != 900*time.Second ||
		s.Token.DeviceLifetime != 86400*time.Second || s.Token.SystemLifetime != 3600*time.Second {
		t.Errorf("lifetimes = %+v", s.Token)
	}
	if s.Token.AllowDropData {
		t.Error("ALLOW_DROP_DATA defaults to true")
	}
	if s.Common.Addr.Token != "127.0.0.1:9093" {
		t.Errorf("listen address %s", s.Common.Addr.Token)
	}
	if s.Keys.mode != modeManaged || s.Keys.managed.Alg != "ES256" || s.Keys.managed.RotationPeriod != 720*time.Hour ||
		s.Keys.managed.PropagationPeriod != time.Hour || s.Token.Issuer != service.DefaultIssuer || s.Token.Audience != service.DefaultIssuer {
		t.Errorf("keys %+v iss %s aud %s", s.Keys, s.Token.Issuer, s.Token.Audience)
	}
	if s.Keys.managed.Retention != 86400*time.Second+30*time.Second {
		t.Errorf("retention %s, want the device lifetime and the leeway", s.Keys.managed.Retention)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyEncryptionKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated key encryption key: %v %v", fi, err)
	}
	// The next start uses the same key encryption key.
	s2, _ := load(map[string]string{"ENVIRONMENT": "DEVELOPMENT", "DATA_DIR": dir})
	if string(s2.Keys.kek) != string(s.Keys.kek) || len(s.Keys.kek) < 32 {
		t.Error("a restart changed the key encryption key")
	}
}

func TestConfiguredValues(t *testing.T) {
	s, l := load(map[string]string{
		"ENVIRONMENT":                             "TEST",
		"DATA_DIR":                                t.TempDir(),
		"TOKEN_GRPC_ADDR":                         "0.0.0.0:7000",
		"GDM_PATIENT_SCOPE":                       "  read:a   write:b ",
		"SEND_ENTRY_DEVICE_SCOPE":                 "read:c",
		"SEND_ENTRY_CLINICIAN_SCOPE":              "read:d read:e",
		"JWT_EXPIRY_IN_SECONDS":                   "60",
		"SEND_ENTRY_DEVICE_JWT_EXPIRY_IN_SECONDS": "120",
		"SYSTEM_JWT_EXPIRY_IN_SECONDS":            "30",
		"ALLOW_DROP_DATA":                         "true",
	})
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	if s.Common.Addr.Token != "0.0.0.0:7000" ||
		!slices.Equal(s.Token.PatientScopes, []string{"read:a", "write:b"}) ||
		!slices.Equal(s.Token.DeviceScopes, []string{"read:c"}) ||
		!slices.Equal(s.Token.ClinicianScopes, []string{"read:d", "read:e"}) ||
		s.Token.PatientLifetime != time.Minute || s.Token.ClinicianLifetime != time.Minute ||
		s.Token.DeviceLifetime != 2*time.Minute || s.Token.SystemLifetime != 30*time.Second || !s.Token.AllowDropData {
		t.Errorf("settings = %+v", s.Token)
	}
}

func TestHSKeySignsHS512(t *testing.T) {
	s, l := load(map[string]string{
		"ENVIRONMENT":       "PRODUCTION",
		"HS_KEY":            "legacy-shared-secret",
		"HS_ISSUER":         "https://polaris.example/",
		"TOKEN_AUDIENCE":    "ignored-for-hs",
		"INTERNAL_AUTH_KEY": internalKey,
		"GDM_PATIENT_SCOPE": "read:a", "SEND_ENTRY_DEVICE_SCOPE": "read:b", "SEND_ENTRY_CLINICIAN_SCOPE": "read:c",
	})
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	if s.Keys.mode != modeHS || s.Keys.hs.Alg() != "HS512" {
		t.Errorf("keys %+v", s.Keys)
	}
	if s.Token.Issuer != "https://polaris.example/" || s.Token.Audience != "https://polaris.example/" {
		t.Errorf("iss %s aud %s, want both HS_ISSUER", s.Token.Issuer, s.Token.Audience)
	}
	summary := l.Summary()
	for i := 0; i < len(summary); i += 2 {
		if k := summary[i].(string); (k == "HS_KEY" || k == "INTERNAL_AUTH_KEY") && summary[i+1] != "********" {
			t.Errorf("%s logged as %v", k, summary[i+1])
		}
	}
}

func TestRSAKeyFromConfiguration(t *testing.T) {
	k := testRSAKey()
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	file := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	kid, _ := token.Thumbprint(&k.PublicKey)
	_ = token.AlgRS256
	base := map[string]string{
		"ENVIRONMENT": "PRODUCTION", "TOKEN_ISSUER": "https://dhos.example/", "TOKEN_AUDIENCE": "dhos-api",
		"INTERNAL_AUTH_KEY": internalKey,
		"GDM_PATIENT_SCOPE": "read:a", "SEND_ENTRY_DEVICE_SCOPE": "read:b", "SEND_ENTRY_CLINICIAN_SCOPE": "read:c",
	}
	for name, extra := range map[string]map[string]string{
		"RSA_PRIVATE_KEY":      {"RSA_PRIVATE_KEY": pkcs1},
		"RSA_PRIVATE_KEY_FILE": {"RSA_PRIVATE_KEY_FILE": file},
	} {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range extra {
				env[k] = v
			}
			s, l := load(env)
			if err := l.Err(); err != nil {
				t.Fatal(err)
			}
			if s.Keys.mode != modeFiles || s.Keys.files.Alg() != "RS256" || s.Keys.files.PublicKeys()[0].Kid != kid {
				t.Errorf("keys %+v, want the RS256 key %s", s.Keys, kid)
			}
			if s.Token.Issuer != "https://dhos.example/" || s.Token.Audience != "dhos-api" {
				t.Errorf("iss %s aud %s", s.Token.Issuer, s.Token.Audience)
			}
			for i, v := range l.Summary() {
				if sv, ok := v.(string); ok && strings.Contains(sv, "PRIVATE KEY-----") {
					t.Errorf("summary entry %d shows the key", i)
				}
			}
		})
	}
}

func TestProductionRequiresScopeSetsAndKey(t *testing.T) {
	_, l := load(map[string]string{"TOKEN_ISSUER": "https://dhos.example/", "INTERNAL_AUTH_KEY": internalKey})
	err := l.Err()
	if err == nil {
		t.Fatal("PRODUCTION without scope sets or key started")
	}
	for _, want := range []string{"GDM_PATIENT_SCOPE", "SEND_ENTRY_DEVICE_SCOPE", "SEND_ENTRY_CLINICIAN_SCOPE", "signing key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
}

func TestEveryProblemListed(t *testing.T) {
	_, l := load(map[string]string{
		"ENVIRONMENT":                  "DEVELOPMENT",
		"DATA_DIR":                     t.TempDir(),
		"JWT_EXPIRY_IN_SECONDS":        "soon",
		"SYSTEM_JWT_EXPIRY_IN_SECONDS": "0",
		"ALLOW_DROP_DATA":              "perhaps",
		"GDM_PATIENT_SCOPE":            "read:a internal:issue_token",
		"RSA_PRIVATE_KEY":              "not a key",
	})
	err := l.Err()
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	for _, want := range []string{"JWT_EXPIRY_IN_SECONDS", "SYSTEM_JWT_EXPIRY_IN_SECONDS", "ALLOW_DROP_DATA", "internal:issue_token", "RSA_PRIVATE_KEY"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	_, l = load(map[string]string{"ENVIRONMENT": "DEVELOPMENT", "DATA_DIR": t.TempDir(), "RSA_PRIVATE_KEY": "x", "RSA_PRIVATE_KEY_FILE": "/y"})
	if err := l.Err(); err == nil || !strings.Contains(err.Error(), "not several") {
		t.Errorf("both RSA settings: %v", err)
	}
	_, l = load(map[string]string{"ENVIRONMENT": "DEVELOPMENT", "DATA_DIR": t.TempDir(), "RSA_PRIVATE_KEY_FILE": "/no/such/file.pem"})
	if err := l.Err(); err == nil || !strings.Contains(err.Error(), "RSA_PRIVATE_KEY_FILE") {
		t.Errorf("missing key file: %v", err)
	}
}

func TestSigningAlgorithms(t *testing.T) {
	base := func(extra map[string]string) map[string]string {
		env := map[string]string{"ENVIRONMENT": "DEVELOPMENT", "DATA_DIR": t.TempDir()}
		for k, v := range extra {
			env[k] = v
		}
		return env
	}
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		s, l := load(base(map[string]string{"SIGNING_ALG": alg}))
		if err := l.Err(); err != nil || s.Keys.mode != modeManaged || s.Keys.managed.Alg != alg {
			t.Errorf("SIGNING_ALG=%s: %+v %v", alg, s.Keys, err)
		}
	}
	// HS_KEY with SIGNING_ALG: managed keys sign; HS512 is only accepted.
	s, l := load(base(map[string]string{"HS_KEY": "legacy-shared-secret", "HS_ISSUER": "https://polaris.example/", "SIGNING_ALG": "ES256"}))
	if err := l.Err(); err != nil || s.Keys.mode != modeManaged || s.Token.Issuer != "https://polaris.example/" {
		t.Errorf("HS_KEY with SIGNING_ALG=ES256: %+v %s %v", s.Keys, s.Token.Issuer, err)
	}
	s, l = load(base(map[string]string{"HS_KEY": "legacy-shared-secret", "HS_ISSUER": "https://polaris.example/", "SIGNING_ALG": "HS512"}))
	if err := l.Err(); err != nil || s.Keys.mode != modeHS {
		t.Errorf("SIGNING_ALG=HS512: %+v %v", s.Keys, err)
	}
	// HS_KEY without SIGNING_ALG keeps signing HS512, and says so.
	s, l = load(base(map[string]string{"HS_KEY": "legacy-shared-secret", "HS_ISSUER": "https://polaris.example/"}))
	if err := l.Err(); err != nil || s.Keys.mode != modeHS || len(s.Notes) == 0 || !strings.Contains(s.Notes[0], "SIGNING_ALG") {
		t.Errorf("HS_KEY alone: %+v %v %v", s.Keys, s.Notes, err)
	}
	for name, env := range map[string]map[string]string{
		"HS512 without HS_KEY":        {"SIGNING_ALG": "HS512"},
		"unknown algorithm":           {"SIGNING_ALG": "PS256"},
		"alg none":                    {"SIGNING_ALG": "none"},
		"rotation within propagation": {"KEY_ROTATION_PERIOD": "1h", "KEY_PROPAGATION_PERIOD": "2h"},
		"short KEK":                   {"KEY_ENCRYPTION_KEY": "short"},
		"bad expiry":                  {"KEY_ENCRYPTION_KEY_EXPIRES_AT": "soon"},
		"file alg mismatch":           {"SIGNING_ALG": "ES256", "RSA_PRIVATE_KEY": string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testRSAKey())}))},
	} {
		if _, l := load(base(env)); l.Err() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestProductionManagedKeysNeedKeyEncryptionKey(t *testing.T) {
	env := map[string]string{
		"TOKEN_ISSUER": "https://dhos.example/", "INTERNAL_AUTH_KEY": internalKey, "DATA_DIR": t.TempDir(),
		"GDM_PATIENT_SCOPE": "read:a", "SEND_ENTRY_DEVICE_SCOPE": "read:b", "SEND_ENTRY_CLINICIAN_SCOPE": "read:c",
	}
	_, l := load(env)
	if err := l.Err(); err == nil || !strings.Contains(err.Error(), "KEY_ENCRYPTION_KEY") {
		t.Fatalf("production without KEY_ENCRYPTION_KEY: %v", err)
	}
	env["KEY_ENCRYPTION_KEY"] = "a-key-encryption-key-of-at-least-32-chars"
	env["KEY_ENCRYPTION_KEY_EXPIRES_AT"] = "2027-01-31"
	env["HS_KEY_EXPIRES_AT"] = "2027-01-01T00:00:00Z" // HS_KEY is not in use: ignored
	s, l := load(env)
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	if len(s.Expiring) != 1 || s.Expiring[0].Name != "KEY_ENCRYPTION_KEY" || s.Expiring[0].ExpiresAt.Format(time.RFC3339) != "2027-01-31T23:59:59Z" {
		t.Errorf("expiring %+v", s.Expiring)
	}
	for i := 0; i < len(l.Summary()); i += 2 {
		if l.Summary()[i] == "KEY_ENCRYPTION_KEY" && l.Summary()[i+1] != "********" {
			t.Error("KEY_ENCRYPTION_KEY logged")
		}
	}
	entries, _ := os.ReadDir(env["DATA_DIR"])
	if len(entries) != 0 {
		t.Error("production wrote a key into DATA_DIR")
	}
}

func TestSigningKeysDir(t *testing.T) {
	dir := t.TempDir()
	der, _ := x509.MarshalPKCS8PrivateKey(testRSAKey())
	if err := os.WriteFile(filepath.Join(dir, "k1.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	s, l := load(map[string]string{
		"ENVIRONMENT": "PRODUCTION", "TOKEN_ISSUER": "https://dhos.example/", "INTERNAL_AUTH_KEY": internalKey,
		"GDM_PATIENT_SCOPE": "read:a", "SEND_ENTRY_DEVICE_SCOPE": "read:b", "SEND_ENTRY_CLINICIAN_SCOPE": "read:c",
		"SIGNING_KEYS_DIR": dir, "SIGNING_KEYS_EXPIRES_AT": "2030-01-01",
	})
	if err := l.Err(); err != nil {
		t.Fatalf("files in production need no KEY_ENCRYPTION_KEY: %v", err)
	}
	if s.Keys.mode != modeFiles || s.Keys.files.Alg() != "RS256" || len(s.Expiring) != 1 || s.Expiring[0].Name != "SIGNING_KEYS" {
		t.Errorf("keys %+v expiring %+v", s.Keys, s.Expiring)
	}
}

func TestRefreshInterval(t *testing.T) {
	for prop, want := range map[time.Duration]time.Duration{time.Hour: 30 * time.Second, 2 * time.Second: 500 * time.Millisecond, 100 * time.Millisecond: 100 * time.Millisecond} {
		if got := refreshInterval(prop); got != want {
			t.Errorf("refreshInterval(%s) = %s, want %s", prop, got, want)
		}
	}
}
