package tokendb_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	"github.com/dhosauth/dhosauth/services/token/internal/token"
	"github.com/dhosauth/dhosauth/services/token/internal/tokendb"
)

// TestKeysAndRevocationsConformance runs the key and revocation part of
// the token.Store suite on every backend, each case on a fresh database.
func TestKeysAndRevocationsConformance(t *testing.T) {
	storagetest.Suite[token.Store]{
		Migrations:    tokendb.Migrations(),
		Open:          open,
		FreshDatabase: true,
		Cases: []storagetest.Case[token.Store]{
			{Name: "KeysRoundTrip", Test: testKeysRoundTrip},
			{Name: "KeyGenerationConflict", Test: testKeyGenerationConflict},
			{Name: "RevokeAndList", Test: testRevokeAndList},
			{Name: "RevokeKeepsLaterCutoff", Test: testRevokeKeepsLaterCutoff},
			{Name: "PruneRevocations", Test: testPruneRevocations},
			{Name: "DropAllKeepsKeysAndRevocations", Test: testDropAllKeeps},
		},
	}.Run(t)
}

// keyTime is when the test keys were made (milliseconds on purpose).
var keyTime = time.Date(2026, 3, 26, 10, 11, 12, 345_000_000, time.UTC)

func storedKey(gen int64, kid string) token.StoredKey {
	now := keyTime
	return token.StoredKey{
		ID: kid, Alg: "ES256", Generation: gen, CreatedAt: now, ActivatesAt: now.Add(time.Duration(gen) * time.Hour),
		PublicJWK: `{"kty":"EC"}`, Sealed: []byte{0, 1, 2, 255}, SealKeyID: "seal-1",
	}
}

func testKeysRoundTrip(t *testing.T, s token.Store) {
	ctx := context.Background()
	for _, k := range []token.StoredKey{storedKey(2, "k2"), storedKey(1, "k1")} {
		if err := s.InsertKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListKeys(ctx)
	if err != nil || len(got) != 2 {
		t.Fatalf("ListKeys: %v %v", got, err)
	}
	want := storedKey(1, "k1")
	g := got[0]
	if g.ID != "k1" || got[1].ID != "k2" || g.Alg != want.Alg || g.Generation != 1 || !g.CreatedAt.Equal(want.CreatedAt) ||
		!g.ActivatesAt.Equal(want.ActivatesAt) || g.PublicJWK != want.PublicJWK || string(g.Sealed) != string(want.Sealed) || g.SealKeyID != "seal-1" {
		t.Fatalf("got %+v, want %+v", g, want)
	}
	if err := s.ResealKey(ctx, "k1", []byte{9}, "seal-2"); err != nil {
		t.Fatal(err)
	}
	if err := s.ResealKey(ctx, "nope", []byte{9}, "seal-2"); !errors.Is(err, token.ErrNotFound) {
		t.Fatalf("reseal unknown: %v", err)
	}
	if err := s.DeleteKey(ctx, "k2"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteKey(ctx, "k2"); err != nil {
		t.Fatalf("delete twice: %v", err)
	}
	got, _ = s.ListKeys(ctx)
	if len(got) != 1 || string(got[0].Sealed) != "\x09" || got[0].SealKeyID != "seal-2" {
		t.Fatalf("after reseal and delete: %+v", got)
	}
}

func testKeyGenerationConflict(t *testing.T, s token.Store) {
	ctx := context.Background()
	if err := s.InsertKey(ctx, storedKey(1, "k1")); err != nil {
		t.Fatal(err)
	}
	for name, k := range map[string]token.StoredKey{"same generation": storedKey(1, "other"), "same kid": storedKey(2, "k1")} {
		err := s.InsertKey(ctx, k)
		if !errors.Is(err, token.ErrKeyExists) || errors.Is(err, storage.ErrConflict) {
			t.Errorf("%s: %v, want token.ErrKeyExists", name, err)
		}
	}
}

func revocation(kind token.Kind, subject string, before time.Time) token.RevocationEntry {
	return token.RevocationEntry{Kind: kind, Subject: subject, RevokedBefore: before, RecordedAt: before.Add(-time.Second), Reason: "test"}
}

func testRevokeAndList(t *testing.T, s token.Store) {
	ctx := context.Background()
	epoch, err := s.RevocationEpoch(ctx)
	if err != nil || epoch == "" {
		t.Fatalf("epoch %q %v", epoch, err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	if _, err := s.RevokedBefore(ctx, token.KindDevice, "d1"); !errors.Is(err, token.ErrNotFound) {
		t.Fatalf("never revoked: %v", err)
	}
	var seqs []int64
	for i, sub := range []string{"d1", "d2", "d3"} {
		e, err := s.Revoke(ctx, revocation(token.KindDevice, sub, now.Add(time.Duration(i)*time.Second)))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, e.Seq)
	}
	if seqs[0] <= 0 || seqs[1] != seqs[0]+1 || seqs[2] != seqs[1]+1 {
		t.Fatalf("sequence %v", seqs)
	}
	got, err := s.RevokedBefore(ctx, token.KindDevice, "d2")
	if err != nil || !got.Equal(now.Add(time.Second)) || got.Location() != time.UTC {
		t.Fatalf("RevokedBefore: %v %v", got, err)
	}
	if _, err := s.RevokedBefore(ctx, token.KindPatient, "d2"); !errors.Is(err, token.ErrNotFound) {
		t.Fatal("a device revocation applied to a patient of the same id")
	}
	all, err := s.RevocationsAfter(ctx, 0, time.Time{}, 10)
	if err != nil || len(all) != 3 || all[0].Subject != "d1" || all[2].Subject != "d3" || all[0].Kind != token.KindDevice || all[0].Reason != "test" {
		t.Fatalf("all: %+v %v", all, err)
	}
	page, _ := s.RevocationsAfter(ctx, seqs[0], time.Time{}, 1)
	if len(page) != 1 || page[0].Subject != "d2" {
		t.Fatalf("after %d limit 1: %+v", seqs[0], page)
	}
	recent, _ := s.RevocationsAfter(ctx, 0, now.Add(time.Second), 10)
	if len(recent) != 2 || recent[0].Subject != "d2" {
		t.Fatalf("notBefore: %+v", recent)
	}
	if e2, _ := s.RevocationEpoch(ctx); e2 != epoch {
		t.Fatal("epoch changed")
	}
}

func testRevokeKeepsLaterCutoff(t *testing.T, s token.Store) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	first, _ := s.Revoke(ctx, revocation(token.KindClinician, "c1", now.Add(time.Hour)))
	second, err := s.Revoke(ctx, revocation(token.KindClinician, "c1", now))
	if err != nil {
		t.Fatal(err)
	}
	if !second.RevokedBefore.Equal(now.Add(time.Hour)) || second.Seq <= first.Seq {
		t.Fatalf("second revocation %+v (first %+v): the later cut-off must stay, with a new seq", second, first)
	}
	third, _ := s.Revoke(ctx, revocation(token.KindClinician, "c1", now.Add(2*time.Hour)))
	if !third.RevokedBefore.Equal(now.Add(2 * time.Hour)) {
		t.Fatalf("third %+v", third)
	}
	all, _ := s.RevocationsAfter(ctx, 0, time.Time{}, 10)
	if len(all) != 1 || all[0].Seq != third.Seq {
		t.Fatalf("one principal, one entry: %+v", all)
	}
}

func testPruneRevocations(t *testing.T, s token.Store) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	_, _ = s.Revoke(ctx, revocation(token.KindPatient, "old", now.Add(-48*time.Hour)))
	_, _ = s.Revoke(ctx, revocation(token.KindPatient, "new", now))
	n, err := s.PruneRevocations(ctx, now.Add(-24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("pruned %d %v", n, err)
	}
	if _, err := s.RevokedBefore(ctx, token.KindPatient, "old"); !errors.Is(err, token.ErrNotFound) {
		t.Fatal("old revocation kept")
	}
	// Sequence numbers keep growing after a prune.
	e, _ := s.Revoke(ctx, revocation(token.KindPatient, "newer", now))
	if e.Seq != 3 {
		t.Fatalf("seq after prune %d", e.Seq)
	}
}

func testDropAllKeeps(t *testing.T, s token.Store) {
	ctx := context.Background()
	_ = s.InsertKey(ctx, storedKey(1, "k1"))
	_, _ = s.Revoke(ctx, revocation(token.KindDevice, "d", time.Now()))
	if err := s.DropAll(ctx); err != nil {
		t.Fatal(err)
	}
	if keys, _ := s.ListKeys(ctx); len(keys) != 1 {
		t.Fatal("DropAll removed signing keys")
	}
	if _, err := s.RevokedBefore(ctx, token.KindDevice, "d"); err != nil {
		t.Fatal("DropAll removed revocations")
	}
}

// handles opens n handles on one fresh database of the backend, as n
// replicas of the token service would.
func handles(t *testing.T, backend string, n int) []storage.DB {
	t.Helper()
	cfg := storage.Config{Service: "test", MaxConns: 4}
	switch backend {
	case "sqlite":
		cfg.DataDir = t.TempDir()
	default:
		cfg.URL = storagetest.PostgresURL(t)
		cfg.Schema = storagetest.UniqueSchema(t, cfg.URL)
	}
	out := make([]storage.DB, n)
	for i := range out {
		db, err := storage.Open(context.Background(), cfg, tokendb.Migrations())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		out[i] = db
	}
	return out
}

// TestConcurrentRotators: replicas that start together agree on one first
// key; replicas that rotate together make exactly one next key, and every
// one of them reports it.
func TestConcurrentRotators(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			const n = 6
			dbs := handles(t, backend, n)
			sealer, err := token.NewSealer([]byte("key-encryption-key-of-at-least-32-bytes!"))
			if err != nil {
				t.Fatal(err)
			}
			cfg := token.ManagedConfig{Alg: "ES256", RotationPeriod: 720 * time.Hour, PropagationPeriod: time.Hour, Retention: 25 * time.Hour}
			keys := make([]*token.ManagedKeys, n)
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() {
					keys[i], errs[i] = token.NewManagedKeys(context.Background(), tokendb.New(dbs[i]), sealer, cfg)
				})
			}
			wg.Wait()
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("replica %d start: %v", i, errs[i])
				}
				if keys[i].Keys()[0].ID != keys[0].Keys()[0].ID || len(keys[i].Keys()) != 1 {
					t.Fatalf("replica %d has other keys: %+v", i, keys[i].Keys())
				}
			}

			next := make([]token.KeyInfo, n)
			created := make([]bool, n)
			for i := range n {
				wg.Go(func() { next[i], created[i], errs[i] = keys[i].Rotate(context.Background()) })
			}
			wg.Wait()
			winners := 0
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("replica %d rotate: %v", i, errs[i])
				}
				if created[i] {
					winners++
				}
				if next[i].ID != next[0].ID || next[i].Generation != 2 || next[i].State != token.StateNext {
					t.Fatalf("replica %d sees next %+v, replica 0 %+v", i, next[i], next[0])
				}
			}
			if winners != 1 {
				t.Fatalf("%d rotations won, want exactly 1", winners)
			}
			stored, _ := tokendb.New(dbs[0]).ListKeys(context.Background())
			if len(stored) != 2 {
				t.Fatalf("%d keys stored, want 2", len(stored))
			}
		})
	}
}

// TestConcurrentRevocationsInCommitOrder: revocations recorded at once
// from several handles get distinct sequence numbers, and a reader that
// follows the sequence while they are written misses none of them.
func TestConcurrentRevocationsInCommitOrder(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			const writers, each = 4, 15
			dbs := handles(t, backend, writers+1)
			ctx := context.Background()
			done := make(chan struct{})
			seen := map[string]bool{}
			var after int64
			read := func() {
				rows, err := tokendb.New(dbs[writers]).RevocationsAfter(ctx, after, time.Time{}, 1000)
				if err != nil {
					t.Error(err)
					return
				}
				for _, r := range rows {
					seen[r.Subject] = true
					after = r.Seq
				}
			}
			var readers sync.WaitGroup
			readers.Go(func() {
				for {
					select {
					case <-done:
						return
					default:
					}
					read()
				}
			})
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					s := tokendb.New(dbs[w])
					for i := range each {
						if _, err := s.Revoke(ctx, revocation(token.KindDevice, fmt.Sprintf("w%d-%d", w, i), time.Now())); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			close(done)
			readers.Wait()
			read()
			if len(seen) != writers*each {
				t.Fatalf("the reader saw %d of %d revocations", len(seen), writers*each)
			}
			if after != writers*each {
				t.Fatalf("last seq %d, want %d", after, writers*each)
			}
		})
	}
}
