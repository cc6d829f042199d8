// Package tokendb is the token service's store of issued tokens, written
// once on pkg/storage for both backends (PostgreSQL and embedded SQLite),
// with its migrations embedded in the binary.
package tokendb
