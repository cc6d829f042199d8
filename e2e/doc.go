// Package e2e drives the real suite: it builds the five binaries, starts
// them as separate processes talking gRPC to each other, and checks the
// /dhos/v1 contract through the REST edge on both stores (embedded SQLite,
// and PostgreSQL when TEST_DATABASE_URL is set).
package e2e
