package servicetest

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	auditv1 "github.com/dhosauth/dhosauth/gen/go/dhos/audit/v1"
)

// LogBuffer collects the log lines a server writes from its goroutines
// while the test reads them.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Logger returns a logger that writes every level as JSON lines to b.
func (b *LogBuffer) Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Clock is a test clock: it stands still until the test moves it.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock that reads now.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Now reads the clock; it is the Now of the configurations under test.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Add moves the clock on by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set sets the clock to now.
func (c *Clock) Set(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = now
}

// AuditEvents lists the audit events a service recorded after cursor (""
// for all of them), oldest first, through its AuditService (c) as the
// caller of ctx, and returns them with the cursor after the last one
// (cursor itself when there are none).
func AuditEvents(t testing.TB, ctx context.Context, c auditv1.AuditServiceClient, cursor string) ([]*auditv1.AuditEvent, string) {
	t.Helper()
	var out []*auditv1.AuditEvent
	for {
		resp, err := c.ListEvents(ctx, &auditv1.ListEventsRequest{PageSize: 500, PageToken: cursor})
		if err != nil {
			t.Fatalf("ListEvents: %v", err)
		}
		for _, ev := range resp.GetEvents() {
			out = append(out, ev)
			cursor = ev.GetCursor()
		}
		if resp.GetNextPageToken() == "" {
			return out, cursor
		}
	}
}
