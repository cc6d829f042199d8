package tokendb

import (
	"context"
	"errors"
	"fmt"

	"github.com/dhosauth/dhosauth/pkg/apitime"
	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/services/token/internal/token"
)

// InsertKey implements token.Store.
// The key and its "signing key rotated" audit event (key id, algorithm,
// generation, activation time; never key material) are written in one
// transaction.
func (s *Store) InsertKey(ctx context.Context, k token.StoredKey) error {
	err := s.db.Tx(ctx, func(q storage.Querier) error {
		if _, err := q.Exec(ctx,
			`INSERT INTO signing_keys (kid, alg, generation, created_at, activates_at, public_jwk, sealed_key, seal_key_id)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			k.ID, k.Alg, k.Generation, k.CreatedAt.UTC(), k.ActivatesAt.UTC(), k.PublicJWK, k.Sealed, k.SealKeyID); err != nil {
			return err
		}
		return audit.Record(ctx, q, audit.New(ctx, ServiceName, audit.TypeKeyRotated, k.ID, audit.Data{
			"key_id": k.ID, "alg": k.Alg, "generation": k.Generation, "activates_at": apitime.Format(k.ActivatesAt),
		}))
	})
	if errors.Is(err, storage.ErrConflict) {
		return fmt.Errorf("%w: generation %d", token.ErrKeyExists, k.Generation)
	}
	return err
}

// ListKeys implements token.Store.
func (s *Store) ListKeys(ctx context.Context) ([]token.StoredKey, error) {
	rows, err := s.db.Query(ctx,
		`SELECT kid, alg, generation, created_at, activates_at, public_jwk, sealed_key, seal_key_id
		 FROM signing_keys ORDER BY generation`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []token.StoredKey
	for rows.Next() {
		var k token.StoredKey
		if err := rows.Scan(&k.ID, &k.Alg, &k.Generation, &k.CreatedAt, &k.ActivatesAt, &k.PublicJWK, &k.Sealed, &k.SealKeyID); err != nil {
			return nil, err
		}
		k.CreatedAt, k.ActivatesAt = k.CreatedAt.UTC(), k.ActivatesAt.UTC()
		out = append(out, k)
	}
	return out, rows.Err()
}

// ResealKey implements token.Store.
func (s *Store) ResealKey(ctx context.Context, kid string, sealed []byte, sealKeyID string) error {
	n, err := s.db.Exec(ctx, `UPDATE signing_keys SET sealed_key = $2, seal_key_id = $3 WHERE kid = $1`, kid, sealed, sealKeyID)
	if err != nil {
		return err
	}
	if n == 0 {
		return token.ErrNotFound
	}
	return nil
}

// DeleteKey implements token.Store.
func (s *Store) DeleteKey(ctx context.Context, kid string) error {
	_, err := s.db.Exec(ctx, `DELETE FROM signing_keys WHERE kid = $1`, kid)
	return err
}
