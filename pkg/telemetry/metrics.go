package telemetry

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// MeterName is the instrumentation scope of the suite's own metrics.
const MeterName = "github.com/dhosauth/dhosauth"

// Names of the suite's own metrics (Prometheus adds _total to counters
// and turns dots into underscores).
const (
	MetricTokensIssued       = "dhosauth.tokens.issued"
	MetricActivationFailures = "dhosauth.activation.failures"
	MetricRateLimitRefusals  = "dhosauth.ratelimit.refusals"
)

// Meter returns the suite's meter from the global provider.
func Meter() metric.Meter { return otel.Meter(MeterName) }

// suiteCounters are the suite's own counters.
type suiteCounters struct {
	once        sync.Once
	tokens      metric.Int64Counter
	activations metric.Int64Counter
	rateLimited metric.Int64Counter
}

var counters suiteCounters

// counter creates the suite's counters once, on the global meter provider
// (which forwards to the SDK once Setup has run).
func counter() *suiteCounters {
	counters.once.Do(func() {
		m := Meter()
		// Errors here only come from invalid names, which are constants.
		counters.tokens, _ = m.Int64Counter(MetricTokensIssued,
			metric.WithDescription("Tokens issued, by kind (patient, device, clinician, system)."),
			metric.WithUnit("{token}"))
		counters.activations, _ = m.Int64Counter(MetricActivationFailures,
			metric.WithDescription("Refused activation attempts, by kind (patient, device) and reason."),
			metric.WithUnit("{attempt}"))
		counters.rateLimited, _ = m.Int64Counter(MetricRateLimitRefusals,
			metric.WithDescription("Requests refused by a rate limit, by limit."),
			metric.WithUnit("{request}"))
	})
	return &counters
}

// TokenIssued counts one token issued; kind is patient, device, clinician
// or system.
func TokenIssued(ctx context.Context, kind string) {
	counter().tokens.Add(ctx, 1, metric.WithAttributes(attribute.String("kind", kind)))
}

// ActivationFailed counts one refused activation attempt; kind is patient
// or device, and reason a short constant (for example not_found, expired,
// locked, wrong_otp). Never pass anything the client sent.
func ActivationFailed(ctx context.Context, kind, reason string) {
	counter().activations.Add(ctx, 1, metric.WithAttributes(attribute.String("kind", kind), attribute.String("reason", reason)))
}

// RateLimited counts one request refused by the named rate limit (a
// constant such as "verify_token" or "activation", never a caller's id).
func RateLimited(ctx context.Context, limit string) {
	counter().rateLimited.Add(ctx, 1, metric.WithAttributes(attribute.String("limit", limit)))
}
