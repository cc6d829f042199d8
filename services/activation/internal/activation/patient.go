package activation

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/dhosauth/dhosauth/pkg/validate"

	"github.com/dhosauth/dhosauth/pkg/apitime"
	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/secret"
	"github.com/google/uuid"
)

// Hash purposes. Each kind of secret is hashed under its own purpose, and
// OTPs and authorisation codes also under their record's id, so a hash is
// worthless anywhere else.
const (
	purposeActivationCode = "activation-code"
	purposeOTP            = "otp:"
	purposeAuthCode       = "authorisation-code:"
	purposeDeviceCode     = "device-activation-code"
)

// AuthCodeLength is the length of an authorisation code (URL-safe
// characters, 258 bits).
const AuthCodeLength = 43

// maxIssueTries bounds the retries when a concurrent request or a code
// collision makes an insert or update conflict.
const maxIssueTries = 5

// IssuedPatientActivation is what a patient is given. The secrets are shown
// once; only their hashes are stored.
type IssuedPatientActivation struct {
	OTP            string
	ActivationCode string
	ExpiresAt      time.Time
}

// PatientValidation is the outcome of a successful patient validation.
type PatientValidation struct {
	AuthorisationCode string
	PatientID         string
}

// Reasons recorded in patient activation and patient auth failures (never
// told to the caller, who always gets the same 404).
const (
	ReasonUnknownCode           = "unknown activation code"
	ReasonUsed                  = "activation already used"
	ReasonExpired               = "activation expired"
	ReasonLocked                = "too many failed attempts"
	ReasonWrongOTP              = "wrong otp"
	ReasonNoLongerValid         = "activation no longer valid"
	ReasonUnknownPatient        = "unknown patient"
	ReasonPatientNeverActivated = "patient never activated"
)

// errActivationNotFound is the one answer for every failed validation, so
// that nothing tells an unknown code from a used, expired or locked one or
// from a wrong OTP.
func errActivationNotFound() error { return apperr.NotFound("activation not found") }

func errPatientCodeNotFound() error {
	return apperr.NotFound("patient not found or authorisation code not valid")
}

// activationCode derives the activation code of activation id: it is shown
// again on reissue without being stored.
func (s *Service) activationCode(id string) string {
	return s.hasher.Derive(purposeActivationCode, id, secret.Upper, s.cfg.ActivationCodeLength)
}

func (s *Service) activationCodeHash(code string) []byte {
	return s.hasher.Hash(purposeActivationCode, NormalizeCode(code))
}

func (s *Service) otpHash(activationID, otp string) []byte {
	return s.hasher.Hash(purposeOTP+activationID, NormalizeCode(otp))
}

// NormalizeCode is the form in which an activation code or OTP typed by a
// person is compared: ASCII letters in upper case, every other byte as it
// is. strings.ToUpper is not used: it also folds some non-ASCII letters
// into ASCII ones ('ı' to 'I', 'ſ' to 'S'), which would give a code
// several spellings; here a code has exactly one, up to ASCII case.
func NormalizeCode(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'a' && c <= 'z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'a' && c <= 'z' {
					b[j] = c - ('a' - 'A')
				}
			}
			return string(b)
		}
	}
	return s
}

func (s *Service) authCodeHash(ownerID, code string) []byte {
	return s.hasher.Hash(purposeAuthCode+ownerID, code)
}

// CreatePatientActivation issues an activation for the patient, or
// reissues the patient's unused one: same activation code, new OTP,
// attempts reset, expiry extended. actor is recorded in *_by.
func (s *Service) CreatePatientActivation(ctx context.Context, patientID, actor string) (IssuedPatientActivation, error) {
	if err := checkID("patient_id", patientID); err != nil {
		return IssuedPatientActivation{}, err
	}
	now := s.clock()
	expires := apitime.EndOfNthDay(now, s.cfg.ExpiryDays)
	// Most patients have no unused activation: the first try creates one
	// without looking (the store refuses a second unused activation with
	// ErrConflict); only then is the unused one read and reissued.
	look := false
	for range maxIssueTries {
		var a PatientActivation
		err := ErrNotFound
		if look {
			a, err = s.store.UnusedPatientActivation(ctx, patientID)
		}
		look = true
		fresh := false
		switch {
		case err == nil:
			a.Modified, a.ModifiedBy = now, actor
		case errors.Is(err, ErrNotFound):
			fresh = true
			a = PatientActivation{
				ID:        uuid.NewString(),
				PatientID: patientID,
				Audit:     Audit{Created: now, CreatedBy: actor, Modified: now, ModifiedBy: actor},
			}
		default:
			return IssuedPatientActivation{}, storeErr(err)
		}
		otp, err := secret.Random(secret.OTP, s.cfg.OTPLength)
		if err != nil {
			return IssuedPatientActivation{}, apperr.Internal(err)
		}
		code := s.activationCode(a.ID)
		a.CodeHash = s.activationCodeHash(code)
		a.OTPHash = s.otpHash(a.ID, otp)
		a.Attempts = 0
		a.ExpiresAt = expires
		ev := event(ctx, audit.TypePatientActivationCreated, patientID, audit.Data{
			"patient_id": patientID, "activation_id": a.ID, "reissued": !fresh, "expires_at": apitime.Format(expires),
		})
		if fresh {
			err = s.store.CreatePatientActivation(ctx, a, ev)
		} else {
			err = s.store.ReissuePatientActivation(ctx, a, ev)
		}
		switch {
		case err == nil:
			return IssuedPatientActivation{OTP: strings.ToLower(otp), ActivationCode: code, ExpiresAt: expires}, nil
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict):
			// A concurrent request completed or created the activation:
			// look again.
			continue
		default:
			return IssuedPatientActivation{}, storeErr(err)
		}
	}
	return IssuedPatientActivation{}, apperr.Unavailable(ErrConflict, "the activation is being changed by another request, try again")
}

// ValidatePatientActivation exchanges an activation code and its OTP for a
// new authorisation code. Every failure is the same NOT_FOUND.
// Failures count against the client address's limit; the activation
// itself locks after MaxAttempts wrong OTPs.
func (s *Service) ValidatePatientActivation(ctx context.Context, code, otp string) (_ PatientValidation, err error) {
	if err := checkSecret("activation_code", code); err != nil {
		return PatientValidation{}, err
	}
	if err := checkSecret("otp", otp); err != nil {
		return PatientValidation{}, err
	}
	settle, err := s.reserve(ctx, s.addressBucket(ctx))
	if err != nil {
		return PatientValidation{}, err
	}
	defer func() { settle(err) }()
	if n, ok := s.staticPatientCode(code); ok {
		if NormalizeCode(otp) != strings.Repeat(n, s.cfg.OTPLength) {
			return PatientValidation{}, errActivationNotFound()
		}
		return PatientValidation{AuthorisationCode: n, PatientID: staticPatientPrefix + n}, nil
	}
	a, err := s.store.PatientActivationByCode(ctx, s.activationCodeHash(code))
	if errors.Is(err, ErrNotFound) {
		return PatientValidation{}, s.refuse(ctx, failure(ctx, audit.TypePatientActivationFailed, "", ReasonUnknownCode, nil), errActivationNotFound())
	} else if err != nil {
		return PatientValidation{}, storeErr(err)
	}
	now := s.clock()
	data := audit.Data{"patient_id": a.PatientID, "activation_id": a.ID}
	fail := func(reason string) audit.Event {
		return failure(ctx, audit.TypePatientActivationFailed, a.PatientID, reason, data)
	}
	switch {
	case a.Completed != nil:
		return PatientValidation{}, s.refuse(ctx, fail(ReasonUsed), errActivationNotFound())
	case !a.ExpiresAt.After(now):
		return PatientValidation{}, s.refuse(ctx, fail(ReasonExpired), errActivationNotFound())
	case a.Attempts >= s.cfg.MaxAttempts:
		return PatientValidation{}, s.refuse(ctx, fail(ReasonLocked), errActivationNotFound())
	}
	given := s.otpHash(a.ID, otp)
	if !secret.Equal(given, a.OTPHash) {
		if _, err := s.store.RecordFailedAttempt(ctx, a.ID, s.cfg.MaxAttempts, fail(ReasonWrongOTP)); err != nil && !errors.Is(err, ErrNotFound) {
			return PatientValidation{}, storeErr(err)
		}
		return PatientValidation{}, errActivationNotFound()
	}
	authCode, err := secret.Random(secret.URLSafe, AuthCodeLength)
	if err != nil {
		return PatientValidation{}, apperr.Internal(err)
	}
	// A new activation ends the tokens of the patient's earlier ones (a
	// lost or replaced phone). The revocation comes first: when the token
	// service cannot record it, the activation stays unused and the caller
	// gets UNAVAILABLE and may simply try again. (Revoking after the
	// completion instead would leave the patient, on a failure, with a
	// used activation and no authorisation code.) A patient's first
	// activation revokes nothing: without an earlier authorisation code no
	// patient token can have been issued, and only this activation, the
	// patient's one unused activation, can complete meanwhile. That spares
	// the common case a call to the token service, a write there, and a
	// revocation every service would poll and keep.
	if s.revoker != nil && a.PatientActivated {
		if err := s.revoker.RevokePatient(ctx, a.PatientID, "patient activated again"); err != nil {
			return PatientValidation{}, err
		}
	}
	err = s.store.CompletePatientActivation(ctx, PatientCompletion{
		ActivationID: a.ID,
		PatientID:    a.PatientID,
		OTPHash:      given,
		MaxAttempts:  s.cfg.MaxAttempts,
		Now:          now,
		AuthCodeHash: s.authCodeHash(a.PatientID, authCode),
		Actor:        ServiceName,
	},
		asActor(event(ctx, audit.TypePatientActivationValidated, a.PatientID, data), a.PatientID),
		asActor(event(ctx, audit.TypeAuthorisationCodeIssued, a.PatientID, audit.Data{"patient_id": a.PatientID}), a.PatientID),
	)
	if errors.Is(err, ErrNotFound) {
		return PatientValidation{}, s.refuse(ctx, fail(ReasonNoLongerValid), errActivationNotFound())
	} else if err != nil {
		return PatientValidation{}, storeErr(err)
	}
	return PatientValidation{AuthorisationCode: authCode, PatientID: a.PatientID}, nil
}

// MaxListedActivations bounds ListPatientActivations: a patient's newest
// completed activations only (one per phone activated: a patient with
// more has long since replaced the older phones, whose tokens were
// revoked).
const MaxListedActivations = 100

// ListPatientActivations lists the patient's completed activations, newest
// first, at most MaxListedActivations; an unknown patient has none.
func (s *Service) ListPatientActivations(ctx context.Context, patientID string) ([]PatientActivation, error) {
	if err := checkID("patient_id", patientID); err != nil {
		return nil, err
	}
	list, err := s.store.CompletedPatientActivations(ctx, patientID, MaxListedActivations)
	if err != nil {
		return nil, storeErr(err)
	}
	return list, nil
}

// GetPatientJwt exchanges the patient's newest authorisation code for a
// patient JWT.
// Failures count against the client address's and the patient's limits.
func (s *Service) GetPatientJwt(ctx context.Context, patientID, authCode string) (_ string, err error) {
	if err := checkID("patient_id", patientID); err != nil {
		return "", err
	}
	if err := checkAuthHeader(authCode); err != nil {
		return "", err
	}
	settle, err := s.reserve(ctx, s.addressBucket(ctx), s.principalBucket(LimitPatient, patientID))
	if err != nil {
		return "", err
	}
	defer func() { settle(err) }()
	data := audit.Data{"patient_id": patientID}
	deny := func(reason string) error {
		return s.refuse(ctx, failure(ctx, audit.TypePatientAuthFailed, patientID, reason, data), errPatientCodeNotFound())
	}
	if !s.isStaticPatient(patientID, authCode) {
		stored, err := s.store.PatientAuthCodeHash(ctx, patientID)
		switch {
		case errors.Is(err, ErrNotFound):
			return "", deny(ReasonUnknownPatient)
		case err != nil:
			return "", storeErr(err)
		case stored == nil:
			return "", deny(ReasonPatientNeverActivated)
		case !secret.Equal(s.authCodeHash(patientID, authCode), stored):
			return "", deny(ReasonWrongCode)
		}
	}
	jwt, err := s.tokens.IssueToken(ctx, PatientToken, patientID)
	if err != nil {
		return "", err
	}
	// No token leaves unless its hand-out is recorded.
	if err := s.store.Record(ctx, asActor(event(ctx, audit.TypePatientAuthSuccess, patientID, data), patientID)); err != nil {
		return "", storeErr(err)
	}
	return jwt, nil
}

// checkAuthHeader validates the x-authorisation-code value.
func checkAuthHeader(code string) error {
	if code == "" {
		return apperr.InvalidArgument("the x-authorisation-code header is required")
	}
	return validate.String("x-authorisation-code", code, MaxSecretLength)
}
