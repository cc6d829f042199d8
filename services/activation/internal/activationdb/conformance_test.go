package activationdb_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/apitime"
	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/audit/audittest"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	"github.com/dhosauth/dhosauth/services/activation/internal/activation"
	"github.com/dhosauth/dhosauth/services/activation/internal/activationdb"
	"github.com/google/uuid"
)

// TestConformance runs the store's one conformance suite on every backend.
func TestConformance(t *testing.T) {
	storagetest.Suite[*activationdb.Store]{
		Migrations: activationdb.Migrations(),
		Open:       activationdb.New,
		Cases: []storagetest.Case[*activationdb.Store]{
			{Name: "PatientActivationRoundTrip", Test: testPatientActivationRoundTrip},
			{Name: "PatientActivationConflicts", Test: testPatientActivationConflicts},
			{Name: "ReissuePatientActivation", Test: testReissuePatientActivation},
			{Name: "RecordFailedAttempt", Test: testRecordFailedAttempt},
			{Name: "CompletePatientActivation", Test: testCompletePatientActivation},
			{Name: "PatientActivatedBefore", Test: testPatientActivatedBefore},
			{Name: "CompletedPatientActivations", Test: testCompletedPatientActivations},
			{Name: "PatientAuthCodeHash", Test: testPatientAuthCodeHash},
			{Name: "IssueDeviceActivation", Test: testIssueDeviceActivation},
			{Name: "CompleteDeviceActivation", Test: testCompleteDeviceActivation},
			{Name: "ConcurrentCompletion", Test: testConcurrentCompletion},
			{Name: "ConcurrentFailedAttempts", Test: testConcurrentFailedAttempts},
			{Name: "ConcurrentDeviceCompletion", Test: testConcurrentDeviceCompletion},
			{Name: "ConcurrentCreate", Test: testConcurrentCreate},
			{Name: "Ping", Test: testPing},
			// These two empty the store, so they run last.
			{Name: "DropData", Test: testDropData},
			{Name: "ResetTestData", Test: testResetTestData},
		},
	}.Run(t)
}

const maxAttempts = 10

func randomHash(t testing.TB) []byte {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func newPatientActivation(t testing.TB, patientID string, now time.Time) activation.PatientActivation {
	return activation.PatientActivation{
		ID:        uuid.NewString(),
		PatientID: patientID,
		CodeHash:  randomHash(t),
		OTPHash:   randomHash(t),
		ExpiresAt: apitime.EndOfNthDay(now, 5),
		Audit:     activation.Audit{Created: now, CreatedBy: "tester", Modified: now, ModifiedBy: "tester"},
	}
}

func newDeviceActivation(t testing.TB, deviceID string, now time.Time) activation.DeviceActivation {
	return activation.DeviceActivation{
		ID:        uuid.NewString(),
		DeviceID:  deviceID,
		CodeHash:  randomHash(t),
		ExpiresAt: apitime.EndOfNthDay(now, 5),
		Audit:     activation.Audit{Created: now, CreatedBy: "tester", Modified: now, ModifiedBy: "tester"},
	}
}

func completion(a activation.PatientActivation, now time.Time, authHash []byte) activation.PatientCompletion {
	return activation.PatientCompletion{
		ActivationID: a.ID,
		PatientID:    a.PatientID,
		OTPHash:      a.OTPHash,
		MaxAttempts:  maxAttempts,
		Now:          now,
		AuthCodeHash: authHash,
		Actor:        "activation",
	}
}

func mustCreate(t *testing.T, s *activationdb.Store, a activation.PatientActivation) {
	t.Helper()
	if err := s.CreatePatientActivation(context.Background(), a, ev("patient activation created")); err != nil {
		t.Fatalf("CreatePatientActivation: %v", err)
	}
}

func equalPatientActivation(t *testing.T, got, want activation.PatientActivation) {
	t.Helper()
	if got.ID != want.ID || got.PatientID != want.PatientID || !bytes.Equal(got.CodeHash, want.CodeHash) ||
		!bytes.Equal(got.OTPHash, want.OTPHash) || got.Attempts != want.Attempts ||
		!got.ExpiresAt.Equal(want.ExpiresAt) || !got.Created.Equal(want.Created) || got.CreatedBy != want.CreatedBy ||
		!got.Modified.Equal(want.Modified) || got.ModifiedBy != want.ModifiedBy ||
		(got.Completed == nil) != (want.Completed == nil) ||
		(got.Completed != nil && !got.Completed.Equal(*want.Completed)) {
		t.Fatalf("activation differs:\n got %+v\nwant %+v", got, want)
	}
	if got.ExpiresAt.Location() != time.UTC || got.Created.Location() != time.UTC {
		t.Fatalf("times are not UTC: %v %v", got.ExpiresAt, got.Created)
	}
}

func testPatientActivationRoundTrip(t *testing.T, s *activationdb.Store) {
	ctx := context.Background()
	now := apitime.Now()
	a := newPatientActivation(t, "patient-"+uuid.NewString(), now)
	if _, err := s.UnusedPatientActivation(ctx, a.PatientID); !errors.Is(err, activation.ErrNotFound) {
		t.Fatalf("unknown patient: got %v, want ErrNotFound", err)
	}
	if _, err := s.PatientActivationByCode(ctx, a.CodeHash); !errors.Is(err, activation.ErrNotFound) {
		t.Fatalf("unknown code: got %v, want ErrNotFound", err)
	}
	mustCreate(t, s, a)
	got, err := s.UnusedPatientActivation(ctx, a.PatientID)
	if err != nil {
		t.Fatal(err)
	}
	equalPatientActivation(t, got, a)
	got, err = s.PatientActivationByCode(ctx, a.CodeHash)
	if err != nil {
		t.Fatal(err)
	}
	equalPatientActivation(t, got, a)
	// The patient record exists and has no authorisation code yet.
	h, err := s.PatientAuthCodeHash(ctx, a.PatientID)
	if err != nil || h != nil {
		t.Fatalf("PatientAuthCodeHash = %x, %v; want nil, nil", h, err)
	}
}

func testPatientActivationConflicts(t *testing.T, s *activationdb.Store) {
	now := apitime.Now()
	a := newPatientActivation(t, "patient-"+uuid.NewString(), now)
	mustCreate(t, s, a)
	// A second unused activation for the same patient.
	b := newPatientActivation(t, a.PatientID, now)
	if err := s.CreatePatientActivation(context.Background(), b, ev("patient activation created")); !errors.Is(err, activation.ErrConflict) {
		t.Fatalf("second unused activation: got %v, want ErrConflict", err)
	}
	// The same code hash for another patient.
	c := newPatientActivation(t, "patient-"+uuid.NewString(), now)
	c.CodeHash = a.CodeHash
	if err := s.CreatePatientActivation(context.Background(), c, ev("patient activation created")); !errors.Is(err, activation.ErrConflict) {
		t.Fatalf("duplicate code hash: got %v, want ErrConflict", err)
	}
	// Nothing of the failed creations remains.
	if _, err := s.UnusedPatientActivation(context.Background(), c.PatientID); !errors.Is(err, activation.ErrNotFound) {
		t.Fatalf("failed create left an activation: %v", err)
	}
	if _, err := s.PatientAuthCodeHash(context.Background(), c.PatientID); !errors.Is(err, activation.ErrNotFound) {
		t.Fatalf("failed create left a patient: %v", err)
	}
}

func testReissuePatientActivation(t *testing.T, s *activationdb.Store) {
	ctx := context.Background()
	now := apitime.Now()
	a := newPatientActivation(t, "patient-"+uuid.NewString(), now)
	mustCreate(t, s, a)
	for range 3 {
		if _, err := s.RecordFailedAttempt(ctx, a.ID, maxAttempts, ev("patient activation failed")); err != nil {
			t.Fatal(err)
		}
	}
	later := now.Add(time.Hour)
	re := a
	re.OTPHash = randomHash(t)
	re.ExpiresAt = apitime.EndOfNthDay(later, 5)
	re.Modified, re.ModifiedBy = later, "someone"
	if err := s.ReissuePatientActivation(ctx, re, ev("patient activation created")); err != nil {
		t.Fatal(err)
	}
	got, err := s.UnusedPatientActivation(ctx, a.PatientID)
	if err != nil {
		t.Fatal(err)
	}
	re.Attempts = 0
	equalPatientActivation(t, got, re)

	// A reissue may also change the code hash; a taken one conflicts.
	other := newPatientActivation(t, "patient-"+uuid.NewString(), now)
	mustCreate(t, s, other)
	clash := re
	clash.CodeHash = other.CodeHash
	if err := s.ReissuePatientActivation(ctx, clash, ev("patient activation created")); !errors.Is(err, activation.ErrConflict) {
		t.Fatalf("reissue with a taken code hash: got %v, want ErrConflict", err)
	}

	unknown := newPatientActivation(t, a.PatientID, now)
	if err := s.ReissuePatientActivation(ctx, unknown, ev("patient activation created")); !errors.Is(err, activation.ErrNotFound) {
		t.Fatalf("reissue of unknown id: got %v, want ErrNotFound", err)
	}
	if err := s.CompletePatientActivation(ctx, completion(re, later, randomHash(t))); err != nil {
		t.Fatal(err)
	}
	if err := s.ReissuePatientActivation(ctx, re, ev("patient activation created")); !errors.Is(err, activation.ErrNotFound) {
		t.Fatalf("reissue of completed: got %v, want ErrNotFound", err)
	}
}

func testRecordFailedAttempt(t *testing.T, s *activationdb.Store) {
	ctx := context.Background()
	a := newPatientActivation(t, "patient-"+uuid.NewString(), apitime.Now())
	mustCreate(t, s, a)
	for i := 1; i <= maxAttempts; i++ {
		counted, err := s.RecordFailedAttempt(ctx, a.ID, maxAttempts, ev("patient activation failed"))
		if err != nil || !counted {
			t.Fatalf("attempt %d: counted=%v err=%v", i, counted, err)
		}
	}
	counted, err := s.RecordFailedAttempt(ctx, a.ID, maxAttempts, ev("patient activation failed"))
	if err != nil || counted {
		t.Fatalf("attempt past max: counted=%v err=%v", counted, err)
	}
	got, err := s.PatientActivationByCode(ctx, a.CodeHash)
	if err != nil || got.Attempts != maxAttempts {
		t.Fatalf("attempts = %d, %v; want %d", got.Attempts, err, maxAttempts)
	}
	counted, err = s.RecordFailedAttempt(ctx, uuid.NewString(), maxAttempts, ev("patient activation failed"))
	if err != nil || counted {
		t.Fatalf("unknown activation: counted=%v err=%v", counted, err)
	}
}

// PatientActivationByCode says whether the patient has completed an
// activation before: only a re-activation revokes the patient's tokens.
func testPatientActivatedBefore(t *testing.T, s *activationdb.Store) {
	ctx := context.Background()
	now := apitime.Now()
	first := newPatientActivation(t, "patient-"+uuid.NewString(), now)
	mustCreate(t, s, first)
	got, err := s.PatientActivationByCode(ctx, first.CodeHash)
	if err != nil || got.PatientActivated {
		t.Fatalf("first activation: PatientActivated=%v, %v; want false", got.PatientActivated, err)
	}
	if err := s.CompletePatientActivation(ctx, completion(first, now, randomHash(t))); err != nil {
		t.Fatal(err)
	}
	second := newPatientActivation(t, first.PatientID, now.Add(time.Second))
	mustCreate(t, s, second)
	got, err = s.PatientActivationByCode(ctx, second.CodeHash)
	if err != nil || !got.PatientActivated {
		t.Fatalf("second activation: PatientActivated=%v, %v; want true", got.PatientActivated, err)
	}
	equalPatientActivation(t, got, second)
}

func testCompletePatientActivation(t *testing.T, s *activationdb.Store) {
	ctx := context.Background()
	now := apitime.Now()
	a := newPatientActivation(t, "patient-"+uuid.NewString(), now)
	mustCreate(t, s, a)
	auth := randomHash(t)

	wrongOTP := completion(a, now, auth)
	wrongOTP.OTPHash = randomHash(t)
	if err := s.CompletePatientActivation(ctx, wrongOTP); !errors.Is(err, activation.ErrNotFound) {
		t.Fatalf("other OTP hash: got %v, want ErrNotFound", err)
	}
	expired := completion(a, a.ExpiresAt, auth)
	if err := s.CompletePatientActivation(ctx, expired); !errors.Is(err, activation.ErrNotFound) {
		t.Fatalf("at expiry: got %v, want ErrNotFound", err)
	}
	locked := completion(a, now, auth)
	locked.MaxAttempts = 0
	if err := s.CompletePatientActivation(ctx, locked); !errors.Is(err, activation.ErrNotFound) {
		t.Fatalf("locked: got %v, want ErrNotFound", err)
	}
	if h, _ := s.PatientAuthCodeHash(ctx, a.PatientID); h != nil {
		t.Fatal("a failed completion wrote an authorisation code")
	}

	done := now.Add(time.Minute)
	if err := s.CompletePatientActivation(ctx, completion(a, done, auth)); err != nil {
		t.Fatal(err)
	}
	got, err := s.PatientActivationByCode(ctx, a.CodeHash)
	if err != nil {
		t.Fatal(err)
	}
	if got.Completed == nil || !got.Completed.Equal(done) || !got.Modified.Equal(done) || got.ModifiedBy != "activation" {
		t.Fatalf("completed activation: %+v", got)
	}
	if h, err := s.PatientAuthCodeHash(ctx, a.PatientID); err != nil || !bytes.Equal(h, auth) {
		t.Fatalf("auth hash = %x, %v; want %x", h, err, auth)
	}
	if err := s.CompletePatientActivation(ctx, completion(a, done, randomHash(t))); !errors.Is(err, activation.ErrNotFound) {
		t.Fatalf("second completion: got %v, want ErrNotFound", err)
	}
	if h, _ := s.PatientAuthCodeHash(ctx, a.PatientID); !bytes.Equal(h, auth) {
		t.Fatal("a refused completion replaced the authorisation code")
	}
	if _, err := s.UnusedPatientActivation(ctx, a.PatientID); !errors.Is(err, activation.ErrNotFound) {
		t.Fatalf("completed activation still unused: %v", err)
	}
	// Once completed, the patient may get a new activation.
	mustCreate(t, s, newPatientActivation(t, a.PatientID, done))
}

func testCompletedPatientActivations(t *testing.T, s *activationdb.Store) {
	ctx := context.Background()
	patient := "patient-" + uuid.NewString()
	list, err := s.CompletedPatientActivations(ctx, patient, 100)
	if err != nil || list == nil || len(list) != 0 {
		t.Fatalf("unknown patient: %v, %v; want an empty list", list, err)
	}
	base := apitime.Now()
	var ids []string
	for i := range 3 {
		at := base.Add(time.Duration(i) * time.Minute)
		a := newPatientActivation(t, patient, at)
		mustCreate(t, s, a)
		if err := s.CompletePatientActivation(ctx, completion(a, at.Add(time.Second), randomHash(t))); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	mustCreate(t, s, newPatientActivation(t, patient, base)) // unused: not listed
	list, err = s.CompletedPatientActivations(ctx, patient, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 {
		t.Fatalf("got %d activations, want 3", len(list))
	}
	for i, a := range list {
		if a.ID != ids[2-i] || a.Completed == nil {
			t.Fatalf("position %d: got %s (completed %v), want %s", i, a.ID, a.Completed, ids[2-i])
		}
	}
	// The list is bounded: the newest ones only.
	list, err = s.CompletedPatientActivations(ctx, patient, 2)
	if err != nil || len(list) != 2 || list[0].ID != ids[2] || list[1].ID != ids[1] {
		t.Fatalf("limit 2: %+v, %v; want the two newest", list, err)
	}
}

func testPatientAuthCodeHash(t *testing.T, s *activationdb.Store) {
	ctx := context.Background()
	if _, err := s.PatientAuthCodeHash(ctx, "patient-"+uuid.NewString()); !errors.Is(err, activation.ErrNotFound) {
		t.Fatalf("unknown patient: got %v, want ErrNotFound", err)
	}
	now := apitime.Now()
	patient := "patient-" + uuid.NewString()
	var last []byte
	for range 2 {
		a := newPatientActivation(t, patient, now)
		mustCreate(t, s, a)
		last = randomHash(t)
		if err := s.CompletePatientActivation(ctx, completion(a, now, last)); err != nil {
			t.Fatal(err)
		}
	}
	if h, err := s.PatientAuthCodeHash(ctx, patient); err != nil || !bytes.Equal(h, last) {
		t.Fatalf("got %x, %v; want the newest hash %x", h, err, last)
	}
}

func equalDeviceActivation(t *testing.T, got, want activation.DeviceActivation) {
	t.Helper()
	if got.ID != want.ID || got.DeviceID != want.DeviceID || !bytes.Equal(got.CodeHash, want.CodeHash) ||
		!got.ExpiresAt.Equal(want.ExpiresAt) || !got.Created.Equal(want.Created) || got.CreatedBy != want.CreatedBy ||
		!got.Modified.Equal(want.Modified) || got.ModifiedBy != want.ModifiedBy ||
		(got.Completed == nil) != (want.Completed == nil) {
		t.Fatalf("device activation differs:\n got %+v\nwant %+v", got, want)
	}
}

func testIssueDeviceActivation(t *testing.T, s *activationdb.Store) {
	ctx := context.Background()
	now := apitime.Now()
	device := "device-" + uuid.NewString()
	if _, err := s.DeviceAuthCodeHash(ctx, device); !errors.Is(err, activation.ErrNotFound) {
		t.Fatalf("unknown device: got %v, want ErrNotFound", err)
	}
	a := newDeviceActivation(t, device, now)
	got, err := s.IssueDeviceActivation(ctx, a, ev("device activation created"))
	if err != nil {
		t.Fatal(err)
	}
	equalDeviceActivation(t, got, a)
	if byCode, err := s.DeviceActivationByCode(ctx, a.CodeHash); err != nil {
		t.Fatal(err)
	} else {
		equalDeviceActivation(t, byCode, a)
	}
	if h, err := s.DeviceAuthCodeHash(ctx, device); err != nil || h != nil {
		t.Fatalf("never activated device: %x, %v; want nil, nil", h, err)
	}

	// Issuing again reissues the unused activation: same id and creation,
	// new code and expiry; the old code no longer finds it.
	later := now.Add(time.Hour)
	b := newDeviceActivation(t, device, later)
	b.ExpiresAt = apitime.EndOfNthDay(later, 6)
	got, err = s.IssueDeviceActivation(ctx, b, ev("device activation created"))
	if err != nil {
		t.Fatal(err)
	}
	want := a
	want.CodeHash, want.ExpiresAt, want.Modified, want.ModifiedBy = b.CodeHash, b.ExpiresAt, later, b.ModifiedBy
	equalDeviceActivation(t, got, want)
	if _, err := s.DeviceActivationByCode(ctx, a.CodeHash); !errors.Is(err, activation.ErrNotFound) {
		t.Fatalf("old code: got %v, want ErrNotFound", err)
	}

	// A code hash in use by another device conflicts, for a new and for a
	// reissued activation alike.
	other := newDeviceActivation(t, "device-"+uuid.NewString(), now)
	other.CodeHash = b.CodeHash
	if _, err := s.IssueDeviceActivation(ctx, other, ev("device activation created")); !errors.Is(err, activation.ErrConflict) {
		t.Fatalf("taken code hash (new): got %v, want ErrConflict", err)
	}
	if _, err := s.DeviceAuthCodeHash(ctx, other.DeviceID); !errors.Is(err, activation.ErrNotFound) {
		t.Fatalf("failed issue left a device: %v", err)
	}
	third := newDeviceActivation(t, "device-"+uuid.NewString(), now)
	if _, err := s.IssueDeviceActivation(ctx, third, ev("device activation created")); err != nil {
		t.Fatal(err)
	}
	third.CodeHash = b.CodeHash
	if _, err := s.IssueDeviceActivation(ctx, third, ev("device activation created")); !errors.Is(err, activation.ErrConflict) {
		t.Fatalf("taken code hash (reissue): got %v, want ErrConflict", err)
	}

	// After completion a new activation is created.
	if err := s.CompleteDeviceActivation(ctx, activation.DeviceCompletion{ActivationID: a.ID, DeviceID: device, Now: later, AuthCodeHash: randomHash(t), Actor: "activation"}); err != nil {
		t.Fatal(err)
	}
	c := newDeviceActivation(t, device, later)
	got, err = s.IssueDeviceActivation(ctx, c, ev("device activation created"))
	if err != nil {
		t.Fatal(err)
	}
	equalDeviceActivation(t, got, c)
}

func testCompleteDeviceActivation(t *testing.T, s *activationdb.Store) {
	ctx := context.Background()
	now := apitime.Now()
	device := "device-" + uuid.NewString()
	a := newDeviceActivation(t, device, now)
	if _, err := s.IssueDeviceActivation(ctx, a, ev("device activation created")); err != nil {
		t.Fatal(err)
	}
	auth := randomHash(t)
	c := activation.DeviceCompletion{ActivationID: a.ID, DeviceID: device, Now: a.ExpiresAt, AuthCodeHash: auth, Actor: "activation"}
	if err := s.CompleteDeviceActivation(ctx, c); !errors.Is(err, activation.ErrNotFound) {
		t.Fatalf("expired: got %v, want ErrNotFound", err)
	}
	unknown := c
	unknown.ActivationID, unknown.Now = uuid.NewString(), now
	if err := s.CompleteDeviceActivation(ctx, unknown); !errors.Is(err, activation.ErrNotFound) {
		t.Fatalf("unknown: got %v, want ErrNotFound", err)
	}
	c.Now = now
	if err := s.CompleteDeviceActivation(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := s.DeviceActivationByCode(ctx, a.CodeHash)
	if err != nil || got.Completed == nil || !got.Completed.Equal(now) {
		t.Fatalf("completed: %+v, %v", got, err)
	}
	if h, err := s.DeviceAuthCodeHash(ctx, device); err != nil || !bytes.Equal(h, auth) {
		t.Fatalf("auth hash = %x, %v; want %x", h, err, auth)
	}
	c.AuthCodeHash = randomHash(t)
	if err := s.CompleteDeviceActivation(ctx, c); !errors.Is(err, activation.ErrNotFound) {
		t.Fatalf("second completion: got %v, want ErrNotFound", err)
	}
	if h, _ := s.DeviceAuthCodeHash(ctx, device); !bytes.Equal(h, auth) {
		t.Fatal("a refused completion replaced the authorisation code")
	}
}

const racers = 40

// testConcurrentCompletion: 40 validations of one activation with the
// right OTP at once complete it exactly once.
func testConcurrentCompletion(t *testing.T, s *activationdb.Store) {
	ctx := context.Background()
	now := apitime.Now()
	a := newPatientActivation(t, "patient-"+uuid.NewString(), now)
	mustCreate(t, s, a)
	hashes := make([][]byte, racers)
	errs := make([]error, racers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range racers {
		hashes[i] = randomHash(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = s.CompletePatientActivation(ctx, completion(a, now, hashes[i]))
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("racers %d and %d both completed the activation", winner, i)
			}
			winner = i
		case !errors.Is(err, activation.ErrNotFound):
			t.Fatalf("racer %d: unexpected error %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no racer completed the activation")
	}
	if h, err := s.PatientAuthCodeHash(ctx, a.PatientID); err != nil || !bytes.Equal(h, hashes[winner]) {
		t.Fatalf("stored auth hash is not the winner's: %v", err)
	}
}

// testConcurrentFailedAttempts: 40 wrong OTPs at once leave attempts at
// exactly max, and the right OTP then fails.
func testConcurrentFailedAttempts(t *testing.T, s *activationdb.Store) {
	ctx := context.Background()
	now := apitime.Now()
	a := newPatientActivation(t, "patient-"+uuid.NewString(), now)
	mustCreate(t, s, a)
	var wg sync.WaitGroup
	var mu sync.Mutex
	counted := 0
	start := make(chan struct{})
	for range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ok, err := s.RecordFailedAttempt(ctx, a.ID, maxAttempts, ev("patient activation failed"))
			if err != nil {
				t.Errorf("RecordFailedAttempt: %v", err)
			}
			if ok {
				mu.Lock()
				counted++
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	if counted != maxAttempts {
		t.Fatalf("%d attempts counted, want %d", counted, maxAttempts)
	}
	got, err := s.PatientActivationByCode(ctx, a.CodeHash)
	if err != nil || got.Attempts != maxAttempts {
		t.Fatalf("attempts = %d, %v; want %d", got.Attempts, err, maxAttempts)
	}
	if err := s.CompletePatientActivation(ctx, completion(a, now, randomHash(t))); !errors.Is(err, activation.ErrNotFound) {
		t.Fatalf("right OTP after lock-out: got %v, want ErrNotFound", err)
	}
}

func testConcurrentDeviceCompletion(t *testing.T, s *activationdb.Store) {
	ctx := context.Background()
	now := apitime.Now()
	a := newDeviceActivation(t, "device-"+uuid.NewString(), now)
	if _, err := s.IssueDeviceActivation(ctx, a, ev("device activation created")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	start := make(chan struct{})
	for range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := s.CompleteDeviceActivation(ctx, activation.DeviceCompletion{ActivationID: a.ID, DeviceID: a.DeviceID, Now: now, AuthCodeHash: randomHash(t), Actor: "activation"})
			switch {
			case err == nil:
				mu.Lock()
				wins++
				mu.Unlock()
			case !errors.Is(err, activation.ErrNotFound):
				t.Errorf("CompleteDeviceActivation: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d completions, want exactly 1", wins)
	}
}

// testConcurrentCreate: concurrent creations for one patient leave at most
// one unused activation; the losers see ErrConflict.
func testConcurrentCreate(t *testing.T, s *activationdb.Store) {
	ctx := context.Background()
	now := apitime.Now()
	patient := "patient-" + uuid.NewString()
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	start := make(chan struct{})
	for range 10 {
		a := newPatientActivation(t, patient, now)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := s.CreatePatientActivation(ctx, a, ev("patient activation created"))
			switch {
			case err == nil:
				mu.Lock()
				wins++
				mu.Unlock()
			case !errors.Is(err, activation.ErrConflict):
				t.Errorf("CreatePatientActivation: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d creations succeeded, want 1", wins)
	}
}

func testPing(t *testing.T, s *activationdb.Store) {
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func testDropData(t *testing.T, s *activationdb.Store) {
	ctx := context.Background()
	now := apitime.Now()
	a := newPatientActivation(t, "patient-"+uuid.NewString(), now)
	mustCreate(t, s, a)
	d := newDeviceActivation(t, "device-"+uuid.NewString(), now)
	if _, err := s.IssueDeviceActivation(ctx, d, ev("device activation created")); err != nil {
		t.Fatal(err)
	}
	if err := s.DropData(ctx, ev("data dropped")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PatientActivationByCode(ctx, a.CodeHash); !errors.Is(err, activation.ErrNotFound) {
		t.Fatalf("patient activation survived: %v", err)
	}
	if _, err := s.PatientAuthCodeHash(ctx, a.PatientID); !errors.Is(err, activation.ErrNotFound) {
		t.Fatalf("patient survived: %v", err)
	}
	if _, err := s.DeviceActivationByCode(ctx, d.CodeHash); !errors.Is(err, activation.ErrNotFound) {
		t.Fatalf("device activation survived: %v", err)
	}
	if _, err := s.DeviceAuthCodeHash(ctx, d.DeviceID); !errors.Is(err, activation.ErrNotFound) {
		t.Fatalf("device survived: %v", err)
	}
	if err := s.DropData(ctx, ev("data dropped")); err != nil {
		t.Fatalf("dropping an empty store: %v", err)
	}
}

func testResetTestData(t *testing.T, s *activationdb.Store) {
	ctx := context.Background()
	now := apitime.Now()
	old := newPatientActivation(t, "patient-"+uuid.NewString(), now)
	mustCreate(t, s, old)
	var seed []activation.SeedPatient
	for _, id := range []string{"1", "2", "3"} {
		a := newPatientActivation(t, id, now)
		done := now
		a.Completed = &done
		seed = append(seed, activation.SeedPatient{PatientID: id, Activation: a, AuthCodeHash: randomHash(t)})
	}
	for range 2 { // twice: a reset of a reset store works too
		if err := s.ResetTestData(ctx, seed, ev("test data reset")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.PatientAuthCodeHash(ctx, old.PatientID); !errors.Is(err, activation.ErrNotFound) {
		t.Fatalf("old data survived the reset: %v", err)
	}
	for _, p := range seed {
		if h, err := s.PatientAuthCodeHash(ctx, p.PatientID); err != nil || !bytes.Equal(h, p.AuthCodeHash) {
			t.Fatalf("patient %s: %x, %v", p.PatientID, h, err)
		}
		list, err := s.CompletedPatientActivations(ctx, p.PatientID, 100)
		if err != nil || len(list) != 1 || list[0].ID != p.Activation.ID {
			t.Fatalf("patient %s activations: %+v, %v", p.PatientID, list, err)
		}
	}
}

// ev is an event the activation service would record.
func ev(typ string) audit.Event {
	return audit.New(context.Background(), "activation", typ, "s", nil)
}

// TestEventsWithChanges checks that changes are stored with their events,
// that a change that does not happen stores none, and that refusals are
// recorded on their own.
func TestEventsWithChanges(t *testing.T) {
	storagetest.Each(t, activationdb.Migrations(), func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		s := activationdb.New(db)
		now := apitime.Now()
		subjectEvent := func(typ, subject string) audit.Event {
			return audit.New(ctx, "activation", typ, subject, nil)
		}
		a := newPatientActivation(t, "p1", now)
		if err := s.CreatePatientActivation(ctx, a, subjectEvent(audit.TypePatientActivationCreated, "p1")); err != nil {
			t.Fatal(err)
		}
		wrong := completion(a, now, randomHash(t))
		wrong.OTPHash = randomHash(t)
		if err := s.CompletePatientActivation(ctx, wrong, subjectEvent(audit.TypePatientActivationValidated, "p1")); !errors.Is(err, activation.ErrNotFound) {
			t.Fatalf("complete with a wrong OTP hash: %v", err)
		}
		if _, err := s.RecordFailedAttempt(ctx, a.ID, maxAttempts, subjectEvent(audit.TypePatientActivationFailed, "p1")); err != nil {
			t.Fatal(err)
		}
		if err := s.CompletePatientActivation(ctx, completion(a, now, randomHash(t)),
			subjectEvent(audit.TypePatientActivationValidated, "p1"), subjectEvent(audit.TypeAuthorisationCodeIssued, "p1")); err != nil {
			t.Fatal(err)
		}
		d := newDeviceActivation(t, "d1", now)
		if _, err := s.IssueDeviceActivation(ctx, d, subjectEvent(audit.TypeDeviceActivationCreated, "d1")); err != nil {
			t.Fatal(err)
		}
		d2 := newDeviceActivation(t, "d1", now)
		if _, err := s.IssueDeviceActivation(ctx, d2, subjectEvent(audit.TypeDeviceActivationCreated, "d1")); err != nil {
			t.Fatal(err)
		}
		if err := s.Record(ctx, subjectEvent(audit.TypeDeviceAuthFailed, "d1")); err != nil {
			t.Fatal(err)
		}
		events := audittest.Outbox(t, db)
		got := audittest.TypeSubjects(events)
		want := []string{"patient activation created p1", "patient activation failed p1", "patient activation validated p1",
			"authorisation code issued p1", "device activation created d1", "device activation created d1", "SEND entry device auth failed d1"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("events %q, want %q", got, want)
		}
		// The device activation events name the stored activation: the
		// second issue reissued the first.
		first, second := events[4].Data, events[5].Data
		if first["activation_id"] != d.ID || first["reissued"] != false || second["activation_id"] != d.ID || second["reissued"] != true {
			t.Fatalf("device activation event data %v, %v", first, second)
		}
	})
}
