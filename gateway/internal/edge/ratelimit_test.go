package edge

import (
	"net/netip"
	"testing"

	"github.com/dhosauth/dhosauth/pkg/ratelimit"
)

// TestRateLimitedIs429WithRetryAfter: a service's RESOURCE_EXHAUSTED is a
// 429 whose Retry-After is the RetryInfo delay in whole seconds, rounded up.
func TestRateLimitedIs429WithRetryAfter(t *testing.T) {
	e := newEnv(t)
	for delay, want := range map[string]string{"90s": "90", "1500ms": "2", "100ms": "1"} {
		r := e.do("POST", "/dhos/v1/activation/limited-"+delay+"?type=send_entry", "")
		r.wantError(t, 429, "too many failed attempts")
		if got := r.header.Get("Retry-After"); got != want {
			t.Errorf("delay %s: Retry-After %q, want %q", delay, got, want)
		}
	}
	// Without a RetryInfo, a second.
	r := e.do("GET", "/dhos/v1/device/fail-RESOURCE_EXHAUSTED", "")
	if r.status != 429 || r.header.Get("Retry-After") != "1" {
		t.Fatalf("status %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
}

// TestClientAddressPassedToServices: the services learn the client's
// address from the edge alone: the connection's peer, X-Forwarded-For only
// from a trusted proxy, and never a value a client put in a header.
func TestClientAddressPassedToServices(t *testing.T) {
	addrOf := func(e *env) []string {
		t.Helper()
		return e.rec.last(t, "ValidateActivation").MD.Get(ratelimit.ClientAddressMetadata)
	}
	spoof := []string{
		"X-Forwarded-For", "198.51.100.1",
		"Dhos-Client-Address", "198.51.100.2",
		"Grpc-Metadata-Dhos-Client-Address", "198.51.100.3",
	}
	untrusted := newEnv(t)
	untrusted.do("POST", "/dhos/v1/activation/CODE?type=send_entry", "", spoof...)
	if got := addrOf(untrusted); len(got) != 1 || got[0] != "127.0.0.1" {
		t.Fatalf("no trusted proxy: client address %v, want [127.0.0.1]", got)
	}
	trusted := newEnv(t, func(o *Options) { o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} })
	trusted.do("POST", "/dhos/v1/activation/CODE?type=send_entry", "", spoof...)
	if got := addrOf(trusted); len(got) != 1 || got[0] != "198.51.100.1" {
		t.Fatalf("behind a trusted proxy: client address %v, want [198.51.100.1]", got)
	}
	trusted.do("POST", "/dhos/v1/activation/CODE?type=send_entry", "", "X-Forwarded-For", "203.0.113.5, 198.51.100.9")
	if got := addrOf(trusted); len(got) != 1 || got[0] != "198.51.100.9" {
		t.Fatalf("right-most untrusted hop: %v", got)
	}
}
