package activationgrpc_test

import (
	"context"
	"testing"
	"time"

	activationv1 "github.com/dhosauth/dhosauth/gen/go/dhos/activation/v1"
	"google.golang.org/grpc/codes"
)

// TestPeersDown: when the device or token service does not answer, the
// caller is told to try again (UNAVAILABLE), never INTERNAL, and nothing
// is audited as a refusal.
func TestPeersDown(t *testing.T) {
	forEachBackend(t, options{peersDown: true}, func(t *testing.T, e *env) {
		ctx, cancel := context.WithTimeout(e.deviceAdmin(), 10*time.Second)
		defer cancel()
		_, err := e.client.CreateDeviceActivation(ctx, &activationv1.CreateDeviceActivationRequest{DeviceId: "d"})
		wantCode(t, err, codes.Unavailable)
		_, err = e.deviceJwt("d", "code")
		wantCode(t, err, codes.Unavailable)
		if len(e.auditEvents()) != 0 {
			t.Fatal("an unavailable peer was audited as a refusal")
		}
		act := e.createPatient("p")
		v, err := e.validatePatient(act.GetActivationCode(), act.GetOtp())
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.patientJwt("p", v.GetAuthorisationCode())
		wantCode(t, err, codes.Unavailable)
	})
}
