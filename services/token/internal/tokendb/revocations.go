package tokendb

import (
	"context"
	"errors"
	"time"

	"github.com/dhosauth/dhosauth/pkg/apitime"
	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/services/token/internal/token"
)

// Revoke implements token.Store. The sequence row is updated first, in the
// same transaction: its lock (PostgreSQL) or the database write lock
// (SQLite) is held until commit, so sequence numbers are handed out in
// commit order and a reader never sees n+1 before n.
func (s *Store) Revoke(ctx context.Context, e token.RevocationEntry) (token.RevocationEntry, error) {
	out := e
	err := s.db.Tx(ctx, func(q storage.Querier) error {
		var seq int64
		if err := q.QueryRow(ctx, `UPDATE revocation_sequence SET seq = seq + 1 WHERE id = 1 RETURNING seq`).Scan(&seq); err != nil {
			return err
		}
		if err := q.QueryRow(ctx,
			`INSERT INTO revocations (kind, subject, revoked_before, seq, recorded_at, reason)
			 VALUES ($1, $2, $3, $4, $5, $6)
			 ON CONFLICT (kind, subject) DO UPDATE SET
			   revoked_before = CASE WHEN excluded.revoked_before > revocations.revoked_before
			                         THEN excluded.revoked_before ELSE revocations.revoked_before END,
			   seq = excluded.seq, recorded_at = excluded.recorded_at, reason = excluded.reason
			 RETURNING revoked_before, seq`,
			string(e.Kind), e.Subject, e.RevokedBefore.UTC(), seq, e.RecordedAt.UTC(), e.Reason,
		).Scan(&out.RevokedBefore, &out.Seq); err != nil {
			return err
		}
		return audit.Record(ctx, q, audit.New(ctx, ServiceName, audit.TypeTokenRevoked, e.Subject, audit.Data{
			"kind": string(e.Kind), "subject": e.Subject, "revoked_before": apitime.Format(out.RevokedBefore), "revocation_reason": e.Reason,
		}))
	})
	if err != nil {
		return token.RevocationEntry{}, err
	}
	out.RevokedBefore = out.RevokedBefore.UTC()
	return out, nil
}

// RevocationsAfter implements token.Store.
func (s *Store) RevocationsAfter(ctx context.Context, after int64, notBefore time.Time, limit int) ([]token.RevocationEntry, error) {
	rows, err := s.db.Query(ctx,
		`SELECT kind, subject, revoked_before, seq, recorded_at, reason FROM revocations
		 WHERE seq > $1 AND revoked_before >= $2 ORDER BY seq LIMIT $3`,
		after, notBefore.UTC(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []token.RevocationEntry
	for rows.Next() {
		var e token.RevocationEntry
		var kind string
		if err := rows.Scan(&kind, &e.Subject, &e.RevokedBefore, &e.Seq, &e.RecordedAt, &e.Reason); err != nil {
			return nil, err
		}
		e.Kind = token.Kind(kind)
		e.RevokedBefore, e.RecordedAt = e.RevokedBefore.UTC(), e.RecordedAt.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// RevokedBefore implements token.Store.
func (s *Store) RevokedBefore(ctx context.Context, kind token.Kind, subject string) (time.Time, error) {
	var t time.Time
	err := s.db.QueryRow(ctx, `SELECT revoked_before FROM revocations WHERE kind = $1 AND subject = $2`, string(kind), subject).Scan(&t)
	if errors.Is(err, storage.ErrNotFound) {
		return time.Time{}, token.ErrNotFound
	}
	return t.UTC(), err
}

// RevocationEpoch implements token.Store.
func (s *Store) RevocationEpoch(ctx context.Context) (string, error) {
	var epoch string
	err := s.db.QueryRow(ctx, `SELECT epoch FROM revocation_sequence WHERE id = 1`).Scan(&epoch)
	return epoch, err
}

// PruneRevocations implements token.Store.
func (s *Store) PruneRevocations(ctx context.Context, before time.Time) (int64, error) {
	return s.db.Exec(ctx, `DELETE FROM revocations WHERE revoked_before < $1`, before.UTC())
}
