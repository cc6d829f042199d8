package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// Setup installs the providers and the propagator: a traceparent is
// honoured, spans reach the exporter with the service's name, and the
// suite's counters and any instrument appear on the metrics handler.
func TestSetup(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tel, err := Setup(context.Background(), Options{
		Service:      "device",
		Version:      "1.2.3",
		Lookup:       lookup(map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test"}),
		SpanExporter: spans,
	})
	if err != nil {
		t.Fatal(err)
	}
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx := otel.GetTextMapPropagator().Extract(context.Background(), propagation.HeaderCarrier(http.Header{"Traceparent": {tp}}))
	ctx, span := otel.Tracer("test").Start(ctx, "work")
	if got := span.SpanContext().TraceID().String(); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("trace id %s: the traceparent was not honoured", got)
	}
	span.End()

	TokenIssued(ctx, "patient")
	TokenIssued(ctx, "patient")
	ActivationFailed(ctx, "patient", "wrong_otp")
	RateLimited(ctx, "verify_token")
	c, _ := Meter().Int64Counter("rpc.client.test")
	c.Add(ctx, 1, metric.WithAttributes(attribute.String("rpc.method", "m"), attribute.String("server.address", "10.1.2.3")))

	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`dhosauth_tokens_issued_total{kind="patient"} 2`,
		`dhosauth_activation_failures_total{kind="patient",reason="wrong_otp"} 1`,
		`dhosauth_ratelimit_refusals_total{limit="verify_token"} 1`,
		`rpc_client_test_total{rpc_method="m"} 1`,
		`go_goroutines`,
		`service_name="device"`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(string(body), "10.1.2.3") {
		t.Error("a client metric carries the peer's address")
	}

	// (The in-memory exporter forgets its spans on shutdown.)
	if err := tel.tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := spans.GetSpans()
	defer func() {
		if err := tel.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	if len(got) != 1 || got[0].Name != "work" {
		t.Fatalf("exported %v", got)
	}
	res := map[string]string{}
	for _, kv := range got[0].Resource.Attributes() {
		res[string(kv.Key)] = kv.Value.String()
	}
	if res["service.name"] != "device" || res["service.version"] != "1.2.3" || res["deployment.environment"] != "test" {
		t.Errorf("resource %v", res)
	}
	if !trace.SpanContextFromContext(ctx).IsValid() {
		t.Error("no span context")
	}
}

// The variables choose the exporter; what they cannot mean is an error.
func TestExporterChoice(t *testing.T) {
	cases := []struct {
		env     map[string]string
		want    string
		wantErr string
	}{
		{env: map[string]string{}, want: "none"},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, want: "otlp http/protobuf http://collector:4318"},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://user:pw@collector:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, want: "otlp grpc http://user:xxxxx@collector:4317"},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, want: "otlp http/protobuf default endpoint"},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, want: "none"},
		{env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, want: "none (OTEL_SDK_DISABLED)"},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, wantErr: "OTEL_TRACES_EXPORTER"},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, wantErr: "OTEL_EXPORTER_OTLP_PROTOCOL"},
	}
	for _, c := range cases {
		get := func(k string) string { return c.env[k] }
		exp, desc, err := spanExporter(context.Background(), Options{}, get)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%v: err %v, want %s", c.env, err, c.wantErr)
			}
			continue
		}
		if err != nil || desc != c.want {
			t.Errorf("%v: %q, %v; want %q", c.env, desc, err, c.want)
		}
		if exp != nil {
			_ = exp.Shutdown(context.Background())
		}
	}
	if _, err := propagators("b3"); err == nil {
		t.Error("OTEL_PROPAGATORS=b3 accepted")
	}
}
