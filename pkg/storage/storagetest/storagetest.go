// Package storagetest runs a store's conformance suite on every backend:
// embedded SQLite always, and PostgreSQL when TEST_DATABASE_URL is set.
// With REQUIRE_POSTGRES=1 (as CI sets it) a missing TEST_DATABASE_URL is a
// failure, not a skip, so the PostgreSQL run cannot silently vanish.
//
// Each runs a test once per backend on a fresh database; Suite runs a
// store's named cases on every backend, after checking that its migrations
// apply once.
package storagetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/jackc/pgx/v5"
)

// Backend opens a fresh, empty, migrated database for one test.
type Backend struct {
	Name string
	Open func(t testing.TB, m storage.Migrations) storage.DB
}

// Backends lists the backends to run on.
func Backends(t testing.TB) []Backend {
	return []Backend{
		{Name: "sqlite", Open: OpenSQLite},
		{Name: "postgres", Open: OpenPostgres},
	}
}

// Each runs fn once per backend as a subtest.
func Each(t *testing.T, m storage.Migrations, fn func(t *testing.T, db storage.DB)) {
	for _, b := range Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			fn(t, b.Open(t, m))
		})
	}
}

// Case is one named case of a store's conformance suite.
type Case[S any] struct {
	Name string
	Test func(t *testing.T, s S)
}

// Suite is a store's conformance suite: its cases, run in order on every
// backend as subtests <backend>/<case>, after a subtest
// MigrationsIdempotent that opens one SQLite database twice with the
// store's migrations.
type Suite[S any] struct {
	// Migrations are the store's.
	Migrations storage.Migrations
	// Open makes the store over a database.
	Open func(db storage.DB) S
	// Reset, when set, empties the store before each case. The cases
	// otherwise see what the cases before them left.
	Reset func(t *testing.T, s S)
	// FreshDatabase gives each case a database of its own (a schema and
	// its migrations each on PostgreSQL) instead of one per backend.
	FreshDatabase bool
	Cases         []Case[S]
}

// Run runs the suite.
func (su Suite[S]) Run(t *testing.T) {
	t.Run("MigrationsIdempotent", func(t *testing.T) { migrationsIdempotent(t, su.Migrations) })
	for _, b := range Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			var shared S
			if !su.FreshDatabase {
				shared = su.Open(b.Open(t, su.Migrations))
			}
			for _, c := range su.Cases {
				t.Run(c.Name, func(t *testing.T) {
					s := shared
					if su.FreshDatabase {
						s = su.Open(b.Open(t, su.Migrations))
					}
					if su.Reset != nil {
						su.Reset(t, s)
					}
					c.Test(t, s)
				})
			}
		})
	}
}

// migrationsIdempotent opens one SQLite database twice with a store's
// migrations: the second open must find them applied and change nothing.
func migrationsIdempotent(t *testing.T, m storage.Migrations) {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i < 2; i++ {
		db, err := storage.Open(context.Background(), storage.Config{Service: "test", DataDir: dir}, m)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		db.Close()
	}
}

// OpenSQLite opens a migrated SQLite database in a temporary folder.
func OpenSQLite(t testing.TB, m storage.Migrations) storage.DB {
	t.Helper()
	db, err := storage.Open(context.Background(), storage.Config{Service: "test", DataDir: t.TempDir(), MaxConns: 4}, m)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

// PostgresURL returns TEST_DATABASE_URL, skipping (or, with
// REQUIRE_POSTGRES=1, failing) the test when it is not set.
func PostgresURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("TEST_DATABASE_URL")
	if url == "" {
		if os.Getenv("REQUIRE_POSTGRES") == "1" {
			t.Fatal("REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set")
		}
		t.Skip("TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
	}
	return url
}

// UniqueSchema returns a fresh schema name and drops it when the test ends.
func UniqueSchema(t testing.TB, url string) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Logf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// OpenPostgres opens a migrated PostgreSQL store in a fresh schema.
func OpenPostgres(t testing.TB, m storage.Migrations) storage.DB {
	t.Helper()
	url := PostgresURL(t)
	schema := UniqueSchema(t, url)
	db, err := storage.Open(context.Background(), storage.Config{Service: "test", Schema: schema, URL: url, MaxConns: 8}, m)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}
