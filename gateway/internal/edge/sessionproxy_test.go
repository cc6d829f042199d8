package edge

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/dhosauth/dhosauth/pkg/ratelimit"
)

// TestSessionProxyPassesTheClientAddress: the session service's sign-in
// endpoints get the client's address in Dhos-Client-Address, decided as
// for the gRPC services (X-Forwarded-For only from a trusted proxy),
// never the value a client sent under that name.
func TestSessionProxyPassesTheClientAddress(t *testing.T) {
	got := make(chan string, 1)
	session := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- strings.Join(r.Header.Values(ratelimit.ClientAddressHeader), "|")
		w.WriteHeader(http.StatusTeapot)
	}))
	t.Cleanup(session.Close)
	addr := strings.TrimPrefix(session.URL, "http://")
	at := func(trusted ...string) *env {
		return newEnv(t, func(o *Options) {
			o.SessionHTTP = addr
			for _, p := range trusted {
				o.TrustedProxies = append(o.TrustedProxies, netip.MustParsePrefix(p))
			}
		})
	}
	check := func(e *env, want string, hdr ...string) {
		t.Helper()
		if r := e.do("POST", "/login/local", "", hdr...); r.status != http.StatusTeapot {
			t.Fatalf("not forwarded: %d %s", r.status, r.body)
		}
		if g := <-got; g != want {
			t.Errorf("%v: the session service got %q, want %q", hdr, g, want)
		}
	}
	direct := at()
	check(direct, "127.0.0.1")
	check(direct, "127.0.0.1", "X-Forwarded-For", "198.51.100.7")
	check(direct, "127.0.0.1", "Dhos-Client-Address", "198.51.100.8")
	behind := at("127.0.0.1/32")
	check(behind, "198.51.100.7", "X-Forwarded-For", "198.51.100.7")
	check(behind, "198.51.100.7", "X-Forwarded-For", "198.51.100.7", "Dhos-Client-Address", "198.51.100.8")
	check(behind, "127.0.0.1")
}
