package device

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dhosauth/dhosauth/pkg/apitime"
	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/auth"
)

// ServiceName is what *_by fields record when no principal made the call.
const ServiceName = "device"

// Config configures a Service.
type Config struct {
	// AllowDropData lets DropData empty the store (ALLOW_DROP_DATA).
	AllowDropData bool
	// Revoker, when set, revokes a device's tokens when it is
	// deactivated (the token service; main always sets it).
	Revoker Revoker
	// Now is the clock (default apitime.Now).
	Now func() time.Time
}

// Revoker revokes every token issued to a device until now.
type Revoker interface {
	RevokeDevice(ctx context.Context, deviceID, reason string) error
}

// Service applies the device rules over a Store.
type Service struct {
	store Store
	cfg   Config
}

// NewService returns a Service.
func NewService(store Store, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = apitime.Now
	}
	return &Service{store: store, cfg: cfg}
}

// NewDevice is the body of a create.
type NewDevice struct {
	// ID, when not empty, becomes the device's id.
	ID          string
	LocationID  string
	Description string
}

// Create registers a device of type typ (empty means send_entry). A nil
// body is an error.
func (s *Service) Create(ctx context.Context, in *NewDevice, typ string) (Device, error) {
	if in == nil {
		return Device{}, apperr.InvalidArgument("body required")
	}
	if typ == "" {
		typ = TypeSendEntry
	}
	if typ != TypeSendEntry {
		return Device{}, apperr.InvalidArgument("type must be %s", TypeSendEntry)
	}
	if err := checkRequired("location_id", in.LocationID, MaxIDLength); err != nil {
		return Device{}, err
	}
	if err := checkRequired("description", in.Description, MaxDescriptionLength); err != nil {
		return Device{}, err
	}
	id := in.ID
	if id != "" {
		if err := checkRequired("uuid", id, MaxIDLength); err != nil {
			return Device{}, err
		}
	} else {
		id = newUUID()
	}
	now := s.cfg.Now()
	actor := auth.ActorName(ctx, ServiceName)
	d := Device{
		ID:          id,
		LocationID:  in.LocationID,
		Description: in.Description,
		Type:        typ,
		Active:      true,
		Created:     now,
		CreatedBy:   actor,
		Modified:    now,
		ModifiedBy:  actor,
	}
	ev := event(ctx, audit.TypeDeviceCreated, id, audit.Data{"device_id": id, "location_id": d.LocationID, "type": typ})
	if err := s.store.Create(ctx, d, ev); err != nil {
		if errors.Is(err, ErrExists) {
			return Device{}, apperr.AlreadyExists("a device with uuid %s already exists", id)
		}
		return Device{}, fmt.Errorf("create device: %w", err)
	}
	return d, nil
}

// ListQuery is the query of a list: Active is "true" (the default when
// nil) or "false"; LocationID is one id or a comma-separated list; Type
// optionally keeps one type.
type ListQuery struct {
	Active     *string
	LocationID string
	Type       string
}

// List returns the devices the query selects, ordered by created then id,
// at most MaxListResults of them.
func (s *Service) List(ctx context.Context, q ListQuery) ([]Device, error) {
	f := Filter{Active: true, Limit: MaxListResults}
	if q.Active != nil {
		switch *q.Active {
		case "true":
		case "false":
			f.Active = false
		default:
			return nil, apperr.InvalidArgument("active must be true or false")
		}
	}
	if q.LocationID != "" {
		parts := strings.Split(q.LocationID, ",")
		if len(parts) > MaxLocationFilter {
			return nil, apperr.InvalidArgument("location_id may list at most %d ids", MaxLocationFilter)
		}
		for _, p := range parts {
			p = strings.TrimSpace(p)
			if err := checkRequired("location_id", p, MaxIDLength); err != nil {
				return nil, apperr.InvalidArgument("location_id must be one id or a comma-separated list of ids")
			}
			f.LocationIDs = append(f.LocationIDs, p)
		}
	}
	if q.Type != "" {
		if err := checkString("type", q.Type, MaxIDLength); err != nil {
			return nil, err
		}
		f.Type = q.Type
	}
	ds, err := s.store.List(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return ds, nil
}

// Get returns one device.
func (s *Service) Get(ctx context.Context, id string) (Device, error) {
	if err := checkRequired("device_id", id, MaxIDLength); err != nil {
		return Device{}, err
	}
	d, err := s.store.Get(ctx, id)
	if err != nil {
		return Device{}, notFound(err, id)
	}
	return d, nil
}

// Update applies a patch (any of location_id, description, active) to a
// device and records the contract's "SEND entry device update" event with
// it (the device id, the changed field names, the new location and active
// flag, never the description). A nil or empty patch is an error.
func (s *Service) Update(ctx context.Context, id string, c *Changes) (Device, error) {
	if err := checkRequired("device_id", id, MaxIDLength); err != nil {
		return Device{}, err
	}
	if c == nil {
		return Device{}, apperr.InvalidArgument("body required")
	}
	if c.LocationID == nil && c.Description == nil && c.Active == nil {
		return Device{}, apperr.InvalidArgument("body must set at least one of location_id, description, active")
	}
	var changed []string
	data := audit.Data{"device_id": id}
	if c.LocationID != nil {
		if err := checkRequired("location_id", *c.LocationID, MaxIDLength); err != nil {
			return Device{}, err
		}
		changed = append(changed, "location_id")
		data["location_id"] = *c.LocationID
	}
	if c.Description != nil {
		if err := checkRequired("description", *c.Description, MaxDescriptionLength); err != nil {
			return Device{}, err
		}
		changed = append(changed, "description")
	}
	if c.Active != nil {
		changed = append(changed, "active")
		data["active"] = *c.Active
	}
	actor := auth.ActorName(ctx, ServiceName)
	data["changed_fields"] = changed
	data["modified_by"] = actor
	// Deactivating revokes the device's tokens, before the change (if the
	// token service cannot record it, nothing changes and the caller gets
	// UNAVAILABLE and may retry) and again after it (a token issued
	// between the two is refused too). Every service refuses them within
	// its revocation poll interval.
	deactivate := c.Active != nil && !*c.Active && s.cfg.Revoker != nil
	if deactivate {
		if _, err := s.store.Get(ctx, id); err != nil {
			return Device{}, notFound(err, id)
		}
		if err := s.cfg.Revoker.RevokeDevice(ctx, id, "device deactivated"); err != nil {
			return Device{}, err
		}
	}
	d, err := s.store.Update(ctx, id, *c, s.cfg.Now(), actor, event(ctx, EventDeviceUpdate, id, data))
	if err != nil {
		return Device{}, notFound(err, id)
	}
	if deactivate {
		if err := s.cfg.Revoker.RevokeDevice(ctx, id, "device deactivated"); err != nil {
			return Device{}, err
		}
	}
	return d, nil
}

// DropData deletes every device when AllowDropData is set.
func (s *Service) DropData(ctx context.Context) error {
	if !s.cfg.AllowDropData {
		return apperr.PermissionDenied("drop data is not allowed")
	}
	if err := s.store.DropAll(ctx, event(ctx, audit.TypeDataDropped, "", nil)); err != nil {
		return fmt.Errorf("drop devices: %w", err)
	}
	return nil
}

// notFound turns ErrNotFound into a 404 and wraps anything else.
func notFound(err error, id string) error {
	if errors.Is(err, ErrNotFound) {
		return apperr.NotFound("device %s not found", id)
	}
	return fmt.Errorf("device %s: %w", id, err)
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
