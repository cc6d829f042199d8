package sessiondb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/services/session/internal/sso"
)

var _ sso.Store = (*Store)(nil)

// CreateLoginState implements sso.Store.
func (s *Store) CreateLoginState(ctx context.Context, l sso.LoginState) error {
	_, err := s.db.Exec(ctx, "INSERT INTO login_states (state_hash, provider, return_to, created, expires) VALUES ($1, $2, $3, $4, $5)",
		l.StateHash, l.Provider, l.ReturnTo, l.Created, l.Expires)
	return err
}

// TakeLoginState implements sso.Store.
func (s *Store) TakeLoginState(ctx context.Context, stateHash string) (sso.LoginState, error) {
	l := sso.LoginState{StateHash: stateHash}
	err := s.db.QueryRow(ctx, "DELETE FROM login_states WHERE state_hash = $1 RETURNING provider, return_to, created, expires", stateHash).
		Scan(&l.Provider, &l.ReturnTo, &l.Created, &l.Expires)
	if errors.Is(err, storage.ErrNotFound) {
		return sso.LoginState{}, sso.ErrNotFound
	}
	return l, err
}

const sessionColumns = `session_id, cookie_hash, clinician_id, provider, upstream_subject, upstream_sid, scopes, claims, acr, amr, created, last_seen, absolute_expires`

// CreateSession implements sso.Store.
func (s *Store) CreateSession(ctx context.Context, v sso.Session, evs ...audit.Event) error {
	scopes, err := json.Marshal(nonNil(v.Scopes))
	if err != nil {
		return err
	}
	claims, err := json.Marshal(v.Claims)
	if err != nil {
		return err
	}
	if v.Claims == nil {
		claims = []byte("{}")
	}
	amr, err := json.Marshal(nonNil(v.AMR))
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, func(q storage.Querier) error {
		if _, err := q.Exec(ctx, "INSERT INTO browser_sessions ("+sessionColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
			v.ID, v.CookieHash, v.ClinicianID, v.Provider, v.UpstreamSubject, v.UpstreamSID, string(scopes), string(claims), v.ACR, string(amr),
			v.Created, v.LastSeen, v.AbsoluteExpires); err != nil {
			return err
		}
		return audit.Record(ctx, q, evs...)
	})
}

func nonNil(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

func scanSession(r storage.Row) (sso.Session, error) {
	var (
		v                   sso.Session
		scopes, claims, amr string
	)
	err := r.Scan(&v.ID, &v.CookieHash, &v.ClinicianID, &v.Provider, &v.UpstreamSubject, &v.UpstreamSID, &scopes, &claims, &v.ACR, &amr,
		&v.Created, &v.LastSeen, &v.AbsoluteExpires)
	if errors.Is(err, storage.ErrNotFound) {
		return sso.Session{}, sso.ErrNotFound
	}
	if err != nil {
		return sso.Session{}, fmt.Errorf("sessiondb: %w", err)
	}
	if err := json.Unmarshal([]byte(scopes), &v.Scopes); err != nil {
		return sso.Session{}, fmt.Errorf("sessiondb: scopes of session: %w", err)
	}
	if err := json.Unmarshal([]byte(claims), &v.Claims); err != nil {
		return sso.Session{}, fmt.Errorf("sessiondb: claims of session: %w", err)
	}
	if err := json.Unmarshal([]byte(amr), &v.AMR); err != nil {
		return sso.Session{}, fmt.Errorf("sessiondb: amr of session: %w", err)
	}
	return v, nil
}

// SessionByCookie implements sso.Store.
func (s *Store) SessionByCookie(ctx context.Context, cookieHash string) (sso.Session, error) {
	return scanSession(s.db.QueryRow(ctx, "SELECT "+sessionColumns+" FROM browser_sessions WHERE cookie_hash = $1 AND ended IS NULL", cookieHash))
}

// SessionByID implements sso.Store.
func (s *Store) SessionByID(ctx context.Context, id string) (sso.Session, error) {
	return scanSession(s.db.QueryRow(ctx, "SELECT "+sessionColumns+" FROM browser_sessions WHERE session_id = $1 AND ended IS NULL", id))
}

// TouchSession implements sso.Store.
func (s *Store) TouchSession(ctx context.Context, id string, at time.Time) error {
	_, err := s.db.Exec(ctx, "UPDATE browser_sessions SET last_seen = $2 WHERE session_id = $1 AND ended IS NULL AND last_seen < $2", id, at)
	return err
}

func (s *Store) listSessions(ctx context.Context, where string, args ...any) ([]sso.Session, error) {
	rows, err := s.db.Query(ctx, "SELECT "+sessionColumns+" FROM browser_sessions WHERE ended IS NULL AND "+where+" ORDER BY created DESC, session_id LIMIT 1000", args...)
	if err != nil {
		return nil, err
	}
	var out []sso.Session
	for rows.Next() {
		v, err := scanSession(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, v)
	}
	rows.Close()
	return out, rows.Err()
}

// ActiveSessions implements sso.Store.
func (s *Store) ActiveSessions(ctx context.Context, clinicianID string) ([]sso.Session, error) {
	list, err := s.listSessions(ctx, "clinician_id = $1", clinicianID)
	if err != nil {
		return nil, err
	}
	for i := range list {
		if list[i].Clients, err = s.SessionClients(ctx, list[i].ID); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// SessionsByUpstream implements sso.Store.
func (s *Store) SessionsByUpstream(ctx context.Context, provider, subject, upstreamSID string) ([]sso.Session, error) {
	switch {
	case subject != "" && upstreamSID != "":
		return s.listSessions(ctx, "provider = $1 AND upstream_subject = $2 AND upstream_sid = $3", provider, subject, upstreamSID)
	case subject != "":
		return s.listSessions(ctx, "provider = $1 AND upstream_subject = $2", provider, subject)
	case upstreamSID != "":
		return s.listSessions(ctx, "provider = $1 AND upstream_sid = $2", provider, upstreamSID)
	}
	return nil, nil
}

// EndSession implements sso.Store.
func (s *Store) EndSession(ctx context.Context, id string, at time.Time, reason string, deliveries []sso.Delivery, evs ...audit.Event) (bool, error) {
	ended := false
	err := s.db.Tx(ctx, func(q storage.Querier) error {
		n, err := q.Exec(ctx, "UPDATE browser_sessions SET ended = $2, end_reason = $3 WHERE session_id = $1 AND ended IS NULL", id, at, reason)
		if err != nil || n == 0 {
			return err
		}
		ended = true
		for _, d := range deliveries {
			if _, err := q.Exec(ctx,
				"INSERT INTO logout_deliveries (id, session_id, client_id, subject, attempts, next_attempt, created, last_error) VALUES ($1, $2, $3, $4, 0, $5, $6, '')",
				d.ID, d.SessionID, d.ClientID, d.Subject, d.NextAttempt, d.Created); err != nil {
				return err
			}
		}
		return audit.Record(ctx, q, evs...)
	})
	return ended, err
}

// JoinSession implements sso.Store.
func (s *Store) JoinSession(ctx context.Context, sessionID, clientID string, at time.Time) error {
	_, err := s.db.Exec(ctx, "INSERT INTO session_clients (session_id, client_id, joined) VALUES ($1, $2, $3) ON CONFLICT (session_id, client_id) DO NOTHING",
		sessionID, clientID, at)
	return err
}

// SessionClients implements sso.Store.
func (s *Store) SessionClients(ctx context.Context, sessionID string) ([]string, error) {
	rows, err := s.db.Query(ctx, "SELECT client_id FROM session_clients WHERE session_id = $1 ORDER BY client_id", sessionID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// CreateCode implements sso.Store.
func (s *Store) CreateCode(ctx context.Context, c sso.Code, evs ...audit.Event) error {
	scopes, err := json.Marshal(nonNil(c.Scopes))
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, func(q storage.Querier) error {
		if _, err := q.Exec(ctx,
			`INSERT INTO authorization_codes (code_hash, client_id, redirect_uri, session_id, nonce, code_challenge, scopes, created, expires)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			c.CodeHash, c.ClientID, c.RedirectURI, c.SessionID, c.Nonce, c.CodeChallenge, string(scopes), c.Created, c.Expires); err != nil {
			return err
		}
		return audit.Record(ctx, q, evs...)
	})
}

const codeColumns = `client_id, redirect_uri, session_id, nonce, code_challenge, scopes, created, expires`

func scanCode(r storage.Row, c *sso.Code, extra ...any) error {
	var scopes string
	if err := r.Scan(append([]any{&c.ClientID, &c.RedirectURI, &c.SessionID, &c.Nonce, &c.CodeChallenge, &scopes, &c.Created, &c.Expires}, extra...)...); err != nil {
		return err
	}
	return json.Unmarshal([]byte(scopes), &c.Scopes)
}

// RedeemCode implements sso.Store. The one conditional update makes
// concurrent redemptions of a code give exactly one success.
func (s *Store) RedeemCode(ctx context.Context, codeHash, clientID string, at time.Time) (sso.Code, error) {
	c := sso.Code{CodeHash: codeHash}
	err := scanCode(s.db.QueryRow(ctx,
		"UPDATE authorization_codes SET used = $3 WHERE code_hash = $1 AND client_id = $2 AND used IS NULL RETURNING "+codeColumns,
		codeHash, clientID, at), &c)
	if err == nil {
		c.Used = at
		return c, nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return sso.Code{}, err
	}
	var used *time.Time
	err = scanCode(s.db.QueryRow(ctx, "SELECT "+codeColumns+", used FROM authorization_codes WHERE code_hash = $1 AND client_id = $2", codeHash, clientID), &c, &used)
	if errors.Is(err, storage.ErrNotFound) {
		return sso.Code{}, sso.ErrNotFound
	}
	if err != nil {
		return sso.Code{}, err
	}
	if used != nil {
		c.Used = *used
	}
	return c, sso.ErrCodeUsed
}

// RememberJTI implements sso.Store.
func (s *Store) RememberJTI(ctx context.Context, issuer, jti string, expires time.Time) error {
	_, err := s.db.Exec(ctx, "INSERT INTO seen_jtis (issuer, jti, expires) VALUES ($1, $2, $3)", issuer, jti, expires)
	if errors.Is(err, storage.ErrConflict) {
		return sso.ErrReplayed
	}
	return err
}

// SetPassword implements sso.Store.
func (s *Store) SetPassword(ctx context.Context, clinicianID, hash string, at time.Time, by string, ev audit.Event) error {
	return s.db.Tx(ctx, func(q storage.Querier) error {
		var err error
		if hash == "" {
			_, err = q.Exec(ctx, "DELETE FROM local_passwords WHERE clinician_id = $1", clinicianID)
		} else {
			_, err = q.Exec(ctx, `INSERT INTO local_passwords (clinician_id, password_hash, modified, modified_by) VALUES ($1, $2, $3, $4)
				ON CONFLICT (clinician_id) DO UPDATE SET password_hash = excluded.password_hash, modified = excluded.modified, modified_by = excluded.modified_by`,
				clinicianID, hash, at, by)
		}
		if err != nil {
			return err
		}
		return audit.Record(ctx, q, ev)
	})
}

// PasswordHash implements sso.Store.
func (s *Store) PasswordHash(ctx context.Context, clinicianID string) (string, error) {
	var h string
	err := s.db.QueryRow(ctx, "SELECT password_hash FROM local_passwords WHERE clinician_id = $1", clinicianID).Scan(&h)
	if errors.Is(err, storage.ErrNotFound) {
		return "", sso.ErrNotFound
	}
	return h, err
}

// DueDeliveries implements sso.Store.
func (s *Store) DueDeliveries(ctx context.Context, now time.Time, limit int) ([]sso.Delivery, error) {
	rows, err := s.db.Query(ctx,
		"SELECT id, session_id, client_id, subject, attempts, next_attempt, created, last_error FROM logout_deliveries WHERE next_attempt <= $1 ORDER BY next_attempt, id LIMIT $2",
		now, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []sso.Delivery
	for rows.Next() {
		var d sso.Delivery
		if err := rows.Scan(&d.ID, &d.SessionID, &d.ClientID, &d.Subject, &d.Attempts, &d.NextAttempt, &d.Created, &d.LastError); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// ClaimDelivery implements sso.Store.
func (s *Store) ClaimDelivery(ctx context.Context, d sso.Delivery, leaseUntil time.Time) (bool, error) {
	n, err := s.db.Exec(ctx, "UPDATE logout_deliveries SET attempts = attempts + 1, next_attempt = $3 WHERE id = $1 AND attempts = $2",
		d.ID, d.Attempts, leaseUntil)
	return n == 1, err
}

// FinishDelivery implements sso.Store.
func (s *Store) FinishDelivery(ctx context.Context, id string, evs ...audit.Event) error {
	return s.db.Tx(ctx, func(q storage.Querier) error {
		if _, err := q.Exec(ctx, "DELETE FROM logout_deliveries WHERE id = $1", id); err != nil {
			return err
		}
		return audit.Record(ctx, q, evs...)
	})
}

// RetryDelivery implements sso.Store.
func (s *Store) RetryDelivery(ctx context.Context, id string, next time.Time, lastError string) error {
	_, err := s.db.Exec(ctx, "UPDATE logout_deliveries SET next_attempt = $2, last_error = $3 WHERE id = $1", id, next, lastError)
	return err
}

// Prune implements sso.Store.
func (s *Store) Prune(ctx context.Context, now, endedBefore time.Time) error {
	return s.db.Tx(ctx, func(q storage.Querier) error {
		for _, stmt := range []struct {
			sql string
			arg time.Time
		}{
			{"DELETE FROM login_states WHERE expires < $1", now},
			{"DELETE FROM authorization_codes WHERE expires < $1", now.Add(-time.Hour)},
			{"DELETE FROM seen_jtis WHERE expires < $1", now},
			{"DELETE FROM session_clients WHERE session_id IN (SELECT session_id FROM browser_sessions WHERE (ended IS NOT NULL AND ended < $1) OR absolute_expires < $1)", endedBefore},
			{"DELETE FROM browser_sessions WHERE (ended IS NOT NULL AND ended < $1) OR absolute_expires < $1", endedBefore},
		} {
			if _, err := q.Exec(ctx, stmt.sql, stmt.arg); err != nil {
				return err
			}
		}
		return nil
	})
}
