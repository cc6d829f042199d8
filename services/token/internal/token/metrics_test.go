package token_test

import (
	"context"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/services/token/internal/token"
	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestKeyMetrics: key age and time to expiry, and the configured secrets'
// time to expiry, are gauges read at collection.
func TestKeyMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	prev := otel.GetMeterProvider()
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	t.Cleanup(func() { otel.SetMeterProvider(prev) })

	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	keys := []token.KeyInfo{
		{ID: "old", Alg: "ES256", Source: token.SourceStore, State: token.StateRetired, CreatedAt: now.Add(-40 * 24 * time.Hour),
			ActivatesAt: now.Add(-40 * 24 * time.Hour), RetiresAt: now.Add(-time.Hour), RemovedAt: now.Add(23 * time.Hour)},
		{ID: "cur", Alg: "ES256", Source: token.SourceStore, State: token.StateActive, CreatedAt: now.Add(-2 * time.Hour), ActivatesAt: now.Add(-time.Hour)},
	}
	unregister, err := token.KeyMetrics{
		Keys:           func() []token.KeyInfo { return keys },
		Secrets:        []token.Expiring{{Name: "HS_KEY", ExpiresAt: now.Add(10 * 24 * time.Hour)}},
		RotationPeriod: 30 * 24 * time.Hour,
		Now:            func() time.Time { return now },
	}.Register()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unregister() }()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			g, ok := m.Data.(metricdata.Gauge[float64])
			if !ok {
				continue
			}
			for _, dp := range g.DataPoints {
				kid, _ := dp.Attributes.Value("kid")
				setting, _ := dp.Attributes.Value("setting")
				got[m.Name+"/"+kid.AsString()+setting.AsString()] = dp.Value
			}
		}
	}
	want := map[string]float64{
		token.MetricKeyAge + "/cur":          2 * 3600,
		token.MetricKeyTimeToExpiry + "/cur": (30*24 - 1) * 3600,
		token.MetricKeyTimeToExpiry + "/old": 23 * 3600,
		token.MetricSecretExpiry + "/HS_KEY": 10 * 24 * 3600,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}
