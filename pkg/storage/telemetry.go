package storage

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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
// recorded span: statements outside any request (migrations, background
// work) would otherwise each start a trace of their own, and a statement
// in a trace that is not recorded (not sampled, or no exporter) would
// make a span nobody sees.
func startSpan(ctx context.Context, d Dialect, schema, query string) (context.Context, trace.Span) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, nil
	}
	st := statementOf(d, schema, query)
	ctx, span := otel.Tracer(instrumentationName).Start(ctx, st.name,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(st.attrs...))
	return context.WithValue(ctx, dbSpanKey{}, span), span
}

// statement is what a span says about one statement: its name and
// attributes, worked out once per statement text (stores run a fixed set
// of statements).
type statement struct {
	name  string
	attrs []attribute.KeyValue
}

type statementKey struct {
	d             Dialect
	schema, query string
}

// statements caches statementOf; maxStatements bounds it, should a caller
// ever build statement texts on the fly.
var (
	statements    sync.Map // statementKey -> *statement
	statementsLen atomic.Int64
)

const maxStatements = 1000

func statementOf(d Dialect, schema, query string) *statement {
	k := statementKey{d, schema, query}
	if st, ok := statements.Load(k); ok {
		return st.(*statement)
	}
	op := operation(query)
	system := "postgresql"
	if d == SQLite {
		system = "sqlite"
	}
	text := query
	if len(text) > maxQueryText {
		text = text[:maxQueryText]
	}
	st := &statement{name: op + " " + schema, attrs: []attribute.KeyValue{
		attribute.String("db.system.name", system),
		attribute.String("db.namespace", schema),
		attribute.String("db.operation.name", op),
		attribute.String("db.query.text", text),
	}}
	if statementsLen.Load() < maxStatements {
		if _, loaded := statements.LoadOrStore(k, st); !loaded {
			statementsLen.Add(1)
		}
	}
	return st
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

// batchKey holds, in a batch's context, the context and time it started.
type batchKey struct{}

type batchStart struct {
	ctx context.Context
	at  time.Time
}

// TraceBatchStart implements pgx.BatchTracer: the statements of a
// pipeline (a transaction's first statement with its BEGIN, deferred
// statements with the COMMIT) are spans too, each from the pipeline's
// start until its result was read.
func (t pgTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx
	}
	return context.WithValue(ctx, batchKey{}, batchStart{ctx: ctx, at: time.Now()})
}

// TraceBatchQuery implements pgx.BatchTracer.
func (t pgTracer) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	b, ok := ctx.Value(batchKey{}).(batchStart)
	if !ok {
		return
	}
	st := statementOf(Postgres, t.schema, d.SQL)
	_, span := otel.Tracer(instrumentationName).Start(b.ctx, st.name, trace.WithTimestamp(b.at),
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(st.attrs...))
	endSpan(span, d.Err)
}

// TraceBatchEnd implements pgx.BatchTracer.
func (t pgTracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

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
