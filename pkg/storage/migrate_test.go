package storage_test

import (
	"context"
	"testing"
	"testing/fstest"

	"github.com/dhosauth/dhosauth/pkg/storage"
)

// TestEmbeddedMigrations: a store's migrations are read from the folder
// of the dialect at hand, after the shared sets, each set tracked apart.
func TestEmbeddedMigrations(t *testing.T) {
	own := fstest.MapFS{
		"migrations/postgres/0001_things.sql": {Data: []byte("CREATE TABLE things (id text PRIMARY KEY)")},
		"migrations/sqlite/0001_things.sql":   {Data: []byte("CREATE TABLE things (id TEXT PRIMARY KEY, kind TEXT NOT NULL DEFAULT 'sqlite')")},
	}
	shared := fstest.MapFS{
		"migrations/postgres/0001_notes.sql": {Data: []byte("CREATE TABLE notes (id text PRIMARY KEY)")},
		"migrations/sqlite/0001_notes.sql":   {Data: []byte("CREATE TABLE notes (id TEXT PRIMARY KEY)")},
	}
	m := storage.EmbeddedMigrations(own, storage.EmbeddedNamedMigrations("notes", shared))
	if len(m.Shared) != 1 || m.Shared[0].Name != "notes" {
		t.Fatalf("shared sets %+v", m.Shared)
	}

	ctx := context.Background()
	db, err := storage.Open(ctx, storage.Config{Service: "embedded", DataDir: t.TempDir()}, m)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(ctx, "INSERT INTO things (id) VALUES ($1)", "a"); err != nil {
		t.Fatal(err)
	}
	var kind string
	if err := db.QueryRow(ctx, "SELECT kind FROM things WHERE id = $1", "a").Scan(&kind); err != nil || kind != "sqlite" {
		t.Fatalf("the SQLite folder's migration was not applied: %q %v", kind, err)
	}
	for _, table := range []string{"notes", "schema_migrations", "schema_migrations_notes"} {
		var n int
		if err := db.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Errorf("%s: %v", table, err)
		}
	}
}
