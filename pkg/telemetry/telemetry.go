package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
)

// Options configure Setup.
type Options struct {
	// Service is service.name unless OTEL_SERVICE_NAME is set (default:
	// the executable's name).
	Service string
	// Version is service.version.
	Version string
	// Lookup reads variables (default os.LookupEnv).
	Lookup func(string) (string, bool)
	// Logger receives the SDK's own errors, such as failed exports.
	Logger *slog.Logger
	// SpanExporter, when set, replaces the exporter the variables choose
	// (tests use an in-memory one).
	SpanExporter sdktrace.SpanExporter
}

// Telemetry is a process's configured OpenTelemetry SDK.
type Telemetry struct {
	tp       *sdktrace.TracerProvider
	mp       *sdkmetric.MeterProvider
	reg      *prometheus.Registry
	exporter string
	service  string
}

// Setup configures tracing and metrics from the OTEL_* variables and
// installs them as the process's global providers and propagator.
// Shutdown flushes what is left.
func Setup(ctx context.Context, o Options) (*Telemetry, error) {
	if o.Lookup == nil {
		o.Lookup = os.LookupEnv
	}
	get := func(name string) string {
		v, _ := o.Lookup(name)
		return strings.TrimSpace(v)
	}
	lg := o.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	name := get("OTEL_SERVICE_NAME")
	if name == "" {
		name = o.Service
	}
	if name == "" {
		name = filepath.Base(os.Args[0])
	}
	prop, err := propagators(get("OTEL_PROPAGATORS"))
	if err != nil {
		return nil, err
	}
	exp, desc, err := spanExporter(ctx, o, get)
	if err != nil {
		return nil, err
	}
	// OTEL_RESOURCE_ATTRIBUTES adds attributes; the service's name and
	// version win.
	attrs, err := resourceAttributes(get("OTEL_RESOURCE_ATTRIBUTES"))
	if err != nil {
		return nil, err
	}
	attrs = append(attrs, semconv.ServiceName(name))
	if o.Version != "" {
		attrs = append(attrs, semconv.ServiceVersion(o.Version))
	}
	res, err := resource.New(ctx, resource.WithTelemetrySDK(), resource.WithAttributes(attrs...))
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}

	topts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if exp != nil {
		topts = append(topts, sdktrace.WithBatcher(exp))
	} else {
		// Nothing would see a recorded span: spans still carry trace and
		// span ids (for logs, error bodies and the traceparent passed on),
		// but record nothing, which spares every request the attributes,
		// events and allocations of spans that go nowhere.
		topts = append(topts, sdktrace.WithSampler(sdktrace.NeverSample()))
	}
	tp := sdktrace.NewTracerProvider(topts...)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	pexp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		_ = tp.Shutdown(ctx)
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	// The peer's address would make a series per pod a client ever called.
	peerless := sdkmetric.NewView(
		sdkmetric.Instrument{Name: "rpc.client.*"},
		sdkmetric.Stream{AttributeFilter: attribute.NewDenyKeysFilter("server.address", "server.port")},
	)
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(pexp), sdkmetric.WithView(peerless))

	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		lg.Warn("telemetry error", "error", err.Error())
	}))
	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	otel.SetTextMapPropagator(prop)
	return &Telemetry{tp: tp, mp: mp, reg: reg, exporter: desc, service: name}, nil
}

// spanExporter chooses the exporter from OTEL_TRACES_EXPORTER and the OTLP
// variables; nil means spans carry ids but are neither recorded nor
// exported.
func spanExporter(ctx context.Context, o Options, get func(string) string) (sdktrace.SpanExporter, string, error) {
	if o.SpanExporter != nil {
		return o.SpanExporter, "custom", nil
	}
	if strings.EqualFold(get("OTEL_SDK_DISABLED"), "true") {
		return nil, "none (OTEL_SDK_DISABLED)", nil
	}
	endpoint := get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if endpoint == "" {
		endpoint = get("OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	kind := strings.ToLower(get("OTEL_TRACES_EXPORTER"))
	if kind == "" {
		kind = "none"
		if endpoint != "" {
			kind = "otlp"
		}
	}
	switch kind {
	case "none":
		return nil, "none", nil
	case "otlp":
	default:
		return nil, "", fmt.Errorf("OTEL_TRACES_EXPORTER: want otlp or none, got %q", kind)
	}
	proto := get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = get("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if proto == "" {
		proto = "http/protobuf"
	}
	where := "default endpoint"
	if endpoint != "" {
		where = redactURL(endpoint)
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	// The exporters read the endpoint, headers, timeout and TLS settings
	// from the same variables themselves.
	switch proto {
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	case "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	default:
		return nil, "", fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL: want grpc or http/protobuf, got %q", proto)
	}
	if err != nil {
		return nil, "", fmt.Errorf("telemetry: OTLP exporter: %w", err)
	}
	return exp, "otlp " + proto + " " + where, nil
}

// propagators builds the propagator from OTEL_PROPAGATORS (default
// tracecontext,baggage).
func propagators(v string) (propagation.TextMapPropagator, error) {
	if v == "" {
		v = "tracecontext,baggage"
	}
	var ps []propagation.TextMapPropagator
	for _, p := range strings.Split(v, ",") {
		switch strings.TrimSpace(strings.ToLower(p)) {
		case "tracecontext":
			ps = append(ps, propagation.TraceContext{})
		case "baggage":
			ps = append(ps, propagation.Baggage{})
		case "none", "":
		default:
			return nil, fmt.Errorf("OTEL_PROPAGATORS: want tracecontext, baggage or none, got %q", p)
		}
	}
	return propagation.NewCompositeTextMapPropagator(ps...), nil
}

// resourceAttributes parses OTEL_RESOURCE_ATTRIBUTES: key=value pairs
// separated by commas, values percent-encoded.
func resourceAttributes(v string) ([]attribute.KeyValue, error) {
	var out []attribute.KeyValue
	for _, pair := range strings.Split(v, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, val, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: want key=value pairs, got %q", pair)
		}
		dec, err := url.PathUnescape(strings.TrimSpace(val))
		if err != nil {
			return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %s: %w", k, err)
		}
		out = append(out, attribute.String(k, dec))
	}
	return out, nil
}

// redactURL drops credentials from an endpoint for the start-up log.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return s
	}
	return u.Redacted()
}

// Describe is what the start-up log says about telemetry.
func (t *Telemetry) Describe() []any {
	return []any{"service_name", t.service, "traces", t.exporter}
}

// MetricsHandler serves the process's metrics in the Prometheus format.
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.reg, promhttp.HandlerOpts{})
}

// ForceFlush exports the spans made so far.
func (t *Telemetry) ForceFlush(ctx context.Context) error { return t.tp.ForceFlush(ctx) }

// Shutdown exports what spans are left and stops the providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	return errors.Join(t.tp.Shutdown(ctx), t.mp.Shutdown(ctx))
}
