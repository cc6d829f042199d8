package service

import (
	"context"
	"log/slog"
	"time"

	"github.com/dhosauth/dhosauth/pkg/audit/auditamqp"
	"github.com/dhosauth/dhosauth/pkg/storage"
)

// StartAuditPublisher runs the audit publisher of the service's outbox in
// db (publishing to AMQP_URL, or only pruning without it) until the
// returned stop is called; stop waits for it to finish, at most a few
// seconds.
func (c Common) StartAuditPublisher(ctx context.Context, db storage.DB, logger *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := auditamqp.Run(ctx, auditamqp.Options{
			URL:        c.Audit.URL,
			Exchange:   c.Audit.Exchange,
			RoutingKey: c.Audit.RoutingKey,
			Retention:  c.Audit.Retention,
			Service:    c.Name,
			DB:         db,
			Logger:     logger,
		})
		if err != nil {
			logger.Error("audit publisher stopped", "error", err.Error())
		}
	}()
	return func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			logger.Warn("audit publisher did not stop in time")
		}
	}
}
