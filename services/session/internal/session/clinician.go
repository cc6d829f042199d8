package session

import (
	"context"
	"errors"
	"time"

	"github.com/dhosauth/dhosauth/pkg/audit"
)

// Clinician is a clinician's login details.
type Clinician struct {
	ID          string
	LoginActive bool
	// Products and Groups are lower-cased names.
	Products []string
	Groups   []string
	// SendEntryIdentifier signs the clinician in on a SEND entry device;
	// nil when the clinician has none.
	SendEntryIdentifier *string
	// ContractExpiryEODDate (YYYY-MM-DD): the login works until the end of
	// that day (UTC); nil when there is no expiry.
	ContractExpiryEODDate *string
	Created               time.Time
	CreatedBy             string
	Modified              time.Time
	ModifiedBy            string
}

// Replacement is what an update of login details writes. LoginActive nil
// leaves the flag as it is; every other field is replaced.
type Replacement struct {
	LoginActive           *bool
	Products              []string
	Groups                []string
	SendEntryIdentifier   *string
	ContractExpiryEODDate *string
	Modified              time.Time
	ModifiedBy            string
}

// Sentinel errors a Store returns.
var (
	// ErrNotFound: no clinician has this id (or identifier).
	ErrNotFound = errors.New("clinician not found")
	// ErrExists: a clinician already has this id.
	ErrExists = errors.New("clinician already exists")
	// ErrIdentifierTaken: another clinician has this SEND entry identifier.
	ErrIdentifierTaken = errors.New("send_entry_identifier already taken")
)

// Store keeps clinicians' login details. Every change is written with the
// audit events that describe it, in one transaction.
type Store interface {
	// Create stores a new clinician and ev: ErrExists when the id is
	// taken, ErrIdentifierTaken when the SEND entry identifier is.
	Create(ctx context.Context, c Clinician, ev audit.Event) error
	// Get returns a clinician by id; ErrNotFound when there is none.
	Get(ctx context.Context, id string) (Clinician, error)
	// GetByIdentifier returns the clinician with this SEND entry
	// identifier; ErrNotFound when there is none.
	GetByIdentifier(ctx context.Context, identifier string) (Clinician, error)
	// Replace writes r over a clinician's details and stores ev:
	// ErrNotFound when there is none, ErrIdentifierTaken when another
	// clinician has the identifier.
	Replace(ctx context.Context, id string, r Replacement, ev audit.Event) error
	// SetLoginActive sets the login flag and stores evs; ErrNotFound when
	// there is none.
	SetLoginActive(ctx context.Context, id string, active bool, modified time.Time, modifiedBy string, evs ...audit.Event) error
	// DropAll deletes every clinician and stores ev. Audit events are kept.
	DropAll(ctx context.Context, ev audit.Event) error
	// Record stores events of decisions that change nothing else (refused
	// and successful sign-ins), in a transaction of their own.
	Record(ctx context.Context, evs ...audit.Event) error
}

// ErrDeviceNotFound: the device service does not know the device.
var ErrDeviceNotFound = errors.New("device not found")

// Devices asks the device service about devices.
type Devices interface {
	// DeviceActive reports whether the device is active; ErrDeviceNotFound
	// when it is unknown. Other errors are apperr errors (UNAVAILABLE when
	// the device service did not answer).
	DeviceActive(ctx context.Context, deviceID string) (bool, error)
}

// Tokens asks the token service for tokens.
type Tokens interface {
	// IssueClinicianToken returns a clinician JWT for a sign-in on a
	// device. Errors are apperr errors (UNAVAILABLE when the token service
	// did not answer).
	IssueClinicianToken(ctx context.Context, clinicianID, deviceID string) (string, error)
}
