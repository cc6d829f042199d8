package activation

import (
	"context"
	"strconv"
	"strings"

	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/secret"
	"github.com/google/uuid"
)

// Static test activations (outside production only). They are recognised
// in code, never stored, and never used up.
const (
	staticPatientPrefix = "static_patient_uuid_"
	staticDevicePrefix  = "static_device_uuid_D"
	// staticDeviceCodeLength is the length of a static device code: the
	// digit N repeated nine times.
	staticDeviceCodeLength = 9
)

// TestPatients is how many patients ResetTestData seeds ("1".."10").
const TestPatients = 10

// staticDigit returns s when it is a single digit 1..9.
func staticDigit(s string) (string, bool) {
	if len(s) == 1 && s[0] >= '1' && s[0] <= '9' {
		return s, true
	}
	return "", false
}

// staticPatientCode reports whether code is a static patient activation
// code ("1".."9") and returns its digit.
func (s *Service) staticPatientCode(code string) (string, bool) {
	if s.cfg.Production {
		return "", false
	}
	return staticDigit(code)
}

// isStaticPatient reports whether (patientID, authCode) is a static
// patient's: static_patient_uuid_N with code N.
func (s *Service) isStaticPatient(patientID, authCode string) bool {
	if s.cfg.Production {
		return false
	}
	n, ok := staticDigit(strings.TrimPrefix(patientID, staticPatientPrefix))
	return ok && strings.HasPrefix(patientID, staticPatientPrefix) && authCode == n
}

// staticDeviceCode reports whether code is a static device code (digit N
// 1..9 repeated nine times) and returns its digit.
func (s *Service) staticDeviceCode(code string) (string, bool) {
	if s.cfg.Production || len(code) != staticDeviceCodeLength {
		return "", false
	}
	n, ok := staticDigit(code[:1])
	if !ok || code != strings.Repeat(n, staticDeviceCodeLength) {
		return "", false
	}
	return n, true
}

// isStaticDevice reports whether (deviceID, authCode) is a static device's:
// static_device_uuid_DN with code NNNNNNNNN.
func (s *Service) isStaticDevice(deviceID, authCode string) bool {
	if s.cfg.Production || !strings.HasPrefix(deviceID, staticDevicePrefix) {
		return false
	}
	n, ok := staticDigit(strings.TrimPrefix(deviceID, staticDevicePrefix))
	return ok && authCode == strings.Repeat(n, staticDeviceCodeLength)
}

// nonProduction refuses outside-production operations in production, as
// the access rules already do at the edge of the server.
func (s *Service) nonProduction() error {
	if s.cfg.Production {
		return apperr.NotFound("not found")
	}
	return nil
}

// SecurityInfo returns the claims of the caller's bearer token, without
// verifying it. Outside production only.
func (s *Service) SecurityInfo(patientID, rawToken string) (map[string]any, error) {
	if err := s.nonProduction(); err != nil {
		return nil, err
	}
	if err := checkID("patient_id", patientID); err != nil {
		return nil, err
	}
	claims, err := auth.ParseUnverified(rawToken)
	if err != nil {
		return nil, apperr.Unauthenticated("%v", err)
	}
	return claims, nil
}

// SecurityTest succeeds when the verified caller's patient_id is
// patientID. Outside production only.
func (s *Service) SecurityTest(patientID string, p *auth.Principal) error {
	if err := s.nonProduction(); err != nil {
		return err
	}
	if err := checkID("patient_id", patientID); err != nil {
		return err
	}
	if p == nil || p.MetadataString(auth.PatientIDClaim) != patientID {
		return apperr.PermissionDenied("the token's patient_id is not the patient in the URL")
	}
	return nil
}

func (s *Service) dropAllowed() error {
	if err := s.nonProduction(); err != nil {
		return err
	}
	if !s.cfg.AllowDropData {
		return apperr.PermissionDenied("drop data is not allowed")
	}
	return nil
}

// DropData empties every table. Outside production, with ALLOW_DROP_DATA.
func (s *Service) DropData(ctx context.Context) error {
	if err := s.dropAllowed(); err != nil {
		return err
	}
	return storeErr(s.store.DropData(ctx, event(ctx, audit.TypeDataDropped, "", nil)))
}

// ResetTestData empties every table, then gives patients "1".."10" a
// completed activation and an authorisation code equal to their id (stored
// hashed like any other). Outside production, with ALLOW_DROP_DATA.
func (s *Service) ResetTestData(ctx context.Context, actor string) error {
	if err := s.dropAllowed(); err != nil {
		return err
	}
	now := s.clock()
	seed := make([]SeedPatient, 0, TestPatients)
	for i := 1; i <= TestPatients; i++ {
		id := strconv.Itoa(i)
		otp, err := secret.Random(secret.OTP, s.cfg.OTPLength)
		if err != nil {
			return apperr.Internal(err)
		}
		aid := uuid.NewString()
		completed := now
		seed = append(seed, SeedPatient{
			PatientID: id,
			Activation: PatientActivation{
				ID:        aid,
				PatientID: id,
				CodeHash:  s.activationCodeHash(s.activationCode(aid)),
				OTPHash:   s.otpHash(aid, otp),
				ExpiresAt: now,
				Completed: &completed,
				Audit:     Audit{Created: now, CreatedBy: actor, Modified: now, ModifiedBy: actor},
			},
			AuthCodeHash: s.authCodeHash(id, id),
		})
	}
	return storeErr(s.store.ResetTestData(ctx, seed, event(ctx, audit.TypeTestDataReset, "", audit.Data{"patients": TestPatients})))
}
