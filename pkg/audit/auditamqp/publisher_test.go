package auditamqp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/audit/auditamqp"
	"github.com/dhosauth/dhosauth/pkg/audit/audittest"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

var migrations = storage.Migrations{Shared: []storage.NamedMigrations{audit.Migrations()}}

// generator records events, one transaction each, until stopped.
type generator struct {
	mu     sync.Mutex
	ids    []string
	stop   chan struct{}
	done   chan struct{}
	errors int
}

func generate(db storage.DB, service string, every time.Duration) *generator {
	g := &generator{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(g.done)
		ctx := context.Background()
		for i := 0; ; i++ {
			select {
			case <-g.stop:
				return
			case <-time.After(every):
			}
			e := audit.New(ctx, service, audit.TypeDeviceUpdate, fmt.Sprintf("dev-%d", i), audit.Data{"device_id": fmt.Sprintf("dev-%d", i), "n": i})
			if err := audit.RecordTx(ctx, db, e); err != nil {
				g.mu.Lock()
				g.errors++
				g.mu.Unlock()
				continue
			}
			g.mu.Lock()
			g.ids = append(g.ids, e.ID)
			g.mu.Unlock()
		}
	}()
	return g
}

func (g *generator) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.ids)
}

func (g *generator) finish() []string {
	close(g.stop)
	<-g.done
	return g.ids
}

func (g *generator) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for g.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d events generated", g.count())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runPublisher runs a publisher until the returned stop is called.
func runPublisher(t *testing.T, o auditamqp.Options) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- auditamqp.Run(ctx, o) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("publisher: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("publisher did not stop")
		}
	}
	t.Cleanup(stop)
	return stop
}

func options(url, exchange string, db storage.DB) auditamqp.Options {
	return auditamqp.Options{
		URL: url, Exchange: exchange, RoutingKey: auditamqp.DefaultRoutingKey, Service: "device", DB: db,
		PollInterval: 50 * time.Millisecond, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second,
		LeaseTTL: 3 * time.Second, ConfirmTimeout: 3 * time.Second,
	}
}

// checkDelivered waits for every id and checks nothing else came, and that
// first deliveries are in recording order.
func checkDelivered(t *testing.T, c *audittest.Consumer, ids []string) {
	t.Helper()
	if missing := c.WaitFor(ids, 60*time.Second); len(missing) > 0 {
		t.Fatalf("%d of %d events never delivered, e.g. %s", len(missing), len(ids), missing[0])
	}
	want := map[string]int{}
	for i, id := range ids {
		want[id] = i
	}
	var first []string
	seen := map[string]bool{}
	dup := 0
	for _, d := range c.Deliveries() {
		if _, ok := want[d.MessageID]; !ok {
			t.Fatalf("delivered an event never recorded: %s", d.MessageID)
		}
		if seen[d.MessageID] {
			dup++
			continue
		}
		seen[d.MessageID] = true
		first = append(first, d.MessageID)
	}
	for i, id := range first {
		if want[id] != i {
			t.Fatalf("first deliveries out of order at %d: event %d", i, want[id])
		}
	}
	t.Logf("recorded %d events; delivered %d messages: %d distinct, %d duplicates, 0 missing", len(ids), len(c.Deliveries()), len(first), dup)
}

// TestBrokerOutageAndRestart stops the broker while events keep being
// recorded, starts it again, then restarts the publisher (as a service
// restart does), and checks that every event was delivered at least once,
// in order, and nothing else.
func TestBrokerOutageAndRestart(t *testing.T) {
	url := audittest.AMQPURL(t)
	audittest.Lock(t, true)
	storagetest.Each(t, migrations, func(t *testing.T, db storage.DB) {
		exchange := audittest.Unique("dhos-test")
		c := audittest.Consume(t, url, exchange, auditamqp.DefaultRoutingKey)
		reader := sdkmetric.NewManualReader()
		o := options(url, exchange, db)
		o.Meter = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)).Meter(auditamqp.MeterName)
		stop := runPublisher(t, o)
		g := generate(db, "device", 5*time.Millisecond)

		g.waitFor(t, 50)
		audittest.StopBroker(t)
		stopped := true
		t.Cleanup(func() {
			if stopped {
				audittest.StartBroker(t)
			}
		})
		atStop := g.count()
		g.waitFor(t, atStop+100)
		time.Sleep(300 * time.Millisecond) // let the publisher see the backlog
		depth, age := gauges(t, reader)
		if depth == 0 || age <= 0 {
			t.Errorf("while the broker is down: outbox depth %d, age %.3fs; want both above 0", depth, age)
		}
		audittest.StartBroker(t)
		stopped = false

		g.waitFor(t, g.count()+50)
		stop() // the service stops mid-stream...
		g.waitFor(t, g.count()+50)
		runPublisher(t, o) // ...and starts again
		g.waitFor(t, g.count()+50)
		ids := g.finish()
		checkDelivered(t, c, ids)

		deadline := time.Now().Add(10 * time.Second)
		for {
			b, err := audit.PendingBacklog(context.Background(), db)
			if err == nil && b.Depth == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("outbox still holds %+v after delivery", b)
			}
			time.Sleep(50 * time.Millisecond)
		}
		var m audit.Message
		d := c.Deliveries()[0]
		if err := json.Unmarshal(d.Body, &m); err != nil || m.EventType != audit.TypeDeviceUpdate || m.ID != d.MessageID ||
			m.Service != "device" || m.Outcome != "success" || m.EventData["device_id"] == nil || m.Time == "" {
			t.Fatalf("message %s: %v", d.Body, err)
		}
	})
}

// TestReplicasPublishInTurn runs two publishers on one outbox: every event
// is delivered, first deliveries in order, because one holds the lease.
func TestReplicasPublishInTurn(t *testing.T) {
	url := audittest.AMQPURL(t)
	audittest.Lock(t, false)
	storagetest.Each(t, migrations, func(t *testing.T, db storage.DB) {
		exchange := audittest.Unique("dhos-test")
		c := audittest.Consume(t, url, exchange, auditamqp.DefaultRoutingKey)
		g := generate(db, "device", 2*time.Millisecond)
		stopA := runPublisher(t, options(url, exchange, db))
		runPublisher(t, options(url, exchange, db))
		g.waitFor(t, 100)
		stopA() // the lease holder (most likely) goes: the other takes over
		g.waitFor(t, g.count()+100)
		checkDelivered(t, c, g.finish())
	})
}

// TestWithoutBrokerNothingIsMarked checks that Run without a URL keeps
// events waiting (it only prunes).
func TestWithoutBrokerNothingIsMarked(t *testing.T) {
	db := storagetest.OpenSQLite(t, migrations)
	ctx := context.Background()
	if err := audit.RecordTx(ctx, db, audit.New(ctx, "device", audit.TypeDeviceCreated, "d", nil)); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := auditamqp.Run(rctx, auditamqp.Options{DB: db, Service: "device"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := audit.PendingBacklog(ctx, db); b.Depth != 1 {
		t.Fatalf("backlog %+v", b)
	}
	if err := auditamqp.Run(ctx, auditamqp.Options{}); err == nil {
		t.Fatal("Run without a database accepted")
	}
}

// gauges reads the outbox depth and age.
func gauges(t *testing.T, r *sdkmetric.ManualReader) (int64, float64) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var depth int64
	var age float64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				if m.Name == "dhosauth.audit.outbox.depth" && len(d.DataPoints) > 0 {
					depth = d.DataPoints[0].Value
				}
			case metricdata.Gauge[float64]:
				if m.Name == "dhosauth.audit.outbox.age" && len(d.DataPoints) > 0 {
					age = d.DataPoints[0].Value
				}
			}
		}
	}
	return depth, age
}
