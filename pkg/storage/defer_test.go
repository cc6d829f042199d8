package storage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
)

// Deferred statements belong to their transaction: committed with it, and
// a failing one (sent with the COMMIT on PostgreSQL) fails and rolls back
// the whole transaction, statements run before it included.
func TestDeferredStatementsAreTransactional(t *testing.T) {
	storagetest.Each(t, migrations, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		at := time.Now().UTC().Truncate(time.Millisecond)
		count := func() int {
			var n int
			if err := db.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		ins := "INSERT INTO items (id, n, at) VALUES ($1, $2, $3)"
		// Only deferred statements: one pipeline, both rows or none.
		if err := db.Tx(ctx, func(q storage.Querier) error {
			if err := storage.Defer(ctx, q, ins, "d1", 1, at); err != nil {
				return err
			}
			return storage.Defer(ctx, q, ins, "d2", 2, at)
		}); err != nil {
			t.Fatal(err)
		}
		if n := count(); n != 2 {
			t.Fatalf("%d rows, want 2", n)
		}
		err := db.Tx(ctx, func(q storage.Querier) error {
			if err := storage.Defer(ctx, q, ins, "d3", 3, at); err != nil {
				return err
			}
			return storage.Defer(ctx, q, ins, "d1", 4, at) // conflict
		})
		if !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("deferred conflict: %v, want ErrConflict", err)
		}
		if n := count(); n != 2 {
			t.Fatalf("%d rows after a failed deferred statement, want 2", n)
		}
		// Statements run at once, then a deferred one that fails.
		err = db.Tx(ctx, func(q storage.Querier) error {
			var n int
			if err := q.QueryRow(ctx, "SELECT n FROM items WHERE id = $1", "d2").Scan(&n); err != nil || n != 2 {
				t.Fatalf("read in transaction: %d, %v", n, err)
			}
			if _, err := q.Exec(ctx, ins, "e1", 5, at); err != nil {
				return err
			}
			if c, err := q.Exec(ctx, "UPDATE items SET n = n + 10 WHERE id = $1", "d1"); err != nil || c != 1 {
				t.Fatalf("update in transaction: %d, %v", c, err)
			}
			return storage.Defer(ctx, q, ins, "d2", 6, at) // conflict
		})
		if !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("conflict at commit: %v, want ErrConflict", err)
		}
		var n int
		if err := db.QueryRow(ctx, "SELECT n FROM items WHERE id = $1", "d1").Scan(&n); err != nil || n != 1 {
			t.Fatalf("d1 = %d, %v after rollback, want 1", n, err)
		}
		if c := count(); c != 2 {
			t.Fatalf("%d rows after rollback, want 2", c)
		}
		// A transaction whose first statement finds no row, then writes.
		if err := db.Tx(ctx, func(q storage.Querier) error {
			var n int
			if err := q.QueryRow(ctx, "SELECT n FROM items WHERE id = $1", "none").Scan(&n); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("missing row in transaction: %v, want ErrNotFound", err)
			}
			if _, err := q.Exec(ctx, ins, "f1", 7, at); err != nil {
				return err
			}
			return storage.Defer(ctx, q, "UPDATE items SET n = n + 1 WHERE id = $1", "f1")
		}); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(ctx, "SELECT n FROM items WHERE id = $1", "f1").Scan(&n); err != nil || n != 8 {
			t.Fatalf("f1 = %d, %v, want 8", n, err)
		}
		// The pool's connections are clean afterwards: a plain statement
		// runs outside any transaction.
		for range 10 {
			if _, err := db.Exec(ctx, "UPDATE items SET n = n WHERE id = $1", "f1"); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// A relaxed view writes like the database it views, and on PostgreSQL
// relaxes only its own transactions' commits.
func TestRelaxed(t *testing.T) {
	storagetest.Each(t, migrations, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		var server string
		if db.Dialect() == storage.Postgres {
			if err := db.QueryRow(ctx, "SHOW synchronous_commit").Scan(&server); err != nil {
				t.Fatal(err)
			}
		}
		r := storage.Relaxed(db)
		at := time.Now().UTC().Truncate(time.Millisecond)
		if _, err := r.Exec(ctx, "INSERT INTO items (id, n, at) VALUES ($1, $2, $3)", "r1", 1, at); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := r.QueryRow(ctx, "UPDATE items SET n = n + 1 WHERE id = $1 RETURNING n", "r1").Scan(&n); err != nil || n != 2 {
			t.Fatalf("relaxed update returning: %d, %v", n, err)
		}
		if err := r.QueryRow(ctx, "UPDATE items SET n = n + 1 WHERE id = $1 RETURNING n", "none").Scan(&n); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("relaxed update of no row: %v, want ErrNotFound", err)
		}
		err := r.Tx(ctx, func(q storage.Querier) error {
			if db.Dialect() == storage.Postgres {
				var sc string
				if err := q.QueryRow(ctx, "SHOW synchronous_commit").Scan(&sc); err != nil || sc != "off" {
					t.Errorf("synchronous_commit in a relaxed transaction: %q, %v", sc, err)
				}
			}
			if _, err := q.Exec(ctx, "UPDATE items SET n = n + 1 WHERE id = $1", "r1"); err != nil {
				return err
			}
			return storage.Defer(ctx, q, "INSERT INTO items (id, n, at) VALUES ($1, $2, $3)", "r1", 9, at) // conflict
		})
		if !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("relaxed transaction: %v, want ErrConflict", err)
		}
		if err := db.QueryRow(ctx, "SELECT n FROM items WHERE id = $1", "r1").Scan(&n); err != nil || n != 2 {
			t.Fatalf("n = %d, %v after a failed relaxed transaction, want 2", n, err)
		}
		r.Close() // a view: db stays open
		if db.Dialect() == storage.Postgres {
			for range 10 {
				var sc string
				if err := db.QueryRow(ctx, "SHOW synchronous_commit").Scan(&sc); err != nil || sc != server {
					t.Fatalf("synchronous_commit outside relaxed transactions: %q, %v", sc, err)
				}
			}
		}
	})
}
