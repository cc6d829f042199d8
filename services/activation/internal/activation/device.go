package activation

import (
	"context"
	"errors"
	"time"

	"github.com/dhosauth/dhosauth/pkg/apitime"
	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/secret"
	"github.com/google/uuid"
)

// IssuedDeviceActivation is the code shown to whoever sets a device up.
type IssuedDeviceActivation struct {
	Code      string
	ExpiresAt time.Time
}

// DeviceValidation is the outcome of a successful device validation.
type DeviceValidation struct {
	AuthorisationCode string
	DeviceID          string
}

// Reasons recorded in "SEND entry device auth failed" events.
const (
	ReasonUnknownDevice   = "unknown device"
	ReasonNeverActivated  = "device never activated"
	ReasonWrongCode       = "authorisation code does not match"
	ReasonDeviceInactive  = "device inactive"
	errDeviceAuthMessage  = "device authorisation failed"
	errDeviceNotFoundText = "device not found"
)

func (s *Service) deviceCodeHash(code string) []byte {
	return s.hasher.Hash(purposeDeviceCode, NormalizeCode(code))
}

// CreateDeviceActivation issues a numeric activation code for a known
// device, reissuing the device's unused activation (new code, expiry
// extended) when it has one.
func (s *Service) CreateDeviceActivation(ctx context.Context, deviceID, actor string) (IssuedDeviceActivation, error) {
	if err := checkID("device_id", deviceID); err != nil {
		return IssuedDeviceActivation{}, err
	}
	if _, err := s.devices.GetDevice(ctx, deviceID); errors.Is(err, ErrDeviceNotFound) {
		return IssuedDeviceActivation{}, apperr.NotFound(errDeviceNotFoundText)
	} else if err != nil {
		return IssuedDeviceActivation{}, err
	}
	now := s.clock()
	expires := apitime.EndOfNthDay(now, s.cfg.ExpiryDays)
	for range maxIssueTries {
		code, err := secret.Random(secret.Digits, s.cfg.DeviceCodeLength)
		if err != nil {
			return IssuedDeviceActivation{}, apperr.Internal(err)
		}
		if _, static := s.staticDeviceCode(code); static {
			continue
		}
		stored, err := s.store.IssueDeviceActivation(ctx, DeviceActivation{
			ID:        uuid.NewString(),
			DeviceID:  deviceID,
			CodeHash:  s.deviceCodeHash(code),
			ExpiresAt: expires,
			Audit:     Audit{Created: now, CreatedBy: actor, Modified: now, ModifiedBy: actor},
		}, event(ctx, audit.TypeDeviceActivationCreated, deviceID, audit.Data{"device_id": deviceID, "expires_at": apitime.Format(expires)}))
		if errors.Is(err, ErrConflict) {
			// The code is in use, or a concurrent request created the
			// device's activation: try again with a new code.
			continue
		} else if err != nil {
			return IssuedDeviceActivation{}, storeErr(err)
		}
		return IssuedDeviceActivation{Code: code, ExpiresAt: stored.ExpiresAt}, nil
	}
	return IssuedDeviceActivation{}, apperr.Unavailable(ErrConflict, "could not issue a unique activation code, try again")
}

// ValidateDeviceActivation exchanges a device activation code for a new
// device authorisation code.
// Failures count against the client address's limit and the budget of
// failed device-code guesses of all clients together.
func (s *Service) ValidateDeviceActivation(ctx context.Context, code string) (_ DeviceValidation, err error) {
	if err := checkSecret("activation_code", code); err != nil {
		return DeviceValidation{}, err
	}
	settle, err := s.reserve(ctx, s.addressBucket(ctx), s.deviceCodeBudget())
	if err != nil {
		return DeviceValidation{}, err
	}
	defer func() { settle(err) }()
	if n, ok := s.staticDeviceCode(code); ok {
		return DeviceValidation{AuthorisationCode: code, DeviceID: staticDevicePrefix + n}, nil
	}
	a, err := s.store.DeviceActivationByCode(ctx, s.deviceCodeHash(code))
	if errors.Is(err, ErrNotFound) {
		return DeviceValidation{}, s.refuse(ctx, failure(ctx, audit.TypeDeviceActivationFailed, "", ReasonUnknownCode, nil), errActivationNotFound())
	} else if err != nil {
		return DeviceValidation{}, storeErr(err)
	}
	now := s.clock()
	data := audit.Data{"device_id": a.DeviceID, "activation_id": a.ID}
	fail := func(reason string) error {
		return s.refuse(ctx, failure(ctx, audit.TypeDeviceActivationFailed, a.DeviceID, reason, data), errActivationNotFound())
	}
	switch {
	case a.Completed != nil:
		return DeviceValidation{}, fail(ReasonUsed)
	case !a.ExpiresAt.After(now):
		return DeviceValidation{}, fail(ReasonExpired)
	}
	authCode, err := secret.Random(secret.URLSafe, AuthCodeLength)
	if err != nil {
		return DeviceValidation{}, apperr.Internal(err)
	}
	err = s.store.CompleteDeviceActivation(ctx, DeviceCompletion{
		ActivationID: a.ID,
		DeviceID:     a.DeviceID,
		Now:          now,
		AuthCodeHash: s.authCodeHash(a.DeviceID, authCode),
		Actor:        ServiceName,
	},
		asActor(event(ctx, audit.TypeDeviceActivationValidated, a.DeviceID, data), a.DeviceID),
		asActor(event(ctx, audit.TypeAuthorisationCodeIssued, a.DeviceID, audit.Data{"device_id": a.DeviceID}), a.DeviceID),
	)
	if errors.Is(err, ErrNotFound) {
		return DeviceValidation{}, fail(ReasonNoLongerValid)
	} else if err != nil {
		return DeviceValidation{}, storeErr(err)
	}
	return DeviceValidation{AuthorisationCode: authCode, DeviceID: a.DeviceID}, nil
}

// GetDeviceJwt exchanges a device's newest authorisation code for a device
// JWT. The device must exist in the registry and be active. Every refusal
// is the same PERMISSION_DENIED and is audited with its reason.
// Failures count against the client address's and the device's limits.
func (s *Service) GetDeviceJwt(ctx context.Context, deviceID, authCode string) (_ string, err error) {
	if err := checkID("device_id", deviceID); err != nil {
		return "", err
	}
	if err := checkAuthHeader(authCode); err != nil {
		return "", err
	}
	settle, err := s.reserve(ctx, s.addressBucket(ctx), s.principalBucket(LimitDevice, deviceID))
	if err != nil {
		return "", err
	}
	defer func() { settle(err) }()
	data := audit.Data{"device_id": deviceID}
	deny := func(reason string) error {
		return s.refuse(ctx, failure(ctx, EventDeviceAuthFailed, deviceID, reason, data), apperr.PermissionDenied(errDeviceAuthMessage))
	}
	dev, err := s.devices.GetDevice(ctx, deviceID)
	if errors.Is(err, ErrDeviceNotFound) {
		return "", deny(ReasonUnknownDevice)
	} else if err != nil {
		return "", err
	}
	if !s.isStaticDevice(deviceID, authCode) {
		stored, err := s.store.DeviceAuthCodeHash(ctx, deviceID)
		switch {
		case errors.Is(err, ErrNotFound) || (err == nil && stored == nil):
			return "", deny(ReasonNeverActivated)
		case err != nil:
			return "", storeErr(err)
		case !secret.Equal(s.authCodeHash(deviceID, authCode), stored):
			return "", deny(ReasonWrongCode)
		}
	}
	if !dev.Active {
		return "", deny(ReasonDeviceInactive)
	}
	jwt, err := s.tokens.IssueToken(ctx, DeviceToken, deviceID)
	if err != nil {
		return "", err
	}
	// No token leaves unless its hand-out is recorded.
	if err := s.store.Record(ctx, asActor(event(ctx, EventDeviceAuthSuccess, deviceID, data), deviceID)); err != nil {
		return "", storeErr(err)
	}
	return jwt, nil
}
