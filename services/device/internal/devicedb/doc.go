// Package devicedb is the device store on pkg/storage: one implementation
// of device.Store for PostgreSQL and the embedded SQLite backend, with the
// migrations of both embedded.
package devicedb
