package activationgrpc_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/dhosauth/dhosauth/pkg/apperr"
	"google.golang.org/grpc/codes"
)

type fakeRevoker struct {
	mu    sync.Mutex
	calls []string
	err   error
}

func (f *fakeRevoker) RevokePatient(_ context.Context, id, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, id+": "+reason)
	return f.err
}

// TestValidationRevokesEarlierTokens: a successful patient validation
// that re-activates the patient revokes the patient's earlier tokens
// first; when that cannot be recorded, the activation stays unused and the
// caller gets UNAVAILABLE, so a retry succeeds. A first activation has no
// earlier tokens to revoke.
func TestValidationRevokesEarlierTokens(t *testing.T) {
	rev := &fakeRevoker{}
	forEachBackend(t, options{revoker: rev}, func(t *testing.T, e *env) {
		rev.mu.Lock()
		rev.calls, rev.err = nil, apperr.Unavailable(errors.New("down"), "the token service did not answer, try again")
		rev.mu.Unlock()
		act := e.createPatient("patient-r")
		if _, err := e.validatePatient(act.GetActivationCode(), act.GetOtp()); err != nil {
			t.Fatalf("first activation: %v", err)
		}
		rev.mu.Lock()
		if len(rev.calls) != 0 {
			t.Fatalf("a first activation revoked: %v", rev.calls)
		}
		rev.mu.Unlock()
		act = e.createPatient("patient-r")
		_, err := e.validatePatient(act.GetActivationCode(), act.GetOtp())
		wantCode(t, err, codes.Unavailable)

		rev.mu.Lock()
		rev.err = nil
		rev.mu.Unlock()
		v, err := e.validatePatient(act.GetActivationCode(), act.GetOtp())
		if err != nil || v.GetPatientId() != "patient-r" {
			t.Fatalf("retry: %v %v", v, err)
		}
		rev.mu.Lock()
		defer rev.mu.Unlock()
		if len(rev.calls) != 2 || rev.calls[1] != "patient-r: patient activated again" {
			t.Fatalf("revocations %v", rev.calls)
		}
		// A wrong OTP revokes nothing.
		act = e.createPatient("patient-s")
		rev.calls = nil
		_, _ = e.validatePatient(act.GetActivationCode(), "ZZZZ")
		if len(rev.calls) != 0 {
			t.Fatalf("wrong OTP revoked: %v", rev.calls)
		}
	})
}
