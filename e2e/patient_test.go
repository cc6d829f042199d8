package e2e

import (
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/apitime"
)

var (
	activationCodeRe = regexp.MustCompile(`^[A-Z0-9]{30}$`)
	otpRe            = regexp.MustCompile(`^[a-hjkmnp-z2-9]{4}$`)
	timestampRe      = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
)

type activation struct{ OTP, Code, ExpiresAt string }

func createPatientActivation(t *testing.T, s *Suite, token, patient string) activation {
	t.Helper()
	m := Expect(t, s.Do("POST", "/dhos/v1/patient/"+patient+"/activation", token, nil), 200).JSON(t)
	a := activation{OTP: m["otp"].(string), Code: m["activation_code"].(string), ExpiresAt: m["expires_at"].(string)}
	s.Secret(a.Code)
	return a
}

func validatePatient(s *Suite, code, otp string) Response {
	return s.Do("POST", "/dhos/v1/activation/"+code, "", map[string]any{"otp": otp})
}

func patientJWT(t *testing.T, s *Suite, patient, authCode string) Response {
	t.Helper()
	return s.Do("GET", "/dhos/v1/patient/"+patient+"/jwt", "", nil, "x-authorisation-code", authCode)
}

func wrongOTP(otp string) string {
	if otp == "aaaa" {
		return "bbbb"
	}
	return "aaaa"
}

func patientActivation(t *testing.T, s *Suite) {
	admin := s.AdminToken(t)
	patient := Unique("patient")

	a := createPatientActivation(t, s, admin, patient)
	if !activationCodeRe.MatchString(a.Code) || !otpRe.MatchString(a.OTP) {
		t.Fatalf("activation code %q / otp %q do not follow the contract", a.Code, a.OTP)
	}
	if want := apitime.Format(apitime.EndOfNthDay(time.Now(), 5)); a.ExpiresAt != want {
		t.Fatalf("expires_at %s, want %s", a.ExpiresAt, want)
	}

	// Reissue: same code, new OTP, the old OTP no longer works.
	b := createPatientActivation(t, s, admin, patient)
	if b.Code != a.Code {
		t.Fatal("reissue changed the activation code")
	}
	if b.OTP == a.OTP {
		// 1 in ~900k: reissue once more rather than flake.
		b = createPatientActivation(t, s, admin, patient)
	}
	Expect(t, validatePatient(s, a.Code, a.OTP), 404)

	// Nothing completed yet: the list is an empty array.
	if l := Expect(t, s.Do("GET", "/dhos/v1/patient/"+patient+"/activation", admin, nil), 200).List(t); len(l) != 0 {
		t.Fatalf("uncompleted activations listed: %v", l)
	}

	// Validate with the OTP in upper case (improvement: case-insensitive).
	m := Expect(t, validatePatient(s, b.Code, strings.ToUpper(b.OTP)), 200).JSON(t)
	auth, _ := m["authorisation_code"].(string)
	if auth == "" || m["patient_id"] != patient || m["device_id"] != nil {
		t.Fatalf("validate response %v", m)
	}
	s.Secret(auth)
	Expect(t, validatePatient(s, b.Code, b.OTP), 404) // single use

	// JWT.
	r := Expect(t, patientJWT(t, s, patient, auth), 200).JSON(t)
	jwt := r["jwt"].(string)
	s.Secret(jwt)
	c := Claims(t, jwt)
	md, _ := c["metadata"].(map[string]any)
	if md["patient_id"] != patient || c["sub"] != patient {
		t.Fatalf("patient claims %v", c)
	}
	for _, k := range []string{"iss", "aud", "exp", "iat", "jti", "sub", "scope", "metadata"} {
		if _, ok := c[k]; !ok {
			t.Fatalf("claim %s missing: %v", k, c)
		}
	}
	if _, ok := c["aud"].(string); !ok {
		t.Fatalf("aud %v is not a string", c["aud"])
	}
	if exp, iat := c["exp"].(float64), c["iat"].(float64); exp-iat != 900 {
		t.Fatalf("patient token lifetime %v, want 900", exp-iat)
	}
	if !strings.Contains(c["scope"].(string), "read:gdm_message") {
		t.Fatalf("patient scope %v", c["scope"])
	}
	// The patient token verifies at a patient endpoint.
	Expect(t, s.Do("GET", "/dhos/v1/patient/"+patient+"/security-test", jwt, nil), 200)

	Expect(t, s.Do("GET", "/dhos/v1/patient/"+patient+"/jwt", "", nil), 400)
	Expect(t, patientJWT(t, s, patient, "wrong-code"), 404)
	Expect(t, patientJWT(t, s, Unique("nobody"), auth), 404)

	// List: completed only, newest first, identifier fields.
	l := Expect(t, s.Do("GET", "/dhos/v1/patient/"+patient+"/activation", admin, nil), 200).List(t)
	if len(l) != 1 {
		t.Fatalf("activations %v", l)
	}
	for _, k := range []string{"activation_completed", "uuid", "created", "created_by", "modified", "modified_by"} {
		if _, ok := l[0][k]; !ok {
			t.Fatalf("activation lacks %s: %v", k, l[0])
		}
	}
	if !timestampRe.MatchString(l[0]["activation_completed"].(string)) || !timestampRe.MatchString(l[0]["created"].(string)) {
		t.Fatalf("timestamps not in the contract's format: %v", l[0])
	}

	// A second activation makes the older authorisation code fail.
	c2 := createPatientActivation(t, s, admin, patient)
	if c2.Code == a.Code {
		t.Fatal("a completed activation was reissued")
	}
	m = Expect(t, validatePatient(s, c2.Code, c2.OTP), 200).JSON(t)
	auth2 := m["authorisation_code"].(string)
	s.Secret(auth2)
	Expect(t, patientJWT(t, s, patient, auth), 404)
	Expect(t, patientJWT(t, s, patient, auth2), 200)
	l = Expect(t, s.Do("GET", "/dhos/v1/patient/"+patient+"/activation", admin, nil), 200).List(t)
	if len(l) != 2 || l[0]["activation_completed"].(string) < l[1]["activation_completed"].(string) {
		t.Fatalf("list not newest first: %v", l)
	}
	if l := Expect(t, s.Do("GET", "/dhos/v1/patient/"+Unique("nobody")+"/activation", admin, nil), 200).List(t); len(l) != 0 {
		t.Fatalf("unknown patient: %v", l)
	}
}

func patientValidationErrors(t *testing.T, s *Suite) {
	a := createPatientActivation(t, s, s.AdminToken(t), Unique("patient"))
	path := "/dhos/v1/activation/" + a.Code
	Expect(t, s.Do("POST", path, "", nil), 400)                                  // no body
	Expect(t, s.Do("POST", path, "", map[string]any{}), 400)                     // no otp
	Expect(t, s.Do("POST", path, "", map[string]any{"otp": 1234}), 400)          // wrong type
	Expect(t, s.Do("POST", path, "", map[string]any{"otp": "x", "pin": 1}), 400) // unknown field
	Expect(t, s.Do("POST", path, "", `{"otp": "ab`), 400)                        // broken JSON
	Expect(t, s.Do("POST", path+"?type=bogus", "", map[string]any{"otp": a.OTP}), 400)
	Expect(t, s.Do("POST", "/dhos/v1/activation/NOSUCHCODE", "", map[string]any{"otp": a.OTP}), 404)
	// Identifier fields are ignored, not refused.
	Expect(t, s.Do("POST", path, "", map[string]any{"otp": wrongOTP(a.OTP), "uuid": "x", "created": "y", "created_by": "z", "modified": 1, "modified_by": nil}), 404)
	// type=gdm is a patient validation too.
	Expect(t, s.Do("POST", path+"?type=gdm", "", map[string]any{"otp": a.OTP}), 200)
}

func patientLockout(t *testing.T, s *Suite) {
	a := createPatientActivation(t, s, s.AdminToken(t), Unique("patient"))
	for i := 0; i < 10; i++ {
		Expect(t, validatePatient(s, a.Code, wrongOTP(a.OTP)), 404)
	}
	Expect(t, validatePatient(s, a.Code, a.OTP), 404)
}

func patientConcurrency(t *testing.T, s *Suite) {
	admin := s.AdminToken(t)
	a := createPatientActivation(t, s, admin, Unique("patient"))
	codes := parallel(40, func() int { return validatePatient(s, a.Code, a.OTP).Status })
	if codes[200] != 1 || codes[404] != 39 {
		t.Fatalf("40 concurrent validations: %v, want one 200 and 39 404", codes)
	}

	b := createPatientActivation(t, s, admin, Unique("patient"))
	codes = parallel(40, func() int { return validatePatient(s, b.Code, wrongOTP(b.OTP)).Status })
	if codes[404] != 40 {
		t.Fatalf("40 concurrent wrong OTPs: %v", codes)
	}
	Expect(t, validatePatient(s, b.Code, b.OTP), 404)
}

// parallel runs fn n times at once and counts the results.
func parallel(n int, fn func() int) map[int]int {
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := map[int]int{}
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c := fn()
			mu.Lock()
			out[c]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return out
}
