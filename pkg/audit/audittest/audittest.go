// Package audittest helps tests of audit events: the events a store
// recorded in its outbox (Outbox, TypeSubjects), and, for tests that need
// RabbitMQ, the broker's URL from the environment (a failure, not a skip,
// when REQUIRE_RABBITMQ=1, as CI sets it), a lock that keeps tests which
// stop the broker apart from the others, the broker's stop and start, and
// a consumer that collects audit messages by id across broker outages.
package audittest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/pkg/storage"
	amqp "github.com/rabbitmq/amqp091-go"
)

// Outbox lists every event recorded in db's audit outbox, in its order
// (every page of audit.List).
func Outbox(t testing.TB, db storage.DB) []audit.Stored {
	t.Helper()
	var out []audit.Stored
	q := audit.Query{}
	for {
		p, err := audit.List(context.Background(), db, q)
		if err != nil {
			t.Fatalf("list the audit outbox: %v", err)
		}
		out = append(out, p.Events...)
		if p.NextPageToken == "" {
			return out
		}
		q.PageToken = p.NextPageToken
	}
}

// TypeSubjects returns "<type> <subject>" of each event: what a store's
// tests compare.
func TypeSubjects(events []audit.Stored) []string {
	out := make([]string, 0, len(events))
	for _, e := range events {
		out = append(out, e.Type+" "+e.Subject)
	}
	return out
}

// AMQPURL returns TEST_AMQP_URL (or AMQP_URL), skipping the test when
// neither is set, or failing it when REQUIRE_RABBITMQ=1.
func AMQPURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("TEST_AMQP_URL")
	if url == "" {
		url = os.Getenv("AMQP_URL")
	}
	if url == "" {
		if os.Getenv("REQUIRE_RABBITMQ") == "1" {
			t.Fatal("REQUIRE_RABBITMQ=1 but TEST_AMQP_URL (or AMQP_URL) is not set")
		}
		t.Skip("TEST_AMQP_URL is not set: RabbitMQ tests skipped")
	}
	return url
}

// Lock takes the broker for the test: shared for tests that only use it,
// exclusive for tests that stop it (test packages run in parallel). It is
// released when the test ends.
func Lock(t testing.TB, exclusive bool) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "dhosauth-rabbitmq-tests.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
}

// StopBroker stops the local RabbitMQ application (rabbitmqctl stop_app);
// StartBroker starts it again and waits until it answers. A test that
// stops the broker must hold Lock(t, true), and starts it again even when
// it fails.
func StopBroker(t testing.TB) {
	t.Helper()
	rabbitmqctl(t, "stop_app")
}

// StartBroker starts the local RabbitMQ application and waits for it.
func StartBroker(t testing.TB) {
	t.Helper()
	rabbitmqctl(t, "start_app")
	rabbitmqctl(t, "await_startup")
}

func rabbitmqctl(t testing.TB, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("rabbitmqctl %v: %v\n%s", args, err, out)
	}
}

// Unique returns a fresh name with the prefix (exchanges, queues).
func Unique(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// Delivery is one message the consumer received.
type Delivery struct {
	MessageID string
	Message   audit.Message
	Body      []byte
}

// Consumer reads a durable queue bound to an exchange with a routing key,
// reconnecting while the broker is away; messages wait in the queue
// meanwhile. It keeps every delivery, duplicates included.
type Consumer struct {
	url, exchange, key, queue string

	mu        sync.Mutex
	delivered []Delivery
	cancel    context.CancelFunc
	done      chan struct{}
}

// Consume declares the exchange (topic, durable) and a durable queue
// bound to it with key, and consumes it until the test ends, when the
// queue and the exchange are deleted.
func Consume(t testing.TB, url, exchange, key string) *Consumer {
	t.Helper()
	c := &Consumer{url: url, exchange: exchange, key: key, queue: Unique("dhosauth-test"), done: make(chan struct{})}
	// Declare once up front, so no message published after Consume
	// returns is dropped for want of a bound queue.
	if err := c.declare(); err != nil {
		t.Fatalf("declare queue: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.run(ctx)
	t.Cleanup(func() {
		cancel()
		<-c.done
		conn, err := amqp.Dial(url)
		if err != nil {
			return
		}
		defer conn.Close()
		if ch, err := conn.Channel(); err == nil {
			_, _ = ch.QueueDelete(c.queue, false, false, false)
			_ = ch.ExchangeDelete(exchange, false, false)
		}
	})
	return c
}

func (c *Consumer) declare() error {
	conn, err := amqp.Dial(c.url)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	return c.declareOn(ch)
}

func (c *Consumer) declareOn(ch *amqp.Channel) error {
	if err := ch.ExchangeDeclare(c.exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return err
	}
	if _, err := ch.QueueDeclare(c.queue, true, false, false, false, nil); err != nil {
		return err
	}
	return ch.QueueBind(c.queue, c.key, c.exchange, false, nil)
}

func (c *Consumer) run(ctx context.Context) {
	defer close(c.done)
	for ctx.Err() == nil {
		c.consumeOnce(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// consumeOnce consumes until the connection drops or ctx is done.
func (c *Consumer) consumeOnce(ctx context.Context) {
	conn, err := amqp.Dial(c.url)
	if err != nil {
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	if err := c.declareOn(ch); err != nil {
		return
	}
	msgs, err := ch.Consume(c.queue, "", false, false, false, false, nil)
	if err != nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			d := Delivery{MessageID: m.MessageId, Body: m.Body}
			_ = json.Unmarshal(m.Body, &d.Message)
			c.mu.Lock()
			c.delivered = append(c.delivered, d)
			c.mu.Unlock()
			_ = m.Ack(false)
		}
	}
}

// Deliveries returns what was received so far, in order.
func (c *Consumer) Deliveries() []Delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Delivery(nil), c.delivered...)
}

// IDs counts the deliveries of each message id.
func (c *Consumer) IDs() map[string]int {
	out := map[string]int{}
	for _, d := range c.Deliveries() {
		out[d.MessageID]++
	}
	return out
}

// WaitFor waits until every id was delivered at least once, or timeout;
// it returns the ids still missing.
func (c *Consumer) WaitFor(ids []string, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for {
		got := c.IDs()
		var missing []string
		for _, id := range ids {
			if got[id] == 0 {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			return missing
		}
		time.Sleep(100 * time.Millisecond)
	}
}
