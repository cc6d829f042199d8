package activationgrpc_test

import (
	"fmt"
	"strings"
	"testing"

	activationv1 "github.com/dhosauth/dhosauth/gen/go/dhos/activation/v1"
	"github.com/dhosauth/dhosauth/services/activation/internal/activation"
	"google.golang.org/grpc/codes"
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

// TestLookAlikeLettersDoNotMatch: only ASCII case is ignored in codes; a
// non-ASCII letter that Unicode upper-cases to an ASCII one ('ſ' to 'S',
// 'ı' to 'I') is a different code.
func TestLookAlikeLettersDoNotMatch(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		for i := 0; ; i++ {
			a := e.createPatient(fmt.Sprintf("p%d", i))
			code := a.GetActivationCode()
			if !strings.ContainsAny(code, "SI") {
				continue
			}
			odd := strings.NewReplacer("S", "ſ", "I", "ı").Replace(code)
			_, err := e.validatePatient(odd, a.GetOtp())
			wantCode(t, err, codes.NotFound)
			if _, err := e.validatePatient(strings.ToLower(code), strings.ToUpper(a.GetOtp())); err != nil {
				t.Fatalf("ASCII case variant refused: %v", err)
			}
			return
		}
	})
}
