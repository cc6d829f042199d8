package activationdb

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/ratelimit"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/services/activation/internal/activation"
)

//go:embed migrations/postgres/*.sql migrations/sqlite/*.sql
var migrationFiles embed.FS

// Migrations returns the embedded migrations of both backends, after the
// audit outbox's and the rate-limit counters'.
func Migrations() storage.Migrations {
	return storage.EmbeddedMigrations(migrationFiles, audit.Migrations(), ratelimit.Migrations())
}

// Store implements activation.Store on a storage.DB (either backend).
type Store struct{ db storage.DB }

var _ activation.Store = (*Store)(nil)

// New returns a Store on db, which must have been opened with Migrations.
func New(db storage.DB) *Store { return &Store{db: db} }

// translate maps storage's sentinel errors onto the domain's.
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, activation.ErrNotFound), errors.Is(err, activation.ErrConflict):
		return err
	case errors.Is(err, storage.ErrNotFound):
		return activation.ErrNotFound
	case errors.Is(err, storage.ErrConflict):
		return fmt.Errorf("%w (%v)", activation.ErrConflict, err)
	}
	return err
}

const patientActivationColumns = `id, patient_id, code_hash, otp_hash, attempts, expires_at, completed,
	created, created_by, modified, modified_by`

func scanPatientActivation(r storage.Row) (activation.PatientActivation, error) {
	var a activation.PatientActivation
	err := r.Scan(&a.ID, &a.PatientID, &a.CodeHash, &a.OTPHash, &a.Attempts, &a.ExpiresAt, &a.Completed,
		&a.Created, &a.CreatedBy, &a.Modified, &a.ModifiedBy)
	if err != nil {
		return a, translate(err)
	}
	a.ExpiresAt = a.ExpiresAt.UTC()
	a.Created, a.Modified = a.Created.UTC(), a.Modified.UTC()
	a.Completed = utcPtr(a.Completed)
	return a, nil
}

const deviceActivationColumns = `id, device_id, code_hash, expires_at, completed,
	created, created_by, modified, modified_by`

func scanDeviceActivation(r storage.Row) (activation.DeviceActivation, error) {
	var a activation.DeviceActivation
	err := r.Scan(&a.ID, &a.DeviceID, &a.CodeHash, &a.ExpiresAt, &a.Completed,
		&a.Created, &a.CreatedBy, &a.Modified, &a.ModifiedBy)
	if err != nil {
		return a, translate(err)
	}
	a.ExpiresAt = a.ExpiresAt.UTC()
	a.Created, a.Modified = a.Created.UTC(), a.Modified.UTC()
	a.Completed = utcPtr(a.Completed)
	return a, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// UnusedPatientActivation implements activation.Store.
func (s *Store) UnusedPatientActivation(ctx context.Context, patientID string) (activation.PatientActivation, error) {
	return scanPatientActivation(s.db.QueryRow(ctx,
		`SELECT `+patientActivationColumns+` FROM patient_activation
		 WHERE patient_id = $1 AND completed IS NULL`, patientID))
}

func insertPatientActivation(ctx context.Context, q storage.Querier, a activation.PatientActivation) error {
	_, err := q.Exec(ctx,
		`INSERT INTO patient_activation (`+patientActivationColumns+`)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		a.ID, a.PatientID, a.CodeHash, a.OTPHash, a.Attempts, a.ExpiresAt, a.Completed,
		a.Created, a.CreatedBy, a.Modified, a.ModifiedBy)
	return err
}

// CreatePatientActivation implements activation.Store. Nothing in it is
// read back, so it is sent as one pipeline (storage.Defer); a conflict
// still fails the whole transaction.
func (s *Store) CreatePatientActivation(ctx context.Context, a activation.PatientActivation, ev audit.Event) error {
	return translate(s.db.Tx(ctx, func(q storage.Querier) error {
		if err := storage.Defer(ctx, q,
			`INSERT INTO patient (id, created, created_by, modified, modified_by)
			 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`, a.PatientID, a.Created, a.CreatedBy, a.Created, a.CreatedBy); err != nil {
			return err
		}
		if err := storage.Defer(ctx, q,
			`INSERT INTO patient_activation (`+patientActivationColumns+`)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			a.ID, a.PatientID, a.CodeHash, a.OTPHash, a.Attempts, a.ExpiresAt, a.Completed,
			a.Created, a.CreatedBy, a.Modified, a.ModifiedBy); err != nil {
			return err
		}
		return audit.Record(ctx, q, ev)
	}))
}

// ReissuePatientActivation implements activation.Store.
func (s *Store) ReissuePatientActivation(ctx context.Context, a activation.PatientActivation, ev audit.Event) error {
	return translate(s.db.Tx(ctx, func(q storage.Querier) error {
		n, err := q.Exec(ctx,
			`UPDATE patient_activation
			 SET code_hash = $2, otp_hash = $3, attempts = 0, expires_at = $4, modified = $5, modified_by = $6
			 WHERE id = $1 AND completed IS NULL`,
			a.ID, a.CodeHash, a.OTPHash, a.ExpiresAt, a.Modified, a.ModifiedBy)
		if err != nil {
			return err
		}
		if n == 0 {
			return activation.ErrNotFound
		}
		return audit.Record(ctx, q, ev)
	}))
}

// PatientActivationByCode implements activation.Store: the activation,
// and whether its patient has an authorisation code (has completed an
// activation before), in one query.
func (s *Store) PatientActivationByCode(ctx context.Context, codeHash []byte) (activation.PatientActivation, error) {
	var a activation.PatientActivation
	err := s.db.QueryRow(ctx,
		`SELECT a.id, a.patient_id, a.code_hash, a.otp_hash, a.attempts, a.expires_at, a.completed,
		        a.created, a.created_by, a.modified, a.modified_by, p.auth_code_hash IS NOT NULL
		 FROM patient_activation a JOIN patient p ON p.id = a.patient_id WHERE a.code_hash = $1`, codeHash,
	).Scan(&a.ID, &a.PatientID, &a.CodeHash, &a.OTPHash, &a.Attempts, &a.ExpiresAt, &a.Completed,
		&a.Created, &a.CreatedBy, &a.Modified, &a.ModifiedBy, &a.PatientActivated)
	if err != nil {
		return a, translate(err)
	}
	a.ExpiresAt = a.ExpiresAt.UTC()
	a.Created, a.Modified = a.Created.UTC(), a.Modified.UTC()
	a.Completed = utcPtr(a.Completed)
	return a, nil
}

// RecordFailedAttempt implements activation.Store. The condition is
// evaluated by the database on the current row, so concurrent failures
// never push the count past max.
func (s *Store) RecordFailedAttempt(ctx context.Context, activationID string, max int, ev audit.Event) (bool, error) {
	var counted bool
	err := s.db.Tx(ctx, func(q storage.Querier) error {
		n, err := q.Exec(ctx,
			`UPDATE patient_activation SET attempts = attempts + 1 WHERE id = $1 AND attempts < $2`,
			activationID, max)
		if err != nil {
			return err
		}
		counted = n == 1
		return audit.Record(ctx, q, ev)
	})
	if err != nil {
		return false, translate(err)
	}
	return counted, nil
}

// CompletePatientActivation implements activation.Store. The conditional
// update is what makes concurrent validations safe: only one of them finds
// the row still unused, and the authorisation code is written in the same
// transaction.
func (s *Store) CompletePatientActivation(ctx context.Context, c activation.PatientCompletion, evs ...audit.Event) error {
	return translate(s.db.Tx(ctx, func(q storage.Querier) error {
		n, err := q.Exec(ctx,
			`UPDATE patient_activation SET completed = $2, modified = $3, modified_by = $4
			 WHERE id = $1 AND completed IS NULL AND attempts < $5 AND otp_hash = $6 AND expires_at > $7`,
			c.ActivationID, c.Now, c.Now, c.Actor, c.MaxAttempts, c.OTPHash, c.Now)
		if err != nil {
			return err
		}
		if n == 0 {
			return activation.ErrNotFound
		}
		// The activation's patient row exists (foreign key): the update is
		// sent with the commit.
		if err := storage.Defer(ctx, q,
			`UPDATE patient SET auth_code_hash = $2, modified = $3, modified_by = $4 WHERE id = $1`,
			c.PatientID, c.AuthCodeHash, c.Now, c.Actor); err != nil {
			return err
		}
		return audit.Record(ctx, q, evs...)
	}))
}

// CompletedPatientActivations implements activation.Store.
func (s *Store) CompletedPatientActivations(ctx context.Context, patientID string, limit int) ([]activation.PatientActivation, error) {
	rows, err := s.db.Query(ctx,
		`SELECT `+patientActivationColumns+` FROM patient_activation
		 WHERE patient_id = $1 AND completed IS NOT NULL
		 ORDER BY completed DESC, created DESC, id LIMIT $2`, patientID, limit)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := []activation.PatientActivation{}
	for rows.Next() {
		a, err := scanPatientActivation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, translate(rows.Err())
}

// PatientAuthCodeHash implements activation.Store.
func (s *Store) PatientAuthCodeHash(ctx context.Context, patientID string) ([]byte, error) {
	var h []byte
	if err := s.db.QueryRow(ctx, `SELECT auth_code_hash FROM patient WHERE id = $1`, patientID).Scan(&h); err != nil {
		return nil, translate(err)
	}
	return h, nil
}

// IssueDeviceActivation implements activation.Store.
func (s *Store) IssueDeviceActivation(ctx context.Context, a activation.DeviceActivation, ev audit.Event) (activation.DeviceActivation, error) {
	var out activation.DeviceActivation
	err := s.db.Tx(ctx, func(q storage.Querier) error {
		var err error
		out, err = scanDeviceActivation(q.QueryRow(ctx,
			`UPDATE device_activation SET code_hash = $2, expires_at = $3, modified = $4, modified_by = $5
			 WHERE device_id = $1 AND completed IS NULL
			 RETURNING `+deviceActivationColumns,
			a.DeviceID, a.CodeHash, a.ExpiresAt, a.Modified, a.ModifiedBy))
		if err == nil {
			ev.Data = withActivation(ev.Data, out.ID, true)
			return audit.Record(ctx, q, ev)
		}
		if !errors.Is(err, activation.ErrNotFound) {
			return err
		}
		if err := storage.Defer(ctx, q,
			`INSERT INTO device (id, created, created_by, modified, modified_by)
			 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`,
			a.DeviceID, a.Created, a.CreatedBy, a.Modified, a.ModifiedBy); err != nil {
			return err
		}
		if err := storage.Defer(ctx, q,
			`INSERT INTO device_activation (`+deviceActivationColumns+`)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			a.ID, a.DeviceID, a.CodeHash, a.ExpiresAt, a.Completed,
			a.Created, a.CreatedBy, a.Modified, a.ModifiedBy); err != nil {
			return err
		}
		out = a
		ev.Data = withActivation(ev.Data, a.ID, false)
		return audit.Record(ctx, q, ev)
	})
	if err != nil {
		return activation.DeviceActivation{}, translate(err)
	}
	return out, nil
}

// DeviceActivationByCode implements activation.Store.
func (s *Store) DeviceActivationByCode(ctx context.Context, codeHash []byte) (activation.DeviceActivation, error) {
	return scanDeviceActivation(s.db.QueryRow(ctx,
		`SELECT `+deviceActivationColumns+` FROM device_activation WHERE code_hash = $1`, codeHash))
}

// CompleteDeviceActivation implements activation.Store.
func (s *Store) CompleteDeviceActivation(ctx context.Context, c activation.DeviceCompletion, evs ...audit.Event) error {
	return translate(s.db.Tx(ctx, func(q storage.Querier) error {
		n, err := q.Exec(ctx,
			`UPDATE device_activation SET completed = $2, modified = $3, modified_by = $4
			 WHERE id = $1 AND completed IS NULL AND expires_at > $5`,
			c.ActivationID, c.Now, c.Now, c.Actor, c.Now)
		if err != nil {
			return err
		}
		if n == 0 {
			return activation.ErrNotFound
		}
		// The activation's device row exists (foreign key): the update is
		// sent with the commit.
		if err := storage.Defer(ctx, q,
			`UPDATE device SET auth_code_hash = $2, modified = $3, modified_by = $4 WHERE id = $1`,
			c.DeviceID, c.AuthCodeHash, c.Now, c.Actor); err != nil {
			return err
		}
		return audit.Record(ctx, q, evs...)
	}))
}

// DeviceAuthCodeHash implements activation.Store.
func (s *Store) DeviceAuthCodeHash(ctx context.Context, deviceID string) ([]byte, error) {
	var h []byte
	if err := s.db.QueryRow(ctx, `SELECT auth_code_hash FROM device WHERE id = $1`, deviceID).Scan(&h); err != nil {
		return nil, translate(err)
	}
	return h, nil
}

// tables lists every table, children first.
var tables = []string{"patient_activation", "patient", "device_activation", "device"}

func dropAll(ctx context.Context, q storage.Querier) error {
	for _, t := range tables {
		if _, err := q.Exec(ctx, "DELETE FROM "+t); err != nil {
			return err
		}
	}
	return nil
}

// DropData implements activation.Store.
func (s *Store) DropData(ctx context.Context, ev audit.Event) error {
	return translate(s.db.Tx(ctx, func(q storage.Querier) error {
		if err := dropAll(ctx, q); err != nil {
			return err
		}
		return audit.Record(ctx, q, ev)
	}))
}

// ResetTestData implements activation.Store.
func (s *Store) ResetTestData(ctx context.Context, seed []activation.SeedPatient, ev audit.Event) error {
	return translate(s.db.Tx(ctx, func(q storage.Querier) error {
		if err := dropAll(ctx, q); err != nil {
			return err
		}
		for _, p := range seed {
			a := p.Activation
			if _, err := q.Exec(ctx,
				`INSERT INTO patient (id, auth_code_hash, created, created_by, modified, modified_by)
				 VALUES ($1, $2, $3, $4, $5, $6)`,
				p.PatientID, p.AuthCodeHash, a.Created, a.CreatedBy, a.Modified, a.ModifiedBy); err != nil {
				return err
			}
			if err := insertPatientActivation(ctx, q, a); err != nil {
				return err
			}
		}
		return audit.Record(ctx, q, ev)
	}))
}

// Record implements activation.Store.
func (s *Store) Record(ctx context.Context, evs ...audit.Event) error {
	return translate(audit.RecordTx(ctx, s.db, evs...))
}

// withActivation adds the stored activation's id, and whether it was
// reissued, to an event's data.
func withActivation(d audit.Data, id string, reissued bool) audit.Data {
	out := audit.Data{"activation_id": id, "reissued": reissued}
	for k, v := range d {
		out[k] = v
	}
	return out
}

// Ping implements activation.Store.
func (s *Store) Ping(ctx context.Context) error { return s.db.Ping(ctx) }
