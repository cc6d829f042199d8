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

var (
	otpRe      = regexp.MustCompile(`^[abcdefghjkmnpqrstuvwxyz2-9]{4}$`)
	codeRe     = regexp.MustCompile(`^[A-Z0-9]{30}$`)
	authCodeRe = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
)

func TestCreatePatientActivation(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		resp := e.createPatient("patient-1")
		if !otpRe.MatchString(resp.GetOtp()) {
			t.Errorf("otp %q: want 4 lower-case characters without look-alikes", resp.GetOtp())
		}
		if !codeRe.MatchString(resp.GetActivationCode()) {
			t.Errorf("activation_code %q: want 30 characters A-Z0-9", resp.GetActivationCode())
		}
		want := apitime.Format(apitime.EndOfNthDay(e.clock.Now(), 5))
		if resp.GetExpiresAt() != want || !strings.HasSuffix(want, "T23:59:59.000Z") {
			t.Errorf("expires_at = %q, want %q", resp.GetExpiresAt(), want)
		}
	})
}

func TestCreatePatientActivationAccess(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		req := &activationv1.CreatePatientActivationRequest{PatientId: "p"}
		_, err := e.client.CreatePatientActivation(context.Background(), req)
		wantCode(t, err, codes.Unauthenticated)
		_, err = e.client.CreatePatientActivation(bearer("not-a-jwt"), req)
		wantCode(t, err, codes.Unauthenticated)
		_, err = e.client.CreatePatientActivation(e.reader(), req)
		wantCode(t, err, codes.PermissionDenied)
		_, err = e.client.ListPatientActivations(e.writer(), &activationv1.ListPatientActivationsRequest{PatientId: "p"})
		wantCode(t, err, codes.PermissionDenied)
	})
}

func TestInvalidIDs(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		for _, id := range []string{"", strings.Repeat("x", 201), "a\x00b", "tab\tid", "del\x7f", "nl\n", "c1\u0085"} {
			_, err := e.client.CreatePatientActivation(e.writer(), &activationv1.CreatePatientActivationRequest{PatientId: id})
			wantCode(t, err, codes.InvalidArgument)
			_, err = e.client.ListPatientActivations(e.reader(), &activationv1.ListPatientActivationsRequest{PatientId: id})
			wantCode(t, err, codes.InvalidArgument)
			_, err = e.patientJwt(id, "code")
			wantCode(t, err, codes.InvalidArgument)
			_, err = e.client.CreateDeviceActivation(e.deviceAdmin(), &activationv1.CreateDeviceActivationRequest{DeviceId: id})
			wantCode(t, err, codes.InvalidArgument)
			_, err = e.deviceJwt(id, "code")
			wantCode(t, err, codes.InvalidArgument)
		}
		// 200 bytes (multi-byte characters included) is fine.
		id := strings.Repeat("é", 100)
		e.createPatient(id)
		e.devices.set(id, true)
		e.createDevice(id)
	})
}

func TestValidatePatientActivation(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		act := e.createPatient("patient-1")
		v, err := e.validatePatient(act.GetActivationCode(), act.GetOtp())
		if err != nil {
			t.Fatal(err)
		}
		if v.GetPatientId() != "patient-1" || v.DeviceId != nil || !authCodeRe.MatchString(v.GetAuthorisationCode()) {
			t.Fatalf("response %+v", v)
		}
		// Used: the same code and OTP now fail.
		_, err = e.validatePatient(act.GetActivationCode(), act.GetOtp())
		wantCode(t, err, codes.NotFound)

		// The authorisation code buys a patient JWT.
		jwt, err := e.patientJwt("patient-1", v.GetAuthorisationCode())
		if err != nil {
			t.Fatal(err)
		}
		if c := parseClaims(t, jwt.GetJwt()); c["sub"] != "patient-1" {
			t.Fatalf("jwt claims %v", c)
		}
		calls := e.tokens.calls()
		if len(calls) != 1 || calls[0] != (issued{authv1.PrincipalKind_PRINCIPAL_KIND_PATIENT, "patient-1"}) {
			t.Fatalf("IssueToken calls %+v", calls)
		}
	})
}

func TestValidateTypeGDM(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		act := e.createPatient("patient-1")
		v, err := e.client.ValidateActivation(context.Background(), &activationv1.ValidateActivationRequest{
			ActivationCode: act.GetActivationCode(), Type: "gdm", Body: &activationv1.ValidateActivationBody{Otp: act.GetOtp()},
		})
		if err != nil || v.GetPatientId() != "patient-1" {
			t.Fatalf("type gdm: %v, %v", v, err)
		}
	})
}

func TestValidateIgnoresCase(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		act := e.createPatient("patient-1")
		if _, err := e.validatePatient(strings.ToLower(act.GetActivationCode()), strings.ToUpper(act.GetOtp())); err != nil {
			t.Fatalf("upper-case OTP, lower-case code: %v", err)
		}
	})
}

func TestValidateBadInput(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		act := e.createPatient("patient-1")
		_, err := e.client.ValidateActivation(context.Background(), &activationv1.ValidateActivationRequest{ActivationCode: act.GetActivationCode()})
		wantCode(t, err, codes.InvalidArgument) // no body
		_, err = e.validatePatient(act.GetActivationCode(), "")
		wantCode(t, err, codes.InvalidArgument) // no otp
		_, err = e.validatePatient(act.GetActivationCode(), strings.Repeat("a", 201))
		wantCode(t, err, codes.InvalidArgument)
		_, err = e.validatePatient("", act.GetOtp())
		wantCode(t, err, codes.InvalidArgument)
		for _, typ := range []string{"other", "GDM ", "send-entry"} {
			_, err = e.client.ValidateActivation(context.Background(), &activationv1.ValidateActivationRequest{
				ActivationCode: act.GetActivationCode(), Type: typ, Body: &activationv1.ValidateActivationBody{Otp: act.GetOtp()},
			})
			wantCode(t, err, codes.InvalidArgument)
		}
		// None of that used the activation up or counted an attempt.
		if n := e.attempts(act.GetActivationCode()); n != 0 {
			t.Fatalf("attempts = %d after bad input", n)
		}
		if _, err := e.validatePatient(act.GetActivationCode(), act.GetOtp()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestValidateFailuresLookAlike: unknown, used, expired and wrong-OTP
// validations all answer the same 404.
func TestValidateFailuresLookAlike(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		used := e.createPatient("used")
		if _, err := e.validatePatient(used.GetActivationCode(), used.GetOtp()); err != nil {
			t.Fatal(err)
		}
		wrong := e.createPatient("wrong")
		expiring := e.createPatient("expiring")

		var msgs []string
		check := func(code, otp string) {
			t.Helper()
			_, err := e.validatePatient(code, otp)
			wantCode(t, err, codes.NotFound)
			msgs = append(msgs, status.Convert(err).Message())
		}
		check(strings.Repeat("A", 30), "abcd")
		check(used.GetActivationCode(), used.GetOtp())
		check(wrong.GetActivationCode(), otherOTP(wrong.GetOtp()))
		e.clock.Add(6 * 24 * time.Hour)
		check(expiring.GetActivationCode(), expiring.GetOtp())
		for _, m := range msgs[1:] {
			if m != msgs[0] {
				t.Fatalf("messages differ: %q", msgs)
			}
		}
	})
}

// otherOTP returns a valid-looking OTP that differs from otp.
func otherOTP(otp string) string {
	if otp == "zzzz" {
		return "yyyy"
	}
	return "zzzz"
}

func TestExpiryBoundary(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		act := e.createPatient("p")
		exp, err := time.Parse(apitime.Layout, act.GetExpiresAt())
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Add(exp.Sub(e.clock.Now()) - time.Millisecond)
		if _, err := e.validatePatient(act.GetActivationCode(), act.GetOtp()); err != nil {
			t.Fatalf("a millisecond before expiry: %v", err)
		}
		late := e.createPatient("q")
		exp, _ = time.Parse(apitime.Layout, late.GetExpiresAt())
		e.clock.Add(exp.Sub(e.clock.Now()))
		_, err = e.validatePatient(late.GetActivationCode(), late.GetOtp())
		wantCode(t, err, codes.NotFound)
	})
}

func TestMaxAttempts(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		act := e.createPatient("p")
		for i := range e.cfg.MaxAttempts {
			_, err := e.validatePatient(act.GetActivationCode(), otherOTP(act.GetOtp()))
			wantCode(t, err, codes.NotFound)
			if n := e.attempts(act.GetActivationCode()); n != i+1 {
				t.Fatalf("attempts = %d, want %d", n, i+1)
			}
		}
		_, err := e.validatePatient(act.GetActivationCode(), act.GetOtp())
		wantCode(t, err, codes.NotFound)
		if n := e.attempts(act.GetActivationCode()); n != e.cfg.MaxAttempts {
			t.Fatalf("attempts = %d past the limit", n)
		}
	})
}

func TestReissuePatientActivation(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		first := e.createPatient("p")
		for range e.cfg.MaxAttempts - 1 {
			_, err := e.validatePatient(first.GetActivationCode(), otherOTP(first.GetOtp()))
			wantCode(t, err, codes.NotFound)
		}
		e.clock.Add(50 * time.Hour)
		second := e.createPatient("p")
		if second.GetActivationCode() != first.GetActivationCode() {
			t.Fatalf("reissue changed the activation code: %q -> %q", first.GetActivationCode(), second.GetActivationCode())
		}
		if want := apitime.Format(apitime.EndOfNthDay(e.clock.Now(), 5)); second.GetExpiresAt() != want || second.GetExpiresAt() == first.GetExpiresAt() {
			t.Fatalf("expires_at = %q, want %q (was %q)", second.GetExpiresAt(), want, first.GetExpiresAt())
		}
		if n := e.attempts(first.GetActivationCode()); n != 0 {
			t.Fatalf("attempts = %d after reissue, want 0", n)
		}
		// The attempts were reset: the full allowance is available again
		// (MAX-1 failures, counting the old OTP, which no longer works).
		for range e.cfg.MaxAttempts - 2 {
			_, err := e.validatePatient(first.GetActivationCode(), otherOTP(second.GetOtp()))
			wantCode(t, err, codes.NotFound)
		}
		oldOTP := first.GetOtp()
		if oldOTP == second.GetOtp() {
			oldOTP = otherOTP(second.GetOtp())
		}
		_, err := e.validatePatient(first.GetActivationCode(), oldOTP)
		wantCode(t, err, codes.NotFound)
		if _, err := e.validatePatient(second.GetActivationCode(), second.GetOtp()); err != nil {
			t.Fatalf("new OTP: %v", err)
		}
		// Once completed, a create makes a new activation with a new code.
		third := e.createPatient("p")
		if third.GetActivationCode() == first.GetActivationCode() {
			t.Fatal("a completed activation was reissued")
		}
	})
}

func TestReissueAfterExpiry(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		first := e.createPatient("p")
		e.clock.Add(10 * 24 * time.Hour)
		_, err := e.validatePatient(first.GetActivationCode(), first.GetOtp())
		wantCode(t, err, codes.NotFound)
		second := e.createPatient("p")
		if second.GetActivationCode() != first.GetActivationCode() {
			t.Fatal("an expired unused activation was not reissued")
		}
		if _, err := e.validatePatient(second.GetActivationCode(), second.GetOtp()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestConcurrentCreatePatientActivation(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		var wg sync.WaitGroup
		codesSeen := make(chan string, 20)
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := e.client.CreatePatientActivation(e.writer(), &activationv1.CreatePatientActivationRequest{PatientId: "p"})
				if err != nil {
					t.Errorf("create: %v", err)
					return
				}
				codesSeen <- resp.GetActivationCode()
			}()
		}
		wg.Wait()
		close(codesSeen)
		first := ""
		for c := range codesSeen {
			if first == "" {
				first = c
			} else if c != first {
				t.Fatalf("concurrent creates made different activations: %s, %s", first, c)
			}
		}
	})
}

// TestConcurrentValidation: 40 validations with the right OTP at once give
// exactly one authorisation code.
func TestConcurrentValidation(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		act := e.createPatient("p")
		const n = 40
		errs := make([]error, n)
		resps := make([]*activationv1.ValidateActivationResponse, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				resps[i], errs[i] = e.validatePatient(act.GetActivationCode(), act.GetOtp())
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch status.Code(err) {
			case codes.OK:
				if winner >= 0 {
					t.Fatalf("two successes: %d and %d", winner, i)
				}
				winner = i
			case codes.NotFound:
			default:
				t.Fatalf("validation %d: %v", i, err)
			}
		}
		if winner < 0 {
			t.Fatal("no validation succeeded")
		}
		if _, err := e.patientJwt("p", resps[winner].GetAuthorisationCode()); err != nil {
			t.Fatalf("the winner's code: %v", err)
		}
	})
}

// TestConcurrentWrongOTPs: 40 wrong OTPs at once lock the activation with
// attempts exactly at the maximum.
func TestConcurrentWrongOTPs(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		act := e.createPatient("p")
		const n = 40
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := e.validatePatient(act.GetActivationCode(), otherOTP(act.GetOtp()))
				if status.Code(err) != codes.NotFound {
					t.Errorf("wrong OTP: %v", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if got := e.attempts(act.GetActivationCode()); got != e.cfg.MaxAttempts {
			t.Fatalf("attempts = %d, want %d", got, e.cfg.MaxAttempts)
		}
		_, err := e.validatePatient(act.GetActivationCode(), act.GetOtp())
		wantCode(t, err, codes.NotFound)
	})
}

func TestListPatientActivations(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		list, err := e.client.ListPatientActivations(e.reader(), &activationv1.ListPatientActivationsRequest{PatientId: "nobody"})
		if err != nil || len(list.GetActivations()) != 0 {
			t.Fatalf("unknown patient: %v, %v", list, err)
		}
		var completedAt []string
		for range 2 {
			act := e.createPatient("p")
			e.clock.Add(time.Minute)
			if _, err := e.validatePatient(act.GetActivationCode(), act.GetOtp()); err != nil {
				t.Fatal(err)
			}
			completedAt = append(completedAt, apitime.Format(e.clock.Now()))
		}
		e.createPatient("p") // unused: not listed
		list, err = e.client.ListPatientActivations(e.reader(), &activationv1.ListPatientActivationsRequest{PatientId: "p"})
		if err != nil {
			t.Fatal(err)
		}
		got := list.GetActivations()
		if len(got) != 2 {
			t.Fatalf("got %d activations, want 2", len(got))
		}
		if got[0].GetActivationCompleted() != completedAt[1] || got[1].GetActivationCompleted() != completedAt[0] {
			t.Fatalf("order: %v, want newest first %v", got, completedAt)
		}
		for _, a := range got {
			if a.GetUuid() == "" || a.GetCreatedBy() != "clinician-1" || a.GetModifiedBy() != "activation" ||
				!strings.HasSuffix(a.GetCreated(), "Z") || len(a.GetModified()) != len(apitime.Layout) {
				t.Fatalf("identifier fields: %+v", a)
			}
		}
	})
}

func TestGetPatientJwt(t *testing.T) {
	forEachBackend(t, options{}, func(t *testing.T, e *env) {
		act := e.createPatient("p")
		_, err := e.client.GetPatientJwt(context.Background(), &activationv1.GetPatientJwtRequest{PatientId: "p"})
		wantCode(t, err, codes.InvalidArgument) // no header
		_, err = e.patientJwt("p", "")
		wantCode(t, err, codes.InvalidArgument)
		_, err = e.patientJwt("p", "anything")
		wantCode(t, err, codes.NotFound) // never activated
		_, err = e.patientJwt("unknown", "anything")
		wantCode(t, err, codes.NotFound)

		v1, err := e.validatePatient(act.GetActivationCode(), act.GetOtp())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.patientJwt("p", v1.GetAuthorisationCode()); err != nil {
			t.Fatal(err)
		}
		_, err = e.patientJwt("p", v1.GetAuthorisationCode()+"x")
		wantCode(t, err, codes.NotFound)
		_, err = e.patientJwt("other", v1.GetAuthorisationCode())
		wantCode(t, err, codes.NotFound)

		// A newer activation makes the older code fail.
		act2 := e.createPatient("p")
		v2, err := e.validatePatient(act2.GetActivationCode(), act2.GetOtp())
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.patientJwt("p", v1.GetAuthorisationCode())
		wantCode(t, err, codes.NotFound)
		if _, err := e.patientJwt("p", v2.GetAuthorisationCode()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestConfiguredLengths(t *testing.T) {
	forEachBackend(t, options{cfg: func(c *activationConfig) {
		c.OTPLength, c.ActivationCodeLength, c.DeviceCodeLength, c.ExpiryDays, c.MaxAttempts = 6, 12, 7, 1, 2
	}}, func(t *testing.T, e *env) {
		act := e.createPatient("p")
		if len(act.GetOtp()) != 6 || len(act.GetActivationCode()) != 12 {
			t.Fatalf("lengths: %q %q", act.GetOtp(), act.GetActivationCode())
		}
		if want := apitime.Format(apitime.EndOfNthDay(e.clock.Now(), 1)); act.GetExpiresAt() != want {
			t.Fatalf("expires_at %q, want %q", act.GetExpiresAt(), want)
		}
		for range 2 {
			_, err := e.validatePatient(act.GetActivationCode(), "zzzzzz")
			wantCode(t, err, codes.NotFound)
		}
		_, err := e.validatePatient(act.GetActivationCode(), act.GetOtp())
		wantCode(t, err, codes.NotFound)
		e.devices.set("d", true)
		if d := e.createDevice("d"); len(d.GetCode()) != 7 {
			t.Fatalf("device code %q", d.GetCode())
		}
	})
}
