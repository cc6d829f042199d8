package storagetest_test

import (
	"context"
	"testing"
	"testing/fstest"

	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
)

var counters = storage.Migrations{
	Postgres: fstest.MapFS{"0001_counters.sql": {Data: []byte("CREATE TABLE counters (id text PRIMARY KEY)")}},
	SQLite:   fstest.MapFS{"0001_counters.sql": {Data: []byte("CREATE TABLE counters (id TEXT PRIMARY KEY)")}},
}

// add inserts a row and returns how many there are.
func add(t *testing.T, db storage.DB, id string) int {
	t.Helper()
	ctx := context.Background()
	if _, err := db.Exec(ctx, "INSERT INTO counters (id) VALUES ($1)", id); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(ctx, "SELECT count(*) FROM counters").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSuite: the cases run in order on one database per backend, after
// Reset when there is one, or each on a database of its own. Each suite
// runs under a subtest name of its own: a repeated name gets a "#01"
// suffix, and storage.Open reads a "#" in the SQLite file's path as the
// start of a URI fragment, so such runs would share one file.
func TestSuite(t *testing.T) {
	open := func(db storage.DB) storage.DB { return db }
	want := func(n int) func(t *testing.T, db storage.DB) {
		return func(t *testing.T, db storage.DB) {
			if got := add(t, db, t.Name()); got != n {
				t.Fatalf("%d rows, want %d", got, n)
			}
		}
	}
	var ran []string
	t.Run("Shared", storagetest.Suite[storage.DB]{
		Migrations: counters,
		Open:       open,
		Cases: []storagetest.Case[storage.DB]{
			{Name: "First", Test: want(1)},
			{Name: "Second", Test: want(2)},
			{Name: "Names", Test: func(t *testing.T, _ storage.DB) { ran = append(ran, t.Name()) }},
		},
	}.Run)
	if len(ran) == 0 || ran[0] != "TestSuite/Shared/sqlite/Names" {
		t.Fatalf("cases ran as %v", ran)
	}

	resets := 0
	t.Run("Reset", storagetest.Suite[storage.DB]{
		Migrations: counters,
		Open:       open,
		Reset: func(t *testing.T, db storage.DB) {
			resets++
			if _, err := db.Exec(context.Background(), "DELETE FROM counters"); err != nil {
				t.Fatal(err)
			}
		},
		Cases: []storagetest.Case[storage.DB]{{Name: "First", Test: want(1)}, {Name: "Second", Test: want(1)}},
	}.Run)
	if resets%2 != 0 || resets == 0 {
		t.Fatalf("%d resets", resets)
	}

	t.Run("Fresh", storagetest.Suite[storage.DB]{
		Migrations:    counters,
		Open:          open,
		FreshDatabase: true,
		Cases:         []storagetest.Case[storage.DB]{{Name: "First", Test: want(1)}, {Name: "Second", Test: want(1)}},
	}.Run)
}
