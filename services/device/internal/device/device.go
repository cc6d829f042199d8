package device

import (
	"context"
	"errors"
	"time"

	"github.com/dhosauth/dhosauth/pkg/audit"
)

// TypeSendEntry is the only device type: a SEND Entry tablet.
const TypeSendEntry = "send_entry"

// MaxListResults caps how many devices one list returns (oldest first).
const MaxListResults = 1000

// MaxLocationFilter caps how many location ids one list may filter by.
const MaxLocationFilter = 1000

// Device is a known device.
type Device struct {
	ID          string
	LocationID  string
	Description string
	Type        string
	Active      bool
	Created     time.Time
	CreatedBy   string
	Modified    time.Time
	ModifiedBy  string
}

// Filter selects devices for Store.List.
type Filter struct {
	// Active selects active or inactive devices.
	Active bool
	// LocationIDs, when not empty, keeps devices at one of these locations.
	LocationIDs []string
	// Type, when not empty, keeps devices of this type.
	Type string
	// Limit caps the number of rows (0 means MaxListResults).
	Limit int
}

// Changes are the fields an update sets; nil leaves a field as it is.
type Changes struct {
	LocationID  *string
	Description *string
	Active      *bool
}

// Sentinel errors a Store returns.
var (
	// ErrNotFound: no device has this id.
	ErrNotFound = errors.New("device not found")
	// ErrExists: a device already has this id.
	ErrExists = errors.New("device already exists")
)

// Store keeps devices. Every change is written with the audit events that
// describe it, in one transaction: the events exist if and only if the
// change does.
type Store interface {
	// Create stores a new device and ev; ErrExists when its id is taken.
	Create(ctx context.Context, d Device, ev audit.Event) error
	// Get returns a device; ErrNotFound when there is none.
	Get(ctx context.Context, id string) (Device, error)
	// List returns the devices f selects, ordered by created then id.
	List(ctx context.Context, f Filter) ([]Device, error)
	// Update applies c and sets modified and modifiedBy, returning the
	// updated device, and stores ev; ErrNotFound (and no event) when there
	// is none.
	Update(ctx context.Context, id string, c Changes, modified time.Time, modifiedBy string, ev audit.Event) (Device, error)
	// DropAll deletes every device and stores ev. Audit events are kept.
	DropAll(ctx context.Context, ev audit.Event) error
}
