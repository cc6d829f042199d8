// Package activationdb is the activation service's store: one
// implementation of activation.Store on pkg/storage that runs on both
// PostgreSQL and embedded SQLite, with its migrations embedded per
// dialect. Only keyed hashes of codes and OTPs are ever written.
//
// Concurrency safety comes from conditional updates evaluated by the
// database on the current row (completing an activation, counting a failed
// attempt) and from unique indexes (code hashes, one unused activation per
// patient or device), whose violations become activation.ErrConflict.
package activationdb
