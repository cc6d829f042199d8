// Package sessiondb is the session service's store on pkg/storage: one
// implementation of session.Store for PostgreSQL and the embedded SQLite
// backend, with the migrations of both embedded. Products and groups are
// kept as JSON arrays in text columns.
package sessiondb
