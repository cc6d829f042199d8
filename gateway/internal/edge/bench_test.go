package edge

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkPatientFlow is the edge's share of the patient flow: the three
// REST calls through the whole handler (middleware, telemetry, the
// grpc-gateway mux, a gRPC call to a fake activation service). It measures
// the edge's per-request work and allocations (go test -bench Patient
// -benchmem ./gateway/internal/edge); make bench measures the real suite.
func BenchmarkPatientFlow(b *testing.B) {
	rec := &recorder{}
	conns, err := Dial(startFakes(b, rec))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conns.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	h, err := Handler(ctx, Options{Conns: conns})
	if err != nil {
		b.Fatal(err)
	}
	call := func(method, path, body string, hdr ...string) {
		var r *http.Request
		if body != "" {
			r = httptest.NewRequest(method, path, strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
		} else {
			r = httptest.NewRequest(method, path, nil)
		}
		r.Header.Set("User-Agent", "okhttp/4.12.0")
		r.Header.Set("Accept", "application/json")
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		call(http.MethodPost, "/dhos/v1/patient/p1/activation", "", "Authorization", "Bearer admin-token")
		call(http.MethodPost, "/dhos/v1/activation/ABCDEFGHIJKLMNOPQRSTUVWXYZ0123", `{"otp":"abcd"}`)
		call(http.MethodGet, "/dhos/v1/patient/p1/jwt", "", "X-Authorisation-Code", "AUTH")
	}
}
