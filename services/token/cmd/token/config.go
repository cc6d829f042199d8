package main

import (
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/config"
	"github.com/dhosauth/dhosauth/pkg/secret"
	"github.com/dhosauth/dhosauth/pkg/service"
	"github.com/dhosauth/dhosauth/services/token/internal/token"
)

// Default scope sets, used outside PRODUCTION when the variable is unset.
const (
	defaultGDMPatientScope = "read:gdm_patient_abbreviated read:gdm_location read:gdm_message write:gdm_message " +
		"read:gdm_bg_reading write:gdm_bg_reading read:gdm_medication read:gdm_question read:gdm_answer " +
		"write:gdm_answer read:gdm_trustomer read:gdm_telemetry write:gdm_telemetry write:gdm_terms_agreement"
	defaultSendEntryDeviceScope    = "read:send_entry_identifier read:send_device read:send_location read:send_trustomer"
	defaultSendEntryClinicianScope = "read:send_clinician read:send_encounter write:send_encounter read:send_observation " +
		"write:send_observation read:send_patient write:send_patient read:send_location read:send_device " +
		"read:send_trustomer read:send_rule"
)

// maxExpirySeconds bounds every configured token lifetime (one year).
const maxExpirySeconds = 366 * 24 * 3600

// Key defaults.
const (
	defaultSigningAlg        = token.AlgES256
	defaultRotationPeriod    = 720 * time.Hour
	defaultPropagationPeriod = time.Hour
	// KeyEncryptionKeyFile keeps the generated KEY_ENCRYPTION_KEY in
	// DATA_DIR outside production.
	KeyEncryptionKeyFile = "key-encryption.key"
)

// Where signing keys come from.
const (
	modeManaged = "managed" // made by the service, sealed in its store
	modeFiles   = "files"   // SIGNING_KEYS_DIR, RSA_PRIVATE_KEY(_FILE)
	modeHS      = "hs512"   // the legacy shared key HS_KEY
)

// keyPlan is how the signer is built once the store is open.
type keyPlan struct {
	mode string
	// propagation is KEY_PROPAGATION_PERIOD: how long a new key is
	// published before it signs (managed keys), and what bounds the
	// caching of the key set (every mode).
	propagation time.Duration
	// hs and files are ready-made signers of those modes.
	hs    *token.HSSigner
	files *token.FileKeys
	// managed keys: configuration and the key encryption keys.
	managed token.ManagedConfig
	kek     []byte
	kekPrev []byte
}

// settings is the token service's configuration.
type settings struct {
	Common service.Common
	Token  token.Config
	Keys   keyPlan
	// Expiring are configured secrets with an *_EXPIRES_AT.
	Expiring      []token.Expiring
	ExpiryWarning time.Duration
	// Notes are remarks for the start-up log.
	Notes []string
}

// loadSettings reads the configuration through l; problems are recorded
// in l (see l.Err).
func loadSettings(l *config.Loader) settings {
	c := service.LoadCommon(l, "token")
	prod := c.Environment.IsProduction()
	s := settings{Common: c}
	s.Token = token.Config{
		PatientScopes:   scopeSet(l, "GDM_PATIENT_SCOPE", defaultGDMPatientScope, prod),
		DeviceScopes:    scopeSet(l, "SEND_ENTRY_DEVICE_SCOPE", defaultSendEntryDeviceScope, prod),
		ClinicianScopes: scopeSet(l, "SEND_ENTRY_CLINICIAN_SCOPE", defaultSendEntryClinicianScope, prod),
		PatientLifetime: seconds(l, "JWT_EXPIRY_IN_SECONDS", 900),
		DeviceLifetime:  seconds(l, "SEND_ENTRY_DEVICE_JWT_EXPIRY_IN_SECONDS", 86400),
		SystemLifetime:  seconds(l, "SYSTEM_JWT_EXPIRY_IN_SECONDS", 3600),
		AllowDropData:   l.Bool("ALLOW_DROP_DATA", false),
		Leeway:          c.Trust.Leeway,
	}
	s.Token.ClinicianLifetime = s.Token.PatientLifetime
	s.ExpiryWarning = l.Duration("KEY_EXPIRY_WARNING", token.DefaultExpiryWarning)
	s.Keys, s.Token.Issuer, s.Token.Audience, s.Notes = loadKeys(l, c, s.Token.Retention())
	s.Expiring = expiries(l, s.Keys.mode)
	return s
}

// scopeSet reads a space-separated scope set. Outside production an unset
// variable means def; in production it is an error.
func scopeSet(l *config.Loader, name, def string, production bool) []string {
	v := l.String(name, "")
	if v == "" {
		if production {
			l.Fail("%s must be set in PRODUCTION (a space-separated list of scopes)", name)
			return nil
		}
		v = def
	}
	scopes := auth.ParseScopes(v)
	for _, sc := range scopes {
		if strings.HasPrefix(sc, token.InternalScopePrefix) {
			l.Fail("%s: scope %q is internal to the suite and cannot be issued", name, sc)
		}
	}
	return scopes
}

func seconds(l *config.Loader, name string, def int) time.Duration {
	return time.Duration(l.Int(name, def, 1, maxExpirySeconds)) * time.Second
}

// loadKeys chooses how tokens are signed:
//   - HS512 under HS_KEY (iss = aud = HS_ISSUER) when SIGNING_ALG is HS512,
//     or when HS_KEY is set and SIGNING_ALG is not (as before managed keys
//     existed, so that estates on the shared key keep working unchanged);
//   - keys from files: SIGNING_KEYS_DIR (every *.pem file), or one key in
//     RSA_PRIVATE_KEY or RSA_PRIVATE_KEY_FILE;
//   - otherwise managed keys of SIGNING_ALG (ES256 by default) made by the
//     service and sealed in its store under KEY_ENCRYPTION_KEY (required
//     in production; generated once into DATA_DIR elsewhere).
func loadKeys(l *config.Loader, c service.Common, retention time.Duration) (p keyPlan, iss, aud string, notes []string) {
	alg := l.String("SIGNING_ALG", "")
	dir := l.String("SIGNING_KEYS_DIR", "")
	signingID := l.String("SIGNING_KEY_ID", "")
	pemText := l.Secret("RSA_PRIVATE_KEY")
	pemFile := l.String("RSA_PRIVATE_KEY_FILE", "")
	rotation := l.Duration("KEY_ROTATION_PERIOD", defaultRotationPeriod)
	propagation := l.Duration("KEY_PROPAGATION_PERIOD", defaultPropagationPeriod)
	if alg != "" && alg != token.AlgHS512 && !slices.Contains(token.ManagedAlgorithms, alg) {
		l.Fail("SIGNING_ALG: want one of ES256, EdDSA, RS256, HS512, got %q", alg)
		return p, "", "", notes
	}
	fileSources := 0
	for _, v := range []string{dir, pemText, pemFile} {
		if v != "" {
			fileSources++
		}
	}

	if alg == token.AlgHS512 || (alg == "" && len(c.HSKey) > 0) {
		if len(c.HSKey) == 0 {
			l.Fail("SIGNING_ALG=HS512 needs HS_KEY (and HS_ISSUER)")
			return p, "", "", notes
		}
		if fileSources > 0 {
			notes = append(notes, "tokens are signed HS512 with HS_KEY: the configured key files are not used (set SIGNING_ALG to use them)")
		}
		if alg == "" {
			notes = append(notes, "HS_KEY is set and SIGNING_ALG is not: tokens are signed HS512 with the shared key, as before; set SIGNING_ALG=ES256 to sign with managed keys (HS512 tokens are still accepted)")
		}
		hs, err := token.NewHSSigner(c.HSKey)
		if err != nil {
			l.Fail("HS_KEY: %v", err)
			return p, "", "", notes
		}
		return keyPlan{mode: modeHS, hs: hs, propagation: propagation}, c.HSIssuer, c.HSIssuer, notes
	}

	if fileSources > 0 {
		if fileSources > 1 {
			l.Fail("set one of SIGNING_KEYS_DIR, RSA_PRIVATE_KEY, RSA_PRIVATE_KEY_FILE, not several")
			return p, "", "", notes
		}
		files, source, err := fileKeys(dir, signingID, pemText, pemFile)
		if err != nil {
			l.Fail("%s: %v", source, err)
			return p, "", "", notes
		}
		if alg != "" && files.Alg() != alg {
			l.Fail("SIGNING_ALG is %s but the signing key in %s is %s", alg, source, files.Alg())
			return p, "", "", notes
		}
		return keyPlan{mode: modeFiles, files: files, propagation: propagation}, c.Issuer, c.Audience, notes
	}

	if alg == "" {
		alg = defaultSigningAlg
	}
	if rotation <= propagation {
		l.Fail("KEY_ROTATION_PERIOD (%s) must be longer than KEY_PROPAGATION_PERIOD (%s)", rotation, propagation)
	}
	if max := 24 * time.Hour; propagation > max {
		l.Fail("KEY_PROPAGATION_PERIOD: at most %s, got %s", max, propagation)
	}
	prod := c.Environment.IsProduction()
	kekValue := l.Secret("KEY_ENCRYPTION_KEY")
	if kekValue == "" && prod {
		l.Fail("KEY_ENCRYPTION_KEY must be set in PRODUCTION to seal the managed signing keys (at least 32 characters), " +
			"or configure a signing key: SIGNING_KEYS_DIR, RSA_PRIVATE_KEY(_FILE) or HS_KEY")
		return p, "", "", notes
	}
	kek, err := secret.LoadKey(kekValue, c.DataDir, KeyEncryptionKeyFile, !prod)
	if err != nil {
		l.Fail("KEY_ENCRYPTION_KEY: %v", err)
		return p, "", "", notes
	}
	if kekValue == "" {
		notes = append(notes, "KEY_ENCRYPTION_KEY is not set: the managed signing keys are sealed under the key generated in DATA_DIR/"+KeyEncryptionKeyFile+" (not for production)")
	}
	prev := l.Secret("KEY_ENCRYPTION_KEY_PREVIOUS")
	if prev != "" && len(prev) < secret.MinKeyLength {
		l.Fail("KEY_ENCRYPTION_KEY_PREVIOUS must be at least %d characters", secret.MinKeyLength)
	}
	return keyPlan{
		mode:        modeManaged,
		propagation: propagation,
		managed:     token.ManagedConfig{Alg: alg, RotationPeriod: rotation, PropagationPeriod: propagation, Retention: retention},
		kek:         kek,
		kekPrev:     []byte(prev),
	}, c.Issuer, c.Audience, notes
}

// fileKeys reads the configured key files; source names the setting.
func fileKeys(dir, signingID, pemText, pemFile string) (*token.FileKeys, string, error) {
	if dir != "" {
		f, err := token.NewFileKeys(dir, signingID)
		return f, "SIGNING_KEYS_DIR", err
	}
	text, source := []byte(pemText), "RSA_PRIVATE_KEY"
	if pemFile != "" {
		b, err := os.ReadFile(pemFile)
		if err != nil {
			return nil, "RSA_PRIVATE_KEY_FILE", err
		}
		text, source = b, "RSA_PRIVATE_KEY_FILE"
	}
	rk, err := token.ParseRSAPrivateKey(text)
	if err != nil {
		return nil, source, err
	}
	k, err := token.NewKeyPair(rk)
	if err != nil {
		return nil, source, err
	}
	return token.NewFixedKey(k), source, nil
}

// expiries reads the *_EXPIRES_AT of the secrets in use: an RFC 3339 time
// or a date (the end of that day, UTC).
func expiries(l *config.Loader, mode string) []token.Expiring {
	names := []string{"INTERNAL_AUTH_KEY"}
	switch mode {
	case modeHS:
		names = append(names, "HS_KEY")
	case modeFiles:
		names = append(names, "SIGNING_KEYS", "RSA_PRIVATE_KEY")
	case modeManaged:
		names = append(names, "KEY_ENCRYPTION_KEY")
	}
	var out []token.Expiring
	for _, n := range names {
		v := l.String(n+"_EXPIRES_AT", "")
		if v == "" {
			continue
		}
		t, err := parseExpiry(v)
		if err != nil {
			l.Fail("%s_EXPIRES_AT: want a date (2026-12-31) or an RFC 3339 time, got %q", n, v)
			continue
		}
		out = append(out, token.Expiring{Name: n, ExpiresAt: t})
	}
	return out
}

func parseExpiry(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	d, err := time.Parse("2006-01-02", v)
	if err != nil {
		return time.Time{}, err
	}
	return d.Add(24*time.Hour - time.Millisecond), nil
}
