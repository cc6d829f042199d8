package storage_test

import (
	"context"
	"os"
	"testing"

	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

var (
	spans  = tracetest.NewInMemoryExporter()
	reader = sdkmetric.NewManualReader()
)

func TestMain(m *testing.M) {
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans)))
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	os.Exit(m.Run())
}

// Inside a trace every statement is a child span naming the database and
// the statement, never its arguments; outside a trace nothing is traced.
func TestStatementsAreTraced(t *testing.T) {
	storagetest.Each(t, migrations, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		spans.Reset()
		if _, err := db.Exec(ctx, "INSERT INTO items (id, n, at) VALUES ($1, $2, now_or_param($3))", "x", 1, "SECRET-ARG"); err == nil {
			t.Fatal("a call to an unknown function succeeded")
		}
		if got := len(spans.GetSpans()); got != 0 {
			t.Fatalf("%d spans outside a trace", got)
		}
		ctx, parent := otel.Tracer("test").Start(ctx, "request")
		if err := db.Tx(ctx, func(q storage.Querier) error {
			_, err := q.Exec(ctx, "UPDATE items SET n = n + 1 WHERE id = $1", "SECRET-ARG")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRow(ctx, "SELECT count(*) FROM items WHERE id = $1", "SECRET-ARG").Scan(&n); err != nil {
			t.Fatal(err)
		}
		parent.End()
		want := map[string]bool{"UPDATE": false, "SELECT": false}
		for _, s := range spans.GetSpans() {
			if s.Name == "request" {
				continue
			}
			if s.Parent.TraceID() != parent.SpanContext().TraceID() {
				t.Errorf("span %q is in another trace", s.Name)
			}
			attrs := map[attribute.Key]string{}
			for _, a := range s.Attributes {
				attrs[a.Key] = a.Value.String()
				if a.Value.String() == "SECRET-ARG" {
					t.Errorf("span %q records an argument", s.Name)
				}
			}
			if attrs["db.system.name"] == "" || attrs["db.query.text"] == "" {
				t.Errorf("span %q attributes %v", s.Name, attrs)
			}
			if _, ok := want[attrs["db.operation.name"]]; ok {
				want[attrs["db.operation.name"]] = true
			}
		}
		for op, seen := range want {
			if !seen {
				t.Errorf("no %s span among %d", op, len(spans.GetSpans()))
			}
		}
	})
}

// An open database reports its pool to the meter provider.
func TestPoolMetrics(t *testing.T) {
	storagetest.Each(t, migrations, func(t *testing.T, db storage.DB) {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		found := map[string]bool{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				found[m.Name] = true
			}
		}
		for _, name := range []string{"db.client.connection.count", "db.client.connection.max", "dhosauth.db.pool.waits"} {
			if !found[name] {
				t.Errorf("metric %s missing (have %v)", name, found)
			}
		}
	})
}
