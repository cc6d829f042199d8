package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestProductionWithLegacyKey runs the suite as PRODUCTION with the legacy
// shared HS512 key: non-production features are gone, issued tokens are
// HS512 with iss = aud = HS_ISSUER, and tokens other Polaris services sign
// with HS_KEY are accepted.
func TestProductionWithLegacyKey(t *testing.T) {
	const issuer = "https://polaris.example/"
	key := "legacy-shared-hs512-key-0123456789abcdef"
	s := Start(t, map[string]string{
		"ENVIRONMENT":                "PRODUCTION",
		"ALLOW_DROP_DATA":            "true",
		"HS_KEY":                     key,
		"HS_ISSUER":                  issuer,
		"CODE_HASH_KEY":              "code-hash-key-0123456789abcdef0123456789",
		"INTERNAL_AUTH_KEY":          "internal-auth-key-0123456789abcdef012345",
		"GDM_PATIENT_SCOPE":          "read:gdm_message",
		"SEND_ENTRY_DEVICE_SCOPE":    "read:send_entry_identifier",
		"SEND_ENTRY_CLINICIAN_SCOPE": "read:send_patient",
	})
	legacy := func(scope string, md map[string]any) string {
		now := time.Now()
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{
			"iss": issuer, "aud": issuer, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
			"scope": scope, "metadata": md,
		}).SignedString([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	admin := legacy("write:gdm_activation read:gdm_activation write:send_device read:send_device", map[string]any{"system_id": "polaris"})

	patient := Unique("patient")
	a := createPatientActivation(t, s, admin, patient)
	auth := Expect(t, validatePatient(s, a.Code, a.OTP), 200).JSON(t)["authorisation_code"].(string)
	s.Secret(auth)
	tok := Expect(t, patientJWT(t, s, patient, auth), 200).JSON(t)["jwt"].(string)
	s.Secret(tok)
	parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return []byte(key), nil },
		jwt.WithValidMethods([]string{"HS512"}), jwt.WithIssuer(issuer), jwt.WithAudience(issuer))
	if err != nil || !parsed.Valid {
		t.Fatalf("issued token does not verify as legacy HS512: %v", err)
	}
	if !strings.Contains(Claims(t, tok)["scope"].(string), "read:gdm_message") {
		t.Fatal("configured patient scope not used")
	}

	// Non-production features answer 404 in production.
	Expect(t, s.Do("POST", "/drop_data", admin, nil), 404)
	Expect(t, s.Do("POST", "/reset_test_data", admin, nil), 404)
	Expect(t, s.Do("GET", "/dhos/v1/patient/"+patient+"/security-info", tok, nil), 404)
	Expect(t, s.Do("GET", "/dhos/v1/patient/"+patient+"/security-test", tok, nil), 404)
	Expect(t, s.Do("GET", "/docs", "", nil), 404)
	Expect(t, s.Do("POST", "/dhos/v1/activation/1", "", map[string]any{"otp": "1111"}), 404)
	Expect(t, patientJWT(t, s, "static_patient_uuid_1", "1"), 404)
	Expect(t, s.Do("POST", "/dhos/v1/activation/111111111?type=send_entry", "", nil), 404)
	// Every non-production RPC and route of the scope table, and every
	// static activation.
	checkNonProductionGone(t, s, issuer, key)
}

// TestProductionRefusesMissingConfiguration: a production service without
// its scope sets or keys does not start.
func TestProductionRefusesMissingConfiguration(t *testing.T) {
	for _, p := range []string{"token", "activation"} {
		out, err := runBinary(t, p, map[string]string{"ENVIRONMENT": "PRODUCTION", "DATA_DIR": t.TempDir()})
		if err == nil {
			t.Fatalf("%s started in PRODUCTION without configuration:\n%s", p, out)
		}
	}
}
