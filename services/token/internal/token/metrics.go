package token

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// MeterName is the instrumentation scope of the token service's metrics.
const MeterName = "dhosauth/token"

// Names of the key and secret gauges (Prometheus turns dots into
// underscores and adds the unit: dhosauth_token_signing_key_age_seconds).
const (
	MetricKeyAge          = "dhosauth.token.signing_key.age"
	MetricKeyTimeToExpiry = "dhosauth.token.signing_key.time_to_expiry"
	MetricSecretExpiry    = "dhosauth.token.secret.time_to_expiry"
)

// KeyMetrics describes the keys as gauges, read when metrics are
// collected:
//   - signing_key.age: seconds since the key was made (managed keys);
//   - signing_key.time_to_expiry: seconds until the key stops doing its job:
//     a next or active key until it retires (its scheduled retirement
//     while no successor is published), a retired key until it leaves
//     the key set;
//   - secret.time_to_expiry: seconds until a configured secret's
//     *_EXPIRES_AT (negative once past).
//
// Each key gauge carries kid, alg, state and source.
type KeyMetrics struct {
	Keys           func() []KeyInfo
	Secrets        []Expiring
	RotationPeriod time.Duration
	Now            func() time.Time
}

// Register creates the gauges on the global meter provider (whatever
// exporter the process set up) and returns a function that removes them.
func (m KeyMetrics) Register() (func() error, error) {
	if m.Now == nil {
		m.Now = time.Now
	}
	meter := otel.Meter(MeterName)
	age, err := meter.Float64ObservableGauge(MetricKeyAge, metric.WithUnit("s"),
		metric.WithDescription("Age of each signing key, in seconds since it was made."))
	if err != nil {
		return nil, err
	}
	ttl, err := meter.Float64ObservableGauge(MetricKeyTimeToExpiry, metric.WithUnit("s"),
		metric.WithDescription("Seconds until each signing key stops signing (next, active) or leaves the key set (retired)."))
	if err != nil {
		return nil, err
	}
	secret, err := meter.Float64ObservableGauge(MetricSecretExpiry, metric.WithUnit("s"),
		metric.WithDescription("Seconds until a configured key or secret expires (*_EXPIRES_AT); negative once expired."))
	if err != nil {
		return nil, err
	}
	reg, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		now := m.Now()
		for _, k := range m.Keys() {
			attrs := metric.WithAttributes(
				attribute.String("kid", k.ID), attribute.String("alg", k.Alg),
				attribute.String("state", string(k.State)), attribute.String("source", k.Source))
			if !k.CreatedAt.IsZero() {
				o.ObserveFloat64(age, now.Sub(k.CreatedAt).Seconds(), attrs)
			}
			if end := keyEnd(k, m.RotationPeriod); !end.IsZero() {
				o.ObserveFloat64(ttl, end.Sub(now).Seconds(), attrs)
			}
		}
		for _, s := range m.Secrets {
			o.ObserveFloat64(secret, s.ExpiresAt.Sub(now).Seconds(), metric.WithAttributes(attribute.String("setting", s.Name)))
		}
		return nil
	}, age, ttl, secret)
	if err != nil {
		return nil, err
	}
	return reg.Unregister, nil
}

// keyEnd is when a key stops doing its current job (zero: unknown).
func keyEnd(k KeyInfo, rotation time.Duration) time.Time {
	switch {
	case k.State == StateRetired:
		return k.RemovedAt
	case !k.RetiresAt.IsZero():
		return k.RetiresAt
	case k.Source == SourceStore && rotation > 0:
		return k.ActivatesAt.Add(rotation)
	}
	return time.Time{}
}
