package rest_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dhosauth/dhosauth/gateway/rest"
	"github.com/dhosauth/dhosauth/pkg/config"
	"github.com/dhosauth/dhosauth/pkg/service"
	"github.com/dhosauth/dhosauth/pkg/telemetry"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// The edge continues the caller's trace, names its span and metrics by
// the route template (never the path, which here carries an activation
// code), returns its traceparent and quotes the trace id in error bodies.
func TestEdgeTelemetry(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Service: "gateway", SpanExporter: spans, Lookup: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	// Nothing listens: the service call fails fast with UNAVAILABLE.
	conns, err := rest.Dial(service.Addresses{Activation: "127.0.0.1:1", Device: "127.0.0.1:1", Token: "127.0.0.1:1", Session: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer conns.Close()
	h, err := rest.Handler(context.Background(), rest.Options{Conns: conns, Environment: config.Test})
	if err != nil {
		t.Fatal(err)
	}
	const secretCode = "SECRETCODE0123456789ABCDEFGHIJ"
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req := httptest.NewRequest(http.MethodPost, "/dhos/v1/activation/"+secretCode+"?type=send_entry", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	body := w.Body.String()
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(body, `"trace_id":"`+traceID+`"`) {
		t.Errorf("answer %d %s: want 503 quoting the trace", w.Code, body)
	}
	if tp := w.Header().Get("Traceparent"); !strings.HasPrefix(tp, "00-"+traceID+"-") || strings.Contains(tp, "00f067aa0ba902b7") {
		t.Errorf("response traceparent %q: want the edge's own span in the caller's trace", tp)
	}

	if err := tel.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var server, client bool
	for _, s := range spans.GetSpans() {
		if s.SpanContext.TraceID().String() != traceID {
			t.Errorf("span %q in trace %s", s.Name, s.SpanContext.TraceID())
		}
		text := s.Name
		for _, a := range s.Attributes {
			text += " " + string(a.Key) + "=" + a.Value.String()
			if a.Key == "url.path" || a.Key == "url.query" || a.Key == "url.full" {
				t.Errorf("span %q records %s", s.Name, a.Key)
			}
		}
		if strings.Contains(text, secretCode) {
			t.Errorf("span %q holds the activation code: %s", s.Name, text)
		}
		switch s.Name {
		case "POST /dhos/v1/activation/{activation_code}":
			server = strings.Contains(text, "http.route=/dhos/v1/activation/{activation_code}") && strings.Contains(text, "http.response.status_code=503")
		case "dhos.activation.v1.ActivationService/ValidateActivation":
			client = true
		}
	}
	if !server || !client {
		for _, s := range spans.GetSpans() {
			t.Logf("span %q %v", s.Name, s.Attributes)
		}
		t.Errorf("server span by route %v, client span for the RPC %v", server, client)
	}

	m := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(m, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	metrics, _ := io.ReadAll(m.Body)
	if !strings.Contains(string(metrics), `http_route="/dhos/v1/activation/{activation_code}"`) {
		t.Error("no metrics for the route")
	}
	if strings.Contains(string(metrics), secretCode) {
		t.Error("the metrics hold the activation code")
	}
}
