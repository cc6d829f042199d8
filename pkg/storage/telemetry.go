package storage

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// instrumentationName is the scope of the storage spans and metrics.
const instrumentationName = "github.com/dhosauth/dhosauth/pkg/storage"

// maxQueryText bounds the statement recorded on a span. Statements carry
// $n placeholders, never the values: arguments are not recorded.
const maxQueryText = 2000

// dbSpanKey marks a context in which this package started a span, so that
// the end of a query ends that span and never the caller's.
type dbSpanKey struct{}

// startSpan starts a client span for one statement, but only inside a
// trace: statements outside any request (migrations, background work)
// would otherwise each start a trace of their own.
func startSpan(ctx context.Context, d Dialect, schema, query string) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, nil
	}
	op := operation(query)
	system := "postgresql"
	if d == SQLite {
		system = "sqlite"
	}
	if len(query) > maxQueryText {
		query = query[:maxQueryText]
	}
	ctx, span := otel.Tracer(instrumentationName).Start(ctx, op+" "+schema,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("db.system.name", system),
			attribute.String("db.namespace", schema),
			attribute.String("db.operation.name", op),
			attribute.String("db.query.text", query),
		))
	return context.WithValue(ctx, dbSpanKey{}, span), span
}

// endSpan ends a span started by startSpan; "no rows" is not an error.
func endSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil && !errors.Is(err, pgx.ErrNoRows) && !errors.Is(err, sql.ErrNoRows) && !errors.Is(err, ErrNotFound) {
		span.RecordError(err)
		span.SetStatus(codes.Error, "database error")
	}
	span.End()
}

// operation is the statement's first keyword, upper-cased ("SELECT").
func operation(q string) string {
	q = strings.TrimLeftFunc(q, unicode.IsSpace)
	end := strings.IndexFunc(q, func(r rune) bool { return !unicode.IsLetter(r) })
	if end < 0 {
		end = len(q)
	}
	if end == 0 {
		return "QUERY"
	}
	return strings.ToUpper(q[:end])
}

// pgTracer is pgx's query tracer: one span per statement inside a trace.
type pgTracer struct{ schema string }

// TraceQueryStart implements pgx.QueryTracer.
func (t pgTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	ctx, _ = startSpan(ctx, Postgres, t.schema, d.SQL)
	return ctx
}

// TraceQueryEnd implements pgx.QueryTracer.
func (t pgTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	if span, ok := ctx.Value(dbSpanKey{}).(trace.Span); ok {
		endSpan(span, d.Err)
	}
}

// poolStats is what both backends report about their connection pool.
type poolStats struct {
	used, idle, max int64
	// acquires is -1 when the backend does not count them.
	acquires, waits int64
	waitSeconds     float64
}

// poolInstruments are the pool metrics, created once per process.
type poolInstruments struct {
	once            sync.Once
	count, max      metric.Int64ObservableUpDownCounter
	acquires, waits metric.Int64ObservableCounter
	waitTime        metric.Float64ObservableCounter
	err             error
}

var poolMetrics poolInstruments

// registerPoolMetrics reports the pool's use through the global meter
// provider, labelled with the pool's name (the service's schema). The
// returned function stops reporting.
func registerPoolMetrics(name string, stats func() poolStats) func() {
	m := otel.Meter(instrumentationName)
	pm := &poolMetrics
	pm.once.Do(func() {
		var errs [5]error
		pm.count, errs[0] = m.Int64ObservableUpDownCounter("db.client.connection.count",
			metric.WithDescription("Connections in the pool, by state (used, idle)."), metric.WithUnit("{connection}"))
		pm.max, errs[1] = m.Int64ObservableUpDownCounter("db.client.connection.max",
			metric.WithDescription("Largest number of connections the pool may open."), metric.WithUnit("{connection}"))
		pm.acquires, errs[2] = m.Int64ObservableCounter("dhosauth.db.pool.acquires",
			metric.WithDescription("Connections taken from the pool."), metric.WithUnit("{acquire}"))
		pm.waits, errs[3] = m.Int64ObservableCounter("dhosauth.db.pool.waits",
			metric.WithDescription("Acquires that had to wait for a connection."), metric.WithUnit("{acquire}"))
		pm.waitTime, errs[4] = m.Float64ObservableCounter("dhosauth.db.pool.wait_time",
			metric.WithDescription("Time spent waiting for a connection."), metric.WithUnit("s"))
		pm.err = errors.Join(errs[:]...)
	})
	if pm.err != nil {
		otel.Handle(pm.err)
		return func() {}
	}
	pool := attribute.String("db.client.connection.pool.name", name)
	used := metric.WithAttributes(pool, attribute.String("db.client.connection.state", "used"))
	idle := metric.WithAttributes(pool, attribute.String("db.client.connection.state", "idle"))
	only := metric.WithAttributes(pool)
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := stats()
		o.ObserveInt64(pm.count, s.used, used)
		o.ObserveInt64(pm.count, s.idle, idle)
		o.ObserveInt64(pm.max, s.max, only)
		if s.acquires >= 0 {
			o.ObserveInt64(pm.acquires, s.acquires, only)
		}
		o.ObserveInt64(pm.waits, s.waits, only)
		o.ObserveFloat64(pm.waitTime, s.waitSeconds, only)
		return nil
	}, pm.count, pm.max, pm.acquires, pm.waits, pm.waitTime)
	if err != nil {
		otel.Handle(err)
		return func() {}
	}
	return func() { _ = reg.Unregister() }
}

func pgxPoolStats(p *pgxpool.Pool) func() poolStats {
	return func() poolStats {
		s := p.Stat()
		return poolStats{
			used:        int64(s.AcquiredConns()),
			idle:        int64(s.IdleConns()),
			max:         int64(s.MaxConns()),
			acquires:    s.AcquireCount(),
			waits:       s.EmptyAcquireCount(),
			waitSeconds: s.EmptyAcquireWaitTime().Seconds(),
		}
	}
}

func sqlPoolStats(db *sql.DB) func() poolStats {
	return func() poolStats {
		s := db.Stats()
		return poolStats{
			used:        int64(s.InUse),
			idle:        int64(s.Idle),
			max:         int64(s.MaxOpenConnections),
			acquires:    -1,
			waits:       s.WaitCount,
			waitSeconds: s.WaitDuration.Seconds(),
		}
	}
}
