package storage

import (
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// migrationsDir is where a store keeps its migrations, one folder per
// dialect: migrations/postgres/NNNN_*.sql and migrations/sqlite/NNNN_*.sql.
const migrationsDir = "migrations"

// EmbeddedMigrations returns a store's migrations from fsys, the files it
// embeds with
//
//	//go:embed migrations/postgres/*.sql migrations/sqlite/*.sql
//
// applied after the shared sets (such as audit.Migrations).
func EmbeddedMigrations(fsys fs.FS, shared ...NamedMigrations) Migrations {
	return Migrations{Postgres: dialectDir(fsys, Postgres), SQLite: dialectDir(fsys, SQLite), Shared: shared}
}

// EmbeddedNamedMigrations returns the migration set name, embedded in fsys
// as EmbeddedMigrations says, which several services' stores carry.
func EmbeddedNamedMigrations(name string, fsys fs.FS) NamedMigrations {
	return NamedMigrations{Name: name, Postgres: dialectDir(fsys, Postgres), SQLite: dialectDir(fsys, SQLite)}
}

// dialectDir is the folder of fsys that holds d's migrations.
func dialectDir(fsys fs.FS, d Dialect) fs.FS {
	f, err := fs.Sub(fsys, migrationsDir+"/"+string(d))
	if err != nil {
		panic(err) // the path is fixed at build time
	}
	return f
}

type migration struct {
	version int
	name    string
	sql     string
}

// readMigrations lists NNNN_*.sql files in order.
func readMigrations(fsys fs.FS) ([]migration, error) {
	if fsys == nil {
		return nil, nil
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("storage: migrations: %w", err)
	}
	var out []migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("storage: migration %q: want NNNN_name.sql", e.Name())
		}
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("storage: two migrations numbered %d", out[i].version)
		}
	}
	return out, nil
}
