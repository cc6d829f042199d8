package main

import (
	"crypto/rsa"
	"os"
	"strings"
	"time"

	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/config"
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

// settings is the token service's configuration.
type settings struct {
	Common service.Common
	Token  token.Config
	Signer token.Signer
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
	}
	s.Token.ClinicianLifetime = s.Token.PatientLifetime
	s.Signer, s.Token.Issuer, s.Token.Audience, s.Notes = loadSigner(l, c)
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

// loadSigner chooses how tokens are signed. With HS_KEY: HS512 under it,
// iss = aud = HS_ISSUER, as the original service did. Otherwise RS256 with
// RSA_PRIVATE_KEY or RSA_PRIVATE_KEY_FILE, iss and aud from the common
// configuration; outside production, with neither, a key generated once
// and kept in DATA_DIR.
func loadSigner(l *config.Loader, c service.Common) (signer token.Signer, iss, aud string, notes []string) {
	pemText := l.Secret("RSA_PRIVATE_KEY")
	pemFile := l.String("RSA_PRIVATE_KEY_FILE", "")
	if len(c.HSKey) > 0 {
		if pemText != "" || pemFile != "" {
			notes = append(notes, "HS_KEY is set: tokens are signed HS512 and the RSA key is not used")
		}
		hs, err := token.NewHSSigner(c.HSKey)
		if err != nil {
			l.Fail("HS_KEY: %v", err)
			return nil, "", "", notes
		}
		return hs, c.HSIssuer, c.HSIssuer, notes
	}
	var (
		key    []byte
		source string
	)
	switch {
	case pemText != "" && pemFile != "":
		l.Fail("set RSA_PRIVATE_KEY or RSA_PRIVATE_KEY_FILE, not both")
		return nil, "", "", notes
	case pemText != "":
		key, source = []byte(pemText), "RSA_PRIVATE_KEY"
	case pemFile != "":
		b, err := os.ReadFile(pemFile)
		if err != nil {
			l.Fail("RSA_PRIVATE_KEY_FILE: cannot read the key file: %v", err)
			return nil, "", "", notes
		}
		key, source = b, "RSA_PRIVATE_KEY_FILE"
	case c.Environment.IsProduction():
		l.Fail("a signing key must be configured in PRODUCTION: set HS_KEY (with HS_ISSUER), RSA_PRIVATE_KEY or RSA_PRIVATE_KEY_FILE")
		return nil, "", "", notes
	default:
		rk, err := token.LoadOrCreateRSAKey(c.DataDir, token.SigningKeyFile)
		if err != nil {
			l.Fail("signing key in DATA_DIR: %v", err)
			return nil, "", "", notes
		}
		notes = append(notes, "no signing key configured: using the generated key in DATA_DIR/"+token.SigningKeyFile+" (not for production)")
		return newRSASigner(l, "DATA_DIR/"+token.SigningKeyFile, rk), c.Issuer, c.Audience, notes
	}
	rk, err := token.ParseRSAPrivateKey(key)
	if err != nil {
		l.Fail("%s: %v", source, err)
		return nil, "", "", notes
	}
	return newRSASigner(l, source, rk), c.Issuer, c.Audience, notes
}

func newRSASigner(l *config.Loader, source string, rk *rsa.PrivateKey) token.Signer {
	s, err := token.NewRSASigner(rk)
	if err != nil {
		l.Fail("%s: %v", source, err)
		return nil
	}
	return s
}
