// Package tokendb is the token service's store: issued tokens, the sealed
// managed signing keys and the revocations, written once on pkg/storage
// for both backends (PostgreSQL and embedded SQLite), with its migrations
// embedded in the binary.
package tokendb
