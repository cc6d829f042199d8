package telemetry

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The server interceptor continues the caller's trace, names the span
// after the RPC, marks the server's own faults (not the caller's) as
// errors, counts every call by method and code, and leaves health checks
// out.
func TestGRPCServer(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tel, err := Setup(context.Background(), Options{Service: "device", Lookup: lookup(map[string]string{}), SpanExporter: spans})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	g := NewGRPCServer()
	unary := g.Unary()

	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	call := func(method string, err error) {
		t.Helper()
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("traceparent", parent))
		var inner trace.SpanContext
		_, got := unary(ctx, "req", &grpc.UnaryServerInfo{FullMethod: method}, func(ctx context.Context, _ any) (any, error) {
			inner = trace.SpanContextFromContext(ctx)
			return "resp", err
		})
		if got != err {
			t.Errorf("%s: error %v, want %v", method, got, err)
		}
		if !inner.IsValid() && !strings.Contains(method, "Health") {
			t.Errorf("%s: the handler's context has no span", method)
		}
	}
	call("/dhos.device.v1.DeviceService/GetDevice", nil)
	call("/dhos.device.v1.DeviceService/GetDevice", status.Error(grpccodes.NotFound, "no such device"))
	call("/dhos.device.v1.DeviceService/GetDevice", status.Error(grpccodes.Internal, "internal error"))
	call("/grpc.health.v1.Health/Check", nil)

	if err := tel.tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := spans.GetSpans()
	if len(got) != 3 {
		t.Fatalf("%d spans, want 3 (health checks left out)", len(got))
	}
	for i, sp := range got {
		if sp.Name != "dhos.device.v1.DeviceService/GetDevice" || sp.SpanKind != trace.SpanKindServer {
			t.Errorf("span %q kind %v", sp.Name, sp.SpanKind)
		}
		if sp.Parent.SpanID().String() != "00f067aa0ba902b7" || sp.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Errorf("span %d does not continue the caller's trace", i)
		}
		attrs := map[string]string{}
		for _, kv := range sp.Attributes {
			attrs[string(kv.Key)] = kv.Value.String()
		}
		want := []string{"OK", "NOT_FOUND", "INTERNAL"}[i]
		if attrs["rpc.response.status_code"] != want || attrs["rpc.method"] != "dhos.device.v1.DeviceService/GetDevice" {
			t.Errorf("span %d attributes %v", i, attrs)
		}
		if isErr := sp.Status.Code == codes.Error; isErr != (want == "INTERNAL") {
			t.Errorf("span %d (%s): error status %v", i, want, isErr)
		}
	}

	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, code := range []string{"OK", "NOT_FOUND", "INTERNAL"} {
		want := `rpc_server_call_duration_seconds_count{rpc_method="dhos.device.v1.DeviceService/GetDevice",rpc_response_status_code="` + code + `",rpc_system_name="grpc"} 1`
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(string(body), "grpc.health") {
		t.Error("health checks are counted")
	}
}

func BenchmarkGRPCServerUnary(b *testing.B) {
	g := NewGRPCServer()
	unary := g.Unary()
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
	info := &grpc.UnaryServerInfo{FullMethod: "/dhos.token.v1.TokenService/VerifyToken"}
	h := func(context.Context, any) (any, error) { return nil, nil }
	b.ReportAllocs()
	for b.Loop() {
		_, _ = unary(ctx, nil, info, h)
	}
}
