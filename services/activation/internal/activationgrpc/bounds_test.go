package activationgrpc_test

import (
	"testing"

	activationv1 "github.com/dhosauth/dhosauth/gen/go/dhos/activation/v1"
	"github.com/dhosauth/dhosauth/services/activation/internal/activation"
)

// TestListPatientActivationsIsBounded: a patient with more completed
// activations than MaxListedActivations gets the newest ones only.
func TestListPatientActivationsIsBounded(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		for range activation.MaxListedActivations + 1 {
			a := e.createPatient("many")
			_, err := e.validatePatient(a.GetActivationCode(), a.GetOtp())
			if err != nil {
				t.Fatal(err)
			}
		}
		resp, err := e.client.ListPatientActivations(e.reader(), &activationv1.ListPatientActivationsRequest{PatientId: "many"})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(resp.GetActivations()); n != activation.MaxListedActivations {
			t.Fatalf("%d activations listed, want %d", n, activation.MaxListedActivations)
		}
	})
}
