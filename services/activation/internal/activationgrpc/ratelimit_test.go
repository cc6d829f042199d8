package activationgrpc_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	activationv1 "github.com/dhosauth/dhosauth/gen/go/dhos/activation/v1"
	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/ratelimit"
	"github.com/dhosauth/dhosauth/services/activation/internal/activation"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

// from is a context whose calls come through the edge from addr.
func from(ctx context.Context, addr string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, ratelimit.ClientAddressMetadata, addr)
}

func limits(perAddress, perPrincipal, deviceGuesses int) func(*activation.Config) {
	return func(c *activation.Config) {
		c.Limits = activation.Limits{
			PerAddress:        ratelimit.Limit{Name: activation.LimitClientAddress, Max: perAddress, Window: 15 * time.Minute},
			PerPrincipal:      ratelimit.Limit{Name: "principal", Max: perPrincipal, Window: 15 * time.Minute},
			DeviceCodeGuesses: ratelimit.Limit{Name: activation.LimitDeviceCodeBudget, Max: deviceGuesses, Window: time.Hour},
		}
	}
}

// wantLimited fails unless err is RESOURCE_EXHAUSTED carrying a
// RetryInfo within (0, max]: a sliding window may take up to two windows
// to free a slot.
func wantLimited(t *testing.T, err error, max time.Duration) {
	t.Helper()
	wantCode(t, err, codes.ResourceExhausted)
	if d := apperr.RetryAfterOf(err); d <= 0 || d > max {
		t.Fatalf("retry after %v, want within (0, %v]", d, max)
	}
}

// TestRateLimitPerAddress: failed validations and code exchanges from one
// client address, at all three public RPCs together, are refused with
// RESOURCE_EXHAUSTED and a RetryInfo once the limit is reached; another
// address is not; successes do not count; the limit lifts when the window
// has slid past.
func TestRateLimitPerAddress(t *testing.T) {
	forEachBackend(t, options{cfg: limits(4, 0, 0)}, func(t *testing.T, e *env) {
		e.devices.set("d1", true)
		act := e.createPatient("p1")
		ctx := from(context.Background(), "198.51.100.7")
		// Successes are given back: any number of them.
		for range 6 {
			if _, err := e.client.ValidateActivation(ctx, &activationv1.ValidateActivationRequest{ActivationCode: "1", Body: &activationv1.ValidateActivationBody{Otp: "1111"}}); err != nil {
				t.Fatal(err)
			}
		}
		// Four failures, one at each RPC and kind.
		_, err := e.client.ValidateActivation(ctx, &activationv1.ValidateActivationRequest{ActivationCode: "nope", Body: &activationv1.ValidateActivationBody{Otp: "abcd"}})
		wantCode(t, err, codes.NotFound)
		_, err = e.client.ValidateActivation(ctx, &activationv1.ValidateActivationRequest{ActivationCode: "123456780", Type: "send_entry"})
		wantCode(t, err, codes.NotFound)
		_, err = e.client.GetPatientJwt(withAuthCode(ctx, "wrong"), &activationv1.GetPatientJwtRequest{PatientId: "p1"})
		wantCode(t, err, codes.NotFound)
		_, err = e.client.GetDeviceJwt(withAuthCode(ctx, "wrong"), &activationv1.GetDeviceJwtRequest{DeviceId: "d1"})
		wantCode(t, err, codes.PermissionDenied)
		// The fifth is refused, even with the right OTP.
		_, err = e.client.ValidateActivation(ctx, &activationv1.ValidateActivationRequest{ActivationCode: act.GetActivationCode(), Body: &activationv1.ValidateActivationBody{Otp: act.GetOtp()}})
		wantLimited(t, err, 30*time.Minute)
		_, err = e.client.GetPatientJwt(withAuthCode(ctx, "wrong"), &activationv1.GetPatientJwtRequest{PatientId: "p1"})
		wantLimited(t, err, 30*time.Minute)
		if e.attempts(act.GetActivationCode()) != 0 {
			t.Fatal("a refused attempt reached the activation")
		}
		// Another address, and the same one from an IPv6 /64 apart, are
		// their own buckets; addresses in the same /64 share one.
		other := from(context.Background(), "2001:db8:1:2::1")
		for range 4 {
			_, err = e.client.GetPatientJwt(withAuthCode(other, "wrong"), &activationv1.GetPatientJwtRequest{PatientId: "p1"})
			wantCode(t, err, codes.NotFound)
		}
		_, err = e.client.GetPatientJwt(withAuthCode(from(context.Background(), "2001:db8:1:2:ffff::9"), "wrong"), &activationv1.GetPatientJwtRequest{PatientId: "p1"})
		wantLimited(t, err, 30*time.Minute)
		// Without the edge's metadata the peer address counts.
		for range 4 {
			_, err = e.patientJwt("p1", "wrong")
			wantCode(t, err, codes.NotFound)
		}
		_, err = e.patientJwt("p1", "wrong")
		wantLimited(t, err, 30*time.Minute)
		// Once the window has slid by, the right OTP works.
		e.clock.Add(31 * time.Minute)
		if _, err := e.client.ValidateActivation(ctx, &activationv1.ValidateActivationRequest{ActivationCode: act.GetActivationCode(), Body: &activationv1.ValidateActivationBody{Otp: act.GetOtp()}}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRateLimitPerPrincipal: failed authorisation-code exchanges for one
// patient or device are limited whatever address they come from.
func TestRateLimitPerPrincipal(t *testing.T) {
	forEachBackend(t, options{cfg: limits(0, 3, 0)}, func(t *testing.T, e *env) {
		e.devices.set("d1", true)
		act := e.createPatient("p1")
		v, err := e.validatePatient(act.GetActivationCode(), act.GetOtp())
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			_, err := e.client.GetPatientJwt(withAuthCode(from(context.Background(), fmt.Sprintf("203.0.113.%d", i)), "wrong"), &activationv1.GetPatientJwtRequest{PatientId: "p1"})
			wantCode(t, err, codes.NotFound)
		}
		_, err = e.client.GetPatientJwt(withAuthCode(from(context.Background(), "203.0.113.99"), v.GetAuthorisationCode()), &activationv1.GetPatientJwtRequest{PatientId: "p1"})
		wantLimited(t, err, 30*time.Minute)
		// Another patient and a device are not affected.
		_, err = e.patientJwt("p2", "wrong")
		wantCode(t, err, codes.NotFound)
		for range 3 {
			_, err = e.deviceJwt("d1", "wrong")
			wantCode(t, err, codes.PermissionDenied)
		}
		_, err = e.deviceJwt("d1", "wrong")
		wantLimited(t, err, 30*time.Minute)
		e.clock.Add(31 * time.Minute)
		if _, err := e.patientJwt("p1", v.GetAuthorisationCode()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestDeviceCodeGuessBudget: failed device-code validations from any
// number of addresses share one budget; once spent, every device
// validation is refused until the window slides, and a success is given
// back.
func TestDeviceCodeGuessBudget(t *testing.T) {
	forEachBackend(t, options{cfg: limits(0, 0, 5)}, func(t *testing.T, e *env) {
		e.devices.set("d1", true)
		e.devices.set("d2", true)
		// A success does not spend the budget.
		if _, err := e.validateDevice(e.createDevice("d1").GetCode()); err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			_, err := e.client.ValidateActivation(from(context.Background(), fmt.Sprintf("192.0.2.%d", i)),
				&activationv1.ValidateActivationRequest{ActivationCode: fmt.Sprintf("00000000%d", i), Type: "send_entry"})
			wantCode(t, err, codes.NotFound)
		}
		code := e.createDevice("d2").GetCode()
		_, err := e.client.ValidateActivation(from(context.Background(), "192.0.2.200"), &activationv1.ValidateActivationRequest{ActivationCode: code, Type: "send_entry"})
		wantLimited(t, err, 2*time.Hour)
		// Patient validations are not part of the device budget.
		_, err = e.validatePatient("unknown-code", "abcd")
		wantCode(t, err, codes.NotFound)
		e.clock.Add(2 * time.Hour)
		if _, err := e.validateDevice(code); err != nil {
			t.Fatal(err)
		}
	})
}
