package e2e

import (
	"testing"
)

// TestContract checks every row and rule of the /dhos/v1 contract against
// the running binaries, once per store.
func TestContract(t *testing.T) {
	forEachBackend(t, nil, func(t *testing.T, s *Suite) {
		t.Run("service endpoints", func(t *testing.T) { serviceEndpoints(t, s) })
		t.Run("patient activation", func(t *testing.T) { patientActivation(t, s) })
		t.Run("patient validation errors", func(t *testing.T) { patientValidationErrors(t, s) })
		t.Run("patient lockout", func(t *testing.T) { patientLockout(t, s) })
		t.Run("patient concurrency", func(t *testing.T) { patientConcurrency(t, s) })
		t.Run("caller authentication", func(t *testing.T) { callerAuthentication(t, s) })
		t.Run("devices", func(t *testing.T) { devices(t, s) })
		t.Run("device activation", func(t *testing.T) { deviceActivation(t, s) })
		t.Run("clinicians", func(t *testing.T) { clinicians(t, s) })
		t.Run("clinician jwt", func(t *testing.T) { clinicianJWT(t, s) })
		t.Run("malformed input", func(t *testing.T) { malformedInput(t, s) })
		t.Run("grpc", func(t *testing.T) { grpcSurface(t, s) })
		// Last: it empties the stores.
		t.Run("non-production", func(t *testing.T) { nonProduction(t, s) })
	})
}
