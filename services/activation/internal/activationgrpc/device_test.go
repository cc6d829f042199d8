package activationgrpc_test

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	activationv1 "github.com/dhosauth/dhosauth/gen/go/dhos/activation/v1"
	authv1 "github.com/dhosauth/dhosauth/gen/go/dhos/auth/v1"
	"github.com/dhosauth/dhosauth/pkg/apitime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var deviceCodeRe = regexp.MustCompile(`^[0-9]{9}$`)

func TestCreateDeviceActivation(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		_, err := e.client.CreateDeviceActivation(e.deviceAdmin(), &activationv1.CreateDeviceActivationRequest{DeviceId: "unknown"})
		wantCode(t, err, codes.NotFound)
		_, err = e.client.CreateDeviceActivation(e.writer(), &activationv1.CreateDeviceActivationRequest{DeviceId: "d1"})
		wantCode(t, err, codes.PermissionDenied) // lacks write:send_device
		_, err = e.client.CreateDeviceActivation(context.Background(), &activationv1.CreateDeviceActivationRequest{DeviceId: "d1"})
		wantCode(t, err, codes.Unauthenticated)

		e.devices.set("d1", true)
		first := e.createDevice("d1")
		if !deviceCodeRe.MatchString(first.GetCode()) {
			t.Fatalf("code %q: want 9 digits", first.GetCode())
		}
		if want := apitime.Format(apitime.EndOfNthDay(e.clock.Now(), 5)); first.GetExpiresAt() != want {
			t.Fatalf("expires_at %q, want %q", first.GetExpiresAt(), want)
		}
		// Reissue: a new code, expiry extended; the old code is gone.
		e.clock.Add(30 * time.Hour)
		second := e.createDevice("d1")
		if second.GetCode() == first.GetCode() {
			t.Fatal("reissue kept the code")
		}
		if want := apitime.Format(apitime.EndOfNthDay(e.clock.Now(), 5)); second.GetExpiresAt() != want {
			t.Fatalf("expires_at %q, want %q", second.GetExpiresAt(), want)
		}
		_, err = e.validateDevice(first.GetCode())
		wantCode(t, err, codes.NotFound)
		v, err := e.validateDevice(second.GetCode())
		if err != nil {
			t.Fatal(err)
		}
		if v.GetDeviceId() != "d1" || v.PatientId != nil || !authCodeRe.MatchString(v.GetAuthorisationCode()) {
			t.Fatalf("response %+v", v)
		}
		// An inactive but known device may still be given an activation.
		e.devices.set("d2", false)
		e.createDevice("d2")
	})
}

func TestValidateDeviceActivation(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		e.devices.set("d1", true)
		act := e.createDevice("d1")
		_, err := e.validateDevice("000000000")
		wantCode(t, err, codes.NotFound)
		_, err = e.validateDevice("")
		wantCode(t, err, codes.InvalidArgument)
		// A body is not needed, and one given is ignored.
		v, err := e.client.ValidateActivation(context.Background(), &activationv1.ValidateActivationRequest{
			ActivationCode: act.GetCode(), Type: "send_entry", Body: &activationv1.ValidateActivationBody{Otp: "x"},
		})
		if err != nil || v.GetDeviceId() != "d1" {
			t.Fatalf("validate: %v, %v", v, err)
		}
		_, err = e.validateDevice(act.GetCode())
		wantCode(t, err, codes.NotFound) // used
		// A patient validation does not accept a device code, nor the reverse.
		again := e.createDevice("d1")
		_, err = e.validatePatient(again.GetCode(), "abcd")
		wantCode(t, err, codes.NotFound)
		pat := e.createPatient("p")
		_, err = e.validateDevice(pat.GetActivationCode())
		wantCode(t, err, codes.NotFound)
		// Expired.
		e.clock.Add(6 * 24 * time.Hour)
		_, err = e.validateDevice(again.GetCode())
		wantCode(t, err, codes.NotFound)
	})
}

func TestConcurrentDeviceValidation(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		e.devices.set("d1", true)
		act := e.createDevice("d1")
		var mu sync.Mutex
		wins := 0
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := e.validateDevice(act.GetCode())
				switch status.Code(err) {
				case codes.OK:
					mu.Lock()
					wins++
					mu.Unlock()
				case codes.NotFound:
				default:
					t.Errorf("validate: %v", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d successes, want exactly 1", wins)
		}
	})
}

// auditRecord is one recorded audit event.
type auditRecord struct {
	EventType string
	EventData map[string]any
	Actor     string
	Subject   string
	Outcome   string
}

func (e *env) audits() []auditRecord { return e.auditEvents() }

func TestGetDeviceJwt(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		e.devices.set("d1", true)
		e.devices.set("fresh", true)
		act := e.createDevice("d1")
		v, err := e.validateDevice(act.GetCode())
		if err != nil {
			t.Fatal(err)
		}
		code := v.GetAuthorisationCode()

		_, err = e.client.GetDeviceJwt(context.Background(), &activationv1.GetDeviceJwtRequest{DeviceId: "d1"})
		wantCode(t, err, codes.InvalidArgument) // header missing
		if len(e.audits()) != 0 {
			t.Fatal("a request without a code was audited")
		}

		e.createDevice("fresh") // an activation, never validated
		for _, tc := range []struct {
			device, code, reason string
		}{
			{"nowhere", code, "unknown device"},
			{"fresh", code, "device never activated"},
			{"d1", code + "x", "authorisation code does not match"},
		} {
			_, err := e.deviceJwt(tc.device, tc.code)
			wantCode(t, err, codes.PermissionDenied)
			a := e.audits()
			last := a[len(a)-1]
			if last.EventType != "SEND entry device auth failed" || last.EventData["device_id"] != tc.device || last.EventData["reason"] != tc.reason ||
				last.Outcome != "failure" || last.Subject != tc.device || last.Actor != "anonymous" {
				t.Fatalf("audit for %s: %+v", tc.device, last)
			}
		}

		jwt, err := e.deviceJwt("d1", code)
		if err != nil {
			t.Fatal(err)
		}
		if c := parseClaims(t, jwt.GetJwt()); c["sub"] != "d1" {
			t.Fatalf("claims %v", c)
		}
		calls := e.tokens.calls()
		if len(calls) != 1 || calls[0] != (issued{authv1.PrincipalKind_PRINCIPAL_KIND_DEVICE, "d1"}) {
			t.Fatalf("IssueToken calls %+v", calls)
		}
		a := e.audits()
		if last := a[len(a)-1]; last.EventType != "SEND entry device auth success" || last.EventData["device_id"] != "d1" || last.Actor != "d1" || last.Outcome != "success" {
			t.Fatalf("success audit: %+v", last)
		}

		// A deactivated device is refused even with the right code.
		e.devices.set("d1", false)
		_, err = e.deviceJwt("d1", code)
		wantCode(t, err, codes.PermissionDenied)
		a = e.audits()
		if last := a[len(a)-1]; last.EventData["reason"] != "device inactive" {
			t.Fatalf("inactive audit: %+v", last)
		}
		e.devices.set("d1", true)

		// Only the newest code works.
		act2 := e.createDevice("d1")
		v2, err := e.validateDevice(act2.GetCode())
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.deviceJwt("d1", code)
		wantCode(t, err, codes.PermissionDenied)
		if _, err := e.deviceJwt("d1", v2.GetAuthorisationCode()); err != nil {
			t.Fatal(err)
		}
		for _, r := range e.audits() {
			for _, v := range r.EventData {
				if s, _ := v.(string); strings.Contains(s, code) || strings.Contains(s, v2.GetAuthorisationCode()) {
					t.Fatal("an audit event carries an authorisation code")
				}
			}
		}
	})
}
