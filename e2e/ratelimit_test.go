package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// doAt sends a request to the edge at base; headers are name, value pairs.
func doAt(base, method, path, body string, headers ...string) Response {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return Response{Body: []byte(err.Error())}
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Response{Body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Body: b, Header: resp.Header}
}

// expectLimited fails unless r is a 429 with the contract's body and a
// Retry-After of a positive number of seconds at most max.
func expectLimited(t *testing.T, r Response, max int) {
	t.Helper()
	Expect(t, r, 429)
	n, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || n <= 0 || n > max {
		t.Fatalf("Retry-After %q, want 1..%d seconds", r.Header.Get("Retry-After"), max)
	}
}

// TestRateLimitsAcrossEdges runs two edge replicas in front of one
// activation service with small limits. Failures count once whichever
// edge they come through (the counters live in the activation store), the
// next is a 429 with Retry-After on either edge; X-Forwarded-For counts
// only through the edge that trusts its proxy; the budget of failed
// device-code guesses is shared by every address; failures for one
// patient are limited whatever address they come from; and the refusals
// are counted on the activation service's /metrics.
func TestRateLimitsAcrossEdges(t *testing.T) {
	forEachBackend(t, map[string]string{
		"RATE_LIMIT_PER_ADDRESS":         "5/15m",
		"RATE_LIMIT_PER_PRINCIPAL":       "3/15m",
		"RATE_LIMIT_DEVICE_CODE_GUESSES": "8/1h",
	}, func(t *testing.T, s *Suite) {
		a := s.URL
		b := s.StartEdge("gateway-2", map[string]string{"TRUSTED_PROXIES": "127.0.0.1"})
		admin := s.AdminToken(t)
		patient := Unique("patient")
		act := createPatientActivation(t, s, admin, patient)

		// Per address: 127.0.0.1 through both edges, five failures.
		for i := range 5 {
			edge := []string{a, b}[i%2]
			Expect(t, doAt(edge, "POST", "/dhos/v1/activation/WRONGCODE"+strconv.Itoa(i), `{"otp":"abcd"}`), 404)
		}
		expectLimited(t, doAt(a, "POST", "/dhos/v1/activation/"+act.Code, `{"otp":"`+act.OTP+`"}`), 30*60)
		expectLimited(t, doAt(b, "POST", "/dhos/v1/activation/"+act.Code, `{"otp":"`+act.OTP+`"}`), 30*60)
		// X-Forwarded-For from a client straight to edge A is ignored ...
		expectLimited(t, doAt(a, "POST", "/dhos/v1/activation/X", `{"otp":"abcd"}`, "X-Forwarded-For", "198.51.100.1"), 30*60)
		// ... but edge B trusts its proxy (127.0.0.1): the client is
		// another address, with its own count.
		r := doAt(b, "POST", "/dhos/v1/activation/"+act.Code, `{"otp":"`+act.OTP+`"}`, "X-Forwarded-For", "198.51.100.1")
		Expect(t, r, 200)
		s.Secret(r.JSON(t)["authorisation_code"].(string))

		// The device-code budget: eight failures from eight addresses,
		// then every address is refused.
		for i := range 8 {
			Expect(t, doAt(b, "POST", fmt.Sprintf("/dhos/v1/activation/00000%04d?type=send_entry", i), "",
				"X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1)), 404)
		}
		expectLimited(t, doAt(b, "POST", "/dhos/v1/activation/000001234?type=send_entry", "", "X-Forwarded-For", "203.0.113.99"), 2*3600)

		// Per patient: three wrong authorisation codes from three
		// addresses, then even a fourth address is refused.
		for i := range 3 {
			Expect(t, doAt(b, "GET", "/dhos/v1/patient/"+patient+"/jwt", "", "x-authorisation-code", "wrong", "X-Forwarded-For", fmt.Sprintf("192.0.2.%d", i+1)), 404)
		}
		expectLimited(t, doAt(b, "GET", "/dhos/v1/patient/"+patient+"/jwt", "", "x-authorisation-code", "wrong", "X-Forwarded-For", "192.0.2.200"), 30*60)

		metrics := string(s.OpsGet("activation", "/metrics").Body)
		for _, limit := range []string{"client_address", "device_code_guesses", "patient_jwt"} {
			if !strings.Contains(metrics, `dhosauth_ratelimit_refusals_total{limit="`+limit+`"`) {
				t.Errorf("no refusals counted for limit %s in /metrics", limit)
			}
		}
	})
}
