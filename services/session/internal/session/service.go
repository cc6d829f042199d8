package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	"github.com/dhosauth/dhosauth/pkg/apitime"
	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/services/session/internal/sso"
)

// ServiceName is what *_by fields record when no principal made the call.
const ServiceName = "session"

// SEND groups: a clinician must be in one of them to sign in on a device.
var sendGroups = []string{"send clinician", "send superclinician"}

// Config configures a Service.
type Config struct {
	// AllowDropData lets DropData empty the store (ALLOW_DROP_DATA).
	AllowDropData bool
	// Revoker, when set, revokes a clinician's tokens when the login is
	// deactivated (the token service; main always sets it).
	Revoker Revoker
	// Now is the clock (default apitime.Now).
	Now func() time.Time
}

// Revoker revokes every token issued to a clinician until now. Errors are
// apperr errors (UNAVAILABLE when the token service did not answer).
type Revoker interface {
	RevokeClinician(ctx context.Context, clinicianID, reason string) error
}

// revokeAround revokes the clinician's tokens before change (when that
// fails nothing changes: the caller gets the error, UNAVAILABLE, and may
// retry) and again after it (a token issued between the two is refused
// too). Every service refuses them within its revocation poll interval.
func (s *Service) revokeAround(ctx context.Context, id, reason string, change func() error) error {
	if s.cfg.Revoker == nil {
		return change()
	}
	if err := s.cfg.Revoker.RevokeClinician(ctx, id, reason); err != nil {
		return err
	}
	if err := change(); err != nil {
		return err
	}
	return s.cfg.Revoker.RevokeClinician(ctx, id, reason)
}

// Service applies the clinician rules over a Store and the peers.
type Service struct {
	store   Store
	devices Devices
	tokens  Tokens
	cfg     Config
}

// NewService returns a Service.
func NewService(store Store, devices Devices, tokens Tokens, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = apitime.Now
	}
	return &Service{store: store, devices: devices, tokens: tokens, cfg: cfg}
}

// NewClinician is the body of a create. A nil list is absent.
type NewClinician struct {
	ID                    string
	LoginActive           *bool
	Products              []string
	Groups                []string
	SendEntryIdentifier   *string
	ContractExpiryEODDate *string
}

// Create stores a clinician's login details: clinician_id, login_active
// and products are required; group and product names are lower-cased.
func (s *Service) Create(ctx context.Context, in NewClinician) error {
	if err := checkRequired("clinician_id", in.ID); err != nil {
		return err
	}
	if in.LoginActive == nil {
		return apperr.InvalidArgument("login_active is required")
	}
	products, err := names("products", in.Products, true)
	if err != nil {
		return err
	}
	groups, err := names("groups", in.Groups, false)
	if err != nil {
		return err
	}
	ident, err := identifier(in.SendEntryIdentifier)
	if err != nil {
		return err
	}
	expiry, err := expiryDate(in.ContractExpiryEODDate)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	actor := auth.ActorName(ctx, ServiceName)
	err = s.store.Create(ctx, Clinician{
		ID:                    in.ID,
		LoginActive:           *in.LoginActive,
		Products:              products,
		Groups:                groups,
		SendEntryIdentifier:   ident,
		ContractExpiryEODDate: expiry,
		Created:               now,
		CreatedBy:             actor,
		Modified:              now,
		ModifiedBy:            actor,
	}, event(ctx, audit.TypeClinicianCreated, in.ID, audit.Data{"clinician_id": in.ID, "login_active": *in.LoginActive}))
	switch {
	case errors.Is(err, ErrExists):
		return apperr.AlreadyExists("clinician %s already exists", in.ID)
	case errors.Is(err, ErrIdentifierTaken):
		return apperr.AlreadyExists("send_entry_identifier is already used by another clinician")
	case err != nil:
		return fmt.Errorf("create clinician: %w", err)
	}
	return nil
}

// ClinicianPatch is the body of an update. A nil list is absent; nil
// SendEntryIdentifier and ContractExpiryEODDate mean null.
type ClinicianPatch struct {
	LoginActive           *bool
	Products              []string
	Groups                []string
	SendEntryIdentifier   *string
	ContractExpiryEODDate *string
}

// Update replaces a clinician's products, groups, SEND entry identifier
// and contract expiry, and sets login_active when given. A nil patch is an
// error.
func (s *Service) Update(ctx context.Context, id string, p *ClinicianPatch) error {
	if err := checkRequired("clinician_id", id); err != nil {
		return err
	}
	if p == nil {
		return apperr.InvalidArgument("body required")
	}
	products, err := names("products", p.Products, true)
	if err != nil {
		return err
	}
	groups, err := names("groups", p.Groups, true)
	if err != nil {
		return err
	}
	ident, err := identifier(p.SendEntryIdentifier)
	if err != nil {
		return err
	}
	expiry, err := expiryDate(p.ContractExpiryEODDate)
	if err != nil {
		return err
	}
	data := audit.Data{"clinician_id": id, "changed_fields": []any{"products", "groups", "send_entry_identifier", "contract_expiry_eod_date"}}
	if p.LoginActive != nil {
		data["changed_fields"] = append(data["changed_fields"].([]any), "login_active")
		data["login_active"] = *p.LoginActive
	}
	replace := func() error {
		return s.store.Replace(ctx, id, Replacement{
			LoginActive:           p.LoginActive,
			Products:              products,
			Groups:                groups,
			SendEntryIdentifier:   ident,
			ContractExpiryEODDate: expiry,
			Modified:              s.cfg.Now(),
			ModifiedBy:            auth.ActorName(ctx, ServiceName),
		}, event(ctx, audit.TypeClinicianUpdated, id, data))
	}
	// A login set inactive, or a contract that has already ended, ends the
	// clinician's tokens.
	ended := expiry != nil && *expiry < s.cfg.Now().UTC().Format(apitime.DateLayout)
	if (p.LoginActive != nil && !*p.LoginActive) || ended {
		if _, err := s.store.Get(ctx, id); errors.Is(err, ErrNotFound) {
			return apperr.NotFound("clinician %s not found", id)
		}
		err = s.revokeAround(ctx, id, "clinician login deactivated", replace)
	} else {
		err = replace()
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return apperr.NotFound("clinician %s not found", id)
	case errors.Is(err, ErrIdentifierTaken):
		return apperr.AlreadyExists("send_entry_identifier is already used by another clinician")
	case err != nil:
		return fmt.Errorf("update clinician: %w", err)
	}
	return nil
}

// ClinicianJWT signs in the clinician with this SEND entry identifier on
// the device whose token makes the call, and returns a clinician JWT. The
// checks run in the contract's order; every refusal after the caller is
// known to be a device is audited.
func (s *Service) ClinicianJWT(ctx context.Context, sendEntryIdentifier string) (string, error) {
	if sendEntryIdentifier == "" {
		return "", apperr.InvalidArgument("send_entry_identifier is required")
	}
	if err := checkString("send_entry_identifier", sendEntryIdentifier); err != nil {
		return "", err
	}
	p := auth.PrincipalFrom(ctx)
	if p == nil || p.Kind != authv1.PrincipalKind_PRINCIPAL_KIND_DEVICE || p.MetadataString(auth.DeviceIDClaim) == "" {
		return "", apperr.PermissionDenied("a device token is required")
	}
	deviceID := p.MetadataString(auth.DeviceIDClaim)
	// refuse records the contract's login failure event (in a transaction
	// of its own: a refusal changes nothing) and returns the refusal.
	refuse := func(reason, clinicianID string, refusal error) error {
		if err := s.store.Record(ctx, loginFailure(ctx, deviceID, clinicianID, reason)); err != nil {
			return fmt.Errorf("record sign-in refusal: %w", err)
		}
		return refusal
	}
	active, err := s.devices.DeviceActive(ctx, deviceID)
	switch {
	case errors.Is(err, ErrDeviceNotFound):
		return "", refuse(ReasonDeviceNotFound, "", apperr.PermissionDenied("device is not known"))
	case err != nil:
		return "", err
	case !active:
		return "", refuse(ReasonDeviceInactive, "", apperr.PermissionDenied("device is not active"))
	}
	c, err := s.store.GetByIdentifier(ctx, sendEntryIdentifier)
	if errors.Is(err, ErrNotFound) {
		return "", refuse(ReasonUnknownIdentifier, "", apperr.NotFound("no clinician has this send_entry_identifier"))
	}
	if err != nil {
		return "", fmt.Errorf("find clinician: %w", err)
	}
	if !c.LoginActive {
		return "", refuse(ReasonLoginInactive, c.ID, apperr.PermissionDenied("clinician login is not active"))
	}
	if c.ContractExpiryEODDate != nil && *c.ContractExpiryEODDate < s.cfg.Now().UTC().Format(apitime.DateLayout) {
		// The login is deactivated and the refusal recorded together.
		deactivated := audit.NewFailure(ctx, ServiceName, audit.TypeClinicianUpdated, c.ID, reasonContractExpiredFix,
			audit.Data{"clinician_id": c.ID, "changed_fields": []any{"login_active"}, "login_active": false})
		err := s.revokeAround(ctx, c.ID, "clinician contract expired", func() error {
			return s.store.SetLoginActive(ctx, c.ID, false, s.cfg.Now(), auth.ActorName(ctx, ServiceName),
				deactivated, loginFailure(ctx, deviceID, c.ID, ReasonContractExpired))
		})
		if errors.Is(err, ErrNotFound) {
			// Deleted meanwhile: nothing changed, the refusal stands.
			return "", refuse(ReasonContractExpired, c.ID, apperr.PermissionDenied("clinician contract has expired"))
		}
		if err != nil {
			return "", fmt.Errorf("deactivate clinician: %w", err)
		}
		return "", apperr.PermissionDenied("clinician contract has expired")
	}
	if !inSendGroup(c.Groups) {
		return "", refuse(ReasonNotInSendGroup, c.ID, apperr.PermissionDenied("clinician is not in a SEND clinician group"))
	}
	jwt, err := s.tokens.IssueClinicianToken(ctx, c.ID, deviceID)
	if err != nil {
		return "", err
	}
	// No token leaves unless its sign-in is recorded.
	ok := event(ctx, EventLoginSuccess, c.ID, audit.Data{"clinician_id": c.ID, "device_id": deviceID})
	if err := s.store.Record(ctx, ok); err != nil {
		return "", fmt.Errorf("record sign-in: %w", err)
	}
	return jwt, nil
}

// loginFailure is the contract's "SEND entry login failure" event: the
// device, the clinician when known, and the reason.
func loginFailure(ctx context.Context, deviceID, clinicianID, reason string) audit.Event {
	data := audit.Data{"device_id": deviceID}
	if clinicianID != "" {
		data["clinician_id"] = clinicianID
	}
	return audit.NewFailure(ctx, ServiceName, EventLoginFailure, clinicianID, reason, data)
}

func inSendGroup(groups []string) bool {
	for _, g := range groups {
		for _, want := range sendGroups {
			if strings.EqualFold(g, want) {
				return true
			}
		}
	}
	return false
}

// DropData deletes every clinician when AllowDropData is set.
func (s *Service) DropData(ctx context.Context) error {
	if !s.cfg.AllowDropData {
		return apperr.PermissionDenied("drop data is not allowed")
	}
	if err := s.store.DropAll(ctx, event(ctx, audit.TypeDataDropped, "", nil)); err != nil {
		return fmt.Errorf("drop clinicians: %w", err)
	}
	return nil
}

// Clinician tells browser sign-in (package sso) whether a clinician
// exists and may sign in: the login active and the contract not ended.
func (s *Service) Clinician(ctx context.Context, id string) (sso.ClinicianInfo, error) {
	c, err := s.store.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return sso.ClinicianInfo{}, nil
	}
	if err != nil {
		return sso.ClinicianInfo{}, fmt.Errorf("read clinician: %w", err)
	}
	ended := c.ContractExpiryEODDate != nil && *c.ContractExpiryEODDate < s.cfg.Now().UTC().Format(apitime.DateLayout)
	return sso.ClinicianInfo{Exists: true, Active: c.LoginActive && !ended, Groups: c.Groups}, nil
}
