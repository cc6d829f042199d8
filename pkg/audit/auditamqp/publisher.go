package auditamqp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Defaults of Options.
const (
	DefaultExchange       = "dhos"
	DefaultRoutingKey     = "dhos.34837004"
	DefaultRetention      = 90 * 24 * time.Hour
	DefaultBatchSize      = 100
	DefaultPollInterval   = 500 * time.Millisecond
	DefaultLeaseTTL       = 15 * time.Second
	DefaultConfirmTimeout = 10 * time.Second
	DefaultMinBackoff     = 250 * time.Millisecond
	DefaultMaxBackoff     = 10 * time.Second
	// PruneInterval is how often published events past the retention
	// period are deleted.
	PruneInterval = time.Hour
)

// MeterName is the OpenTelemetry meter the publisher records with.
const MeterName = "dhosauth/audit"

// Options configure a publisher.
type Options struct {
	// URL is the broker (AMQP_URL). Empty: nothing is published, and the
	// outbox only keeps events for the retention period.
	URL string
	// Exchange is the topic exchange (AUDIT_EXCHANGE), RoutingKey the key
	// every event is published with (AUDIT_ROUTING_KEY).
	Exchange   string
	RoutingKey string
	// Service names the publishing service (metrics, logs, app id).
	Service string
	// DB holds the service's outbox.
	DB     storage.DB
	Logger *slog.Logger
	// Retention is how long events are kept once published
	// (AUDIT_RETENTION).
	Retention time.Duration
	// BatchSize bounds the events published between two outbox reads.
	BatchSize int
	// PollInterval is how often an idle publisher looks for new events.
	PollInterval time.Duration
	// LeaseTTL is how long the publisher lease lasts unless renewed; one
	// replica of a service publishes at a time.
	LeaseTTL time.Duration
	// ConfirmTimeout bounds the wait for the broker's confirms of a batch.
	ConfirmTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between reconnections.
	MinBackoff, MaxBackoff time.Duration
	// Meter records the outbox's depth and age (default
	// otel.Meter(MeterName)).
	Meter metric.Meter
}

func (o *Options) defaults() {
	if o.Exchange == "" {
		o.Exchange = DefaultExchange
	}
	if o.RoutingKey == "" {
		o.RoutingKey = DefaultRoutingKey
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.ConfirmTimeout <= 0 {
		o.ConfirmTimeout = DefaultConfirmTimeout
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(DefaultMaxBackoff, o.MinBackoff)
	}
	if o.Meter == nil {
		o.Meter = otel.Meter(MeterName)
	}
}

// publisher is one Run.
type publisher struct {
	o      Options
	holder string
	log    *slog.Logger

	conn *amqp.Connection
	ch   *amqp.Channel

	// Backlog observed at the last outbox read, for the gauges.
	depth      atomic.Int64
	oldestUS   atomic.Int64
	published  metric.Int64Counter
	failures   metric.Int64Counter
	attrs      metric.MeasurementOption
	lastPrune  time.Time
	brokerDown bool
}

// Run publishes the service's outbox to the broker until ctx is done:
// events in the order they were recorded, each confirmed by the broker
// before it is marked published (at-least-once; the message id is the
// event id). While the broker is unreachable events wait in the outbox and
// the publisher reconnects with backoff. Only the replica holding the
// publisher lease publishes. Published events are pruned after Retention.
// Without a URL, Run only prunes events older than Retention.
func Run(ctx context.Context, o Options) error {
	if o.DB == nil || o.Service == "" {
		return errors.New("auditamqp: a database and a service name are required")
	}
	o.defaults()
	p := &publisher{o: o, holder: o.Service + "-" + uuid.NewString(), log: o.Logger.With("component", "audit publisher")}
	if o.URL == "" {
		p.pruneLoop(ctx)
		return nil
	}
	unregister, err := p.metrics()
	if err != nil {
		return err
	}
	defer func() { _ = unregister() }()
	defer p.close()
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = audit.ReleaseLease(rctx, o.DB, p.holder)
	}()
	p.loop(ctx)
	return nil
}

// metrics registers the outbox gauges and the publishing counters.
func (p *publisher) metrics() (func() error, error) {
	m := p.o.Meter
	p.attrs = metric.WithAttributes(attribute.String("service", p.o.Service))
	var err error
	depth, err1 := m.Int64ObservableGauge("dhosauth.audit.outbox.depth",
		metric.WithDescription("Audit events waiting in the outbox for the broker's confirmation"), metric.WithUnit("{event}"))
	age, err2 := m.Float64ObservableGauge("dhosauth.audit.outbox.age",
		metric.WithDescription("Age of the oldest audit event waiting in the outbox (0 when none waits)"), metric.WithUnit("s"))
	p.published, err = m.Int64Counter("dhosauth.audit.published",
		metric.WithDescription("Audit events published and confirmed by the broker"), metric.WithUnit("{event}"))
	p.failures, _ = m.Int64Counter("dhosauth.audit.publish.failures",
		metric.WithDescription("Failed attempts to reach the broker or publish a batch"), metric.WithUnit("{failure}"))
	if err := errors.Join(err1, err2, err); err != nil {
		return nil, fmt.Errorf("auditamqp: metrics: %w", err)
	}
	reg, err := m.RegisterCallback(func(_ context.Context, obs metric.Observer) error {
		obs.ObserveInt64(depth, p.depth.Load(), p.attrs)
		a := 0.0
		if us := p.oldestUS.Load(); us != 0 {
			a = max(0, time.Since(time.UnixMicro(us)).Seconds())
		}
		obs.ObserveFloat64(age, a, p.attrs)
		return nil
	}, depth, age)
	if err != nil {
		return nil, fmt.Errorf("auditamqp: metrics: %w", err)
	}
	return reg.Unregister, nil
}

// loop is the publisher's life: hold the lease, stay connected, publish.
func (p *publisher) loop(ctx context.Context) {
	backoff := p.o.MinBackoff
	fail := func(what string, err error) {
		p.failures.Add(ctx, 1, p.attrs)
		if !p.brokerDown {
			p.log.WarnContext(ctx, "audit events wait in the outbox: "+what, "error", err.Error(), "retry_in", backoff.String())
			p.brokerDown = true
		} else {
			p.log.DebugContext(ctx, what, "error", err.Error(), "retry_in", backoff.String())
		}
		p.close()
		sleep(ctx, backoff)
		backoff = min(backoff*2, p.o.MaxBackoff)
	}
	for ctx.Err() == nil {
		p.observe(ctx)
		err := audit.AcquireLease(ctx, p.o.DB, p.holder, time.Now(), p.o.LeaseTTL)
		if errors.Is(err, audit.ErrLeaseLost) {
			// Another replica publishes; stand by.
			p.close()
			sleep(ctx, p.o.LeaseTTL/3)
			continue
		} else if err != nil {
			if ctx.Err() == nil {
				p.log.WarnContext(ctx, "audit publisher cannot read the outbox", "error", err.Error())
			}
			sleep(ctx, backoff)
			backoff = min(backoff*2, p.o.MaxBackoff)
			continue
		}
		p.prune(ctx)
		if err := p.connect(ctx); err != nil {
			fail("cannot reach the broker", err)
			continue
		}
		n, err := p.publishBatch(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			fail("publishing failed", err)
			continue
		}
		if p.brokerDown {
			p.log.InfoContext(ctx, "audit publisher reconnected to the broker")
			p.brokerDown = false
		}
		backoff = p.o.MinBackoff
		if n < p.o.BatchSize {
			sleep(ctx, p.o.PollInterval)
		}
	}
}

// observe updates the backlog the gauges report.
func (p *publisher) observe(ctx context.Context) {
	b, err := audit.PendingBacklog(ctx, p.o.DB)
	if err != nil {
		return
	}
	p.depth.Store(b.Depth)
	if b.Depth == 0 {
		p.oldestUS.Store(0)
	} else {
		p.oldestUS.Store(b.Oldest.UnixMicro())
	}
}

// connect opens the connection and a confirming channel, and declares the
// exchange, unless they are open.
func (p *publisher) connect(ctx context.Context) error {
	if p.ch != nil && !p.ch.IsClosed() && !p.conn.IsClosed() {
		return nil
	}
	p.close()
	conn, err := amqp.DialConfig(p.o.URL, amqp.Config{
		Dial:       amqp.DefaultDial(5 * time.Second),
		Heartbeat:  10 * time.Second,
		Properties: amqp.Table{"connection_name": "dhosauth-" + p.o.Service + " audit publisher"},
	})
	if err != nil {
		return err
	}
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err == nil {
		err = ch.ExchangeDeclare(p.o.Exchange, amqp.ExchangeTopic, true, false, false, false, nil)
	}
	if err != nil {
		_ = conn.Close()
		return err
	}
	p.conn, p.ch = conn, ch
	p.log.InfoContext(ctx, "audit publisher connected", "exchange", p.o.Exchange, "routing", p.o.RoutingKey)
	return nil
}

// close drops the connection (a new one is made on the next batch).
func (p *publisher) close() {
	if p.conn != nil {
		_ = p.conn.Close()
	}
	p.conn, p.ch = nil, nil
}

// publishBatch publishes the oldest waiting events in order, waits for the
// broker to confirm all of them, then marks them published. It returns
// how many it published.
func (p *publisher) publishBatch(ctx context.Context) (int, error) {
	evs, err := audit.Pending(ctx, p.o.DB, p.o.BatchSize)
	if err != nil || len(evs) == 0 {
		return 0, err
	}
	cctx, cancel := context.WithTimeout(ctx, p.o.ConfirmTimeout)
	defer cancel()
	confirms := make([]*amqp.DeferredConfirmation, 0, len(evs))
	for _, e := range evs {
		body, err := json.Marshal(audit.MessageOf(e.Event))
		if err != nil {
			return 0, fmt.Errorf("encode event %s: %w", e.ID, err)
		}
		dc, err := p.ch.PublishWithDeferredConfirmWithContext(cctx, p.o.Exchange, p.o.RoutingKey, false, false, amqp.Publishing{
			ContentType:  "application/json",
			DeliveryMode: amqp.Persistent,
			MessageId:    e.ID,
			Timestamp:    e.Time,
			Type:         e.Type,
			AppId:        "dhosauth-" + p.o.Service,
			Body:         body,
		})
		if err != nil {
			return 0, err
		}
		confirms = append(confirms, dc)
	}
	for i, dc := range confirms {
		ok, err := dc.WaitContext(cctx)
		if err != nil {
			return 0, fmt.Errorf("waiting for the broker's confirms: %w", err)
		}
		if !ok {
			return 0, fmt.Errorf("the broker refused event %s", evs[i].ID)
		}
	}
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	// Marked even if the process stops right here: the events were
	// confirmed, and the worst case is that they go out again.
	if err := audit.MarkPublished(context.WithoutCancel(ctx), p.o.DB, ids, time.Now()); err != nil {
		return 0, err
	}
	p.published.Add(ctx, int64(len(ids)), p.attrs)
	return len(ids), nil
}

// prune deletes published events past the retention, once per
// PruneInterval.
func (p *publisher) prune(ctx context.Context) {
	if time.Since(p.lastPrune) < PruneInterval {
		return
	}
	p.lastPrune = time.Now()
	n, err := audit.Prune(ctx, p.o.DB, time.Now().Add(-p.o.Retention), false)
	if err != nil {
		p.log.WarnContext(ctx, "pruning audit events failed", "error", err.Error())
	} else if n > 0 {
		p.log.InfoContext(ctx, "pruned published audit events", "count", n, "retention", p.o.Retention.String())
	}
}

// pruneLoop keeps events for Retention when nothing publishes them.
func (p *publisher) pruneLoop(ctx context.Context) {
	for {
		n, err := audit.Prune(ctx, p.o.DB, time.Now().Add(-p.o.Retention), true)
		if err != nil && ctx.Err() == nil {
			p.log.WarnContext(ctx, "pruning audit events failed", "error", err.Error())
		} else if n > 0 {
			p.log.InfoContext(ctx, "pruned audit events", "count", n, "retention", p.o.Retention.String())
		}
		if !sleep(ctx, PruneInterval) {
			return
		}
	}
}

// sleep waits d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
