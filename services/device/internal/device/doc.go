// Package device is the device service's domain: the registry of known
// devices (tablets on wards) with their location, description, type and
// whether they are active.
//
// It owns the rules of the /dhos/v1/device endpoints (what a valid create,
// list query or patch is), the Store interface its database implements with
// the sentinel errors ErrNotFound and ErrExists, and the Auditor that
// records device updates. Errors it returns are pkg/apperr errors whose
// messages are fit to show to clients.
//
// A list returns at most MaxListResults (1000) devices, oldest first
// (ordered by created, then uuid); narrow it with the active, location_id
// and type filters.
package device
