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
	if s.Signer.Alg() != "RS256" || s.Token.Issuer != service.DefaultIssuer || s.Token.Audience != service.DefaultIssuer {
		t.Errorf("signer %s iss %s aud %s", s.Signer.Alg(), s.Token.Issuer, s.Token.Audience)
	}
	fi, err := os.Stat(filepath.Join(dir, token.SigningKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated key file: %v %v", fi, err)
	}
	// The next start uses the same key.
	s2, _ := load(map[string]string{"ENVIRONMENT": "DEVELOPMENT", "DATA_DIR": dir})
	if s2.Signer.PublicKeys()[0].Kid != s.Signer.PublicKeys()[0].Kid {
		t.Error("a restart changed the signing key")
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
	if s.Signer.Alg() != "HS512" || len(s.Signer.PublicKeys()) != 0 {
		t.Errorf("signer %s with %d public keys", s.Signer.Alg(), len(s.Signer.PublicKeys()))
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
			if s.Signer.Alg() != "RS256" || s.Signer.PublicKeys()[0].Kid != kid {
				t.Errorf("signer %s kid %s, want RS256 %s", s.Signer.Alg(), s.Signer.PublicKeys()[0].Kid, kid)
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
	if err := l.Err(); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("both RSA settings: %v", err)
	}
	_, l = load(map[string]string{"ENVIRONMENT": "DEVELOPMENT", "DATA_DIR": t.TempDir(), "RSA_PRIVATE_KEY_FILE": "/no/such/file.pem"})
	if err := l.Err(); err == nil || !strings.Contains(err.Error(), "RSA_PRIVATE_KEY_FILE") {
		t.Errorf("missing key file: %v", err)
	}
}
