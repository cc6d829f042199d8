package storage_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
)

var migrations = storage.Migrations{
	Postgres: fstest.MapFS{
		"0001_items.sql": {Data: []byte("CREATE TABLE items (id text PRIMARY KEY, n integer NOT NULL, at timestamptz NOT NULL, done timestamptz)")},
	},
	SQLite: fstest.MapFS{
		"0001_items.sql": {Data: []byte("CREATE TABLE items (id TEXT PRIMARY KEY, n INTEGER NOT NULL, at INTEGER NOT NULL, done INTEGER)")},
	},
}

func TestBackendsBehaveAlike(t *testing.T) {
	storagetest.Each(t, migrations, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		at := time.Date(2026, 3, 26, 23, 59, 59, 123_000_000, time.UTC)
		if _, err := db.Exec(ctx, "INSERT INTO items (id, n, at) VALUES ($1, $2, $3)", "a", 1, at); err != nil {
			t.Fatal(err)
		}
		_, err := db.Exec(ctx, "INSERT INTO items (id, n, at) VALUES ($1, $2, $3)", "a", 2, at)
		if !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("duplicate key: %v, want ErrConflict", err)
		}
		var got time.Time
		var done *time.Time
		if err := db.QueryRow(ctx, "SELECT at, done FROM items WHERE id = $1", "a").Scan(&got, &done); err != nil {
			t.Fatal(err)
		}
		if !got.Equal(at) || done != nil {
			t.Fatalf("time round trip: %v %v", got, done)
		}
		if err := db.QueryRow(ctx, "SELECT at FROM items WHERE id = $1", "zz").Scan(&got); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("missing row: %v, want ErrNotFound", err)
		}
		// A failed transaction leaves nothing behind.
		boom := errors.New("boom")
		err = db.Tx(ctx, func(q storage.Querier) error {
			if _, err := q.Exec(ctx, "INSERT INTO items (id, n, at) VALUES ($1, $2, $3)", "b", 1, at); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Tx = %v", err)
		}
		var n int
		if err := db.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n); err != nil || n != 1 {
			t.Fatalf("rows after rollback = %d, %v", n, err)
		}
		// Concurrent increments are atomic.
		var wg sync.WaitGroup
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := db.Exec(ctx, "UPDATE items SET n = n + 1 WHERE id = $1", "a"); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if err := db.QueryRow(ctx, "SELECT n FROM items WHERE id = $1", "a").Scan(&n); err != nil || n != 21 {
			t.Fatalf("n = %d, %v; want 21", n, err)
		}
		rows, err := db.Query(ctx, "SELECT id, done FROM items ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id, &done); err != nil || done != nil {
				t.Fatal(err)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestPostgresReplicasMigrateOnce(t *testing.T) {
	url := storagetest.PostgresURL(t)
	schema := storagetest.UniqueSchema(t, url)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := storage.Open(context.Background(), storage.Config{Service: "test", Schema: schema, URL: url, MaxConns: 2}, migrations)
			if err == nil {
				db.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("replica start: %v", err)
		}
	}
	db, err := storage.Open(context.Background(), storage.Config{Service: "test", Schema: schema, URL: url}, migrations)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(context.Background(), "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != 1 {
		t.Fatalf("schema_migrations rows = %d, %v", n, err)
	}
}

func TestSQLiteKeepsDataAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	cfg := storage.Config{Service: "keep", DataDir: dir}
	ctx := context.Background()
	db, err := storage.Open(ctx, cfg, migrations)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, "INSERT INTO items (id, n, at) VALUES ($1, $2, $3)", "x", 7, time.Now()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = storage.Open(ctx, cfg, migrations)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(ctx, "SELECT n FROM items WHERE id = $1", "x").Scan(&n); err != nil || n != 7 {
		t.Fatalf("after restart n = %d, %v", n, err)
	}
}

// A DATA_DIR with characters that mean something in a URI ('#', '?',
// '%', a space) holds the database file itself, under its own name: not a
// file cut short elsewhere, and not shared with another directory whose
// name starts the same.
func TestSQLiteDataDirWithURICharacters(t *testing.T) {
	base := t.TempDir()
	ctx := context.Background()
	for i, name := range []string{"a#1", "a?x=1", "a%231", "a b"} {
		dir := filepath.Join(base, name)
		db, err := storage.Open(ctx, storage.Config{Service: "uri", DataDir: dir}, migrations)
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		if _, err := db.Exec(ctx, "INSERT INTO items (id, n, at) VALUES ($1, $2, $3)", "x", i, time.Now()); err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		db.Close()
		if _, err := os.Stat(filepath.Join(dir, "uri.db")); err != nil {
			t.Errorf("%q: the database is not in DATA_DIR: %v", name, err)
		}
	}
	entries, err := os.ReadDir(base)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 4 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("files next to the data directories: %q", names)
	}
}

// TestSharedMigrationSets checks that a shared set is applied before the
// service's own, numbered and tracked on its own, and applied once.
func TestSharedMigrationSets(t *testing.T) {
	shared := storage.NamedMigrations{
		Name: "extra",
		Postgres: fstest.MapFS{
			"0001_notes.sql": {Data: []byte("CREATE TABLE notes (id text PRIMARY KEY)")},
			"0002_notes.sql": {Data: []byte("ALTER TABLE notes ADD COLUMN body text")},
		},
		SQLite: fstest.MapFS{
			"0001_notes.sql": {Data: []byte("CREATE TABLE notes (id TEXT PRIMARY KEY)")},
			"0002_notes.sql": {Data: []byte("ALTER TABLE notes ADD COLUMN body TEXT")},
		},
	}
	m := migrations
	m.Shared = []storage.NamedMigrations{shared}
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			db := b.Open(t, m)
			ctx := context.Background()
			if _, err := db.Exec(ctx, "INSERT INTO notes (id, body) VALUES ($1, $2)", "n", "b"); err != nil {
				t.Fatal(err)
			}
			var own, extra int
			if err := db.QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&own); err != nil || own != 1 {
				t.Fatalf("schema_migrations rows = %d, %v", own, err)
			}
			if err := db.QueryRow(ctx, "SELECT count(*) FROM schema_migrations_extra").Scan(&extra); err != nil || extra != 2 {
				t.Fatalf("schema_migrations_extra rows = %d, %v", extra, err)
			}
		})
	}
	bad := migrations
	bad.Shared = []storage.NamedMigrations{{Name: "Bad-Name"}}
	if _, err := storage.Open(context.Background(), storage.Config{Service: "bad", DataDir: t.TempDir()}, bad); err == nil {
		t.Fatal("a set with an unsafe name was accepted")
	}
}
