package service

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/dhosauth/dhosauth/pkg/audit/auditgrpc"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/config"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"google.golang.org/grpc"
)

// Main is the whole of a command's main: it calls run with a context that
// SIGINT or SIGTERM cancels (run then stops gracefully and returns nil)
// and, when run fails, prints "<name>: <error>" to stderr and exits with
// status 1.
func Main(name string, run func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// Process is a gRPC service process being started by its run function:
// its configuration, logger and ops side (Start), then its store (Open),
// its clients of other services (Dial), its verifier (StartVerifier) and
// its gRPC server (Serve). Close releases all it started, the last first.
type Process struct {
	Common Common
	Logger *slog.Logger
	Ops    *Ops
	// DB is the service's store, once Open has opened it.
	DB storage.DB

	closers []func()
}

// StartOptions say what a process logs when it starts.
type StartOptions struct {
	// Announce logs the start-up lines once the configuration is valid;
	// summary is the configuration that was set (config.Loader.Summary).
	// Nil: one "starting" line with the store, the environment and the
	// summary.
	Announce func(lg *slog.Logger, summary []any)
	// Notes are remarks on the configuration, logged as warnings after
	// the start-up lines.
	Notes []string
}

// Start finishes reading a service's configuration, c and whatever else
// it read through l: it builds the logger, reports every problem at once
// ("invalid configuration:" then one problem a line), logs the start-up
// lines and starts the ops side (StartOps). Call Close when done.
func Start(ctx context.Context, l *config.Loader, c Common, o StartOptions) (*Process, error) {
	lg, err := c.Logger()
	if err != nil {
		l.Fail("%v", err)
	}
	if err := l.Err(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	if o.Announce != nil {
		o.Announce(lg, l.Summary())
	} else {
		lg.Info("starting", append([]any{"store", c.StoreName(), "environment", string(c.Environment)}, l.Summary()...)...)
	}
	for _, n := range o.Notes {
		lg.Warn(n)
	}
	ops, err := StartOps(ctx, c, lg, "")
	if err != nil {
		return nil, err
	}
	p := &Process{Common: c, Logger: lg, Ops: ops}
	p.Defer(ops.Close)
	return p, nil
}

// Defer adds f to what Close does; Close calls what was added last first.
func (p *Process) Defer(f func()) { p.closers = append(p.closers, f) }

// Close stops and closes everything the process started, the last first:
// the audit publisher before the store it reads, the ops side (and its
// telemetry) last of all. A second Close does nothing.
func (p *Process) Close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
	p.closers = nil
}

// Open opens the service's store (Common.Storage) and applies its
// migrations, m, which carry the audit outbox (audit.Migrations).
func (p *Process) Open(ctx context.Context, m storage.Migrations) (storage.DB, error) {
	db, err := storage.Open(ctx, p.Common.Storage, m)
	if err != nil {
		return nil, err
	}
	p.DB = db
	p.Defer(db.Close)
	return db, nil
}

// Dial connects to another service (Dial) with the process's internal
// credentials granting scopes.
func (p *Process) Dial(addr string, scopes ...string) (*grpc.ClientConn, error) {
	conn, err := Dial(addr, auth.NewInternalCredentials(p.Common.InternalKey, p.Common.Name, scopes...))
	if err != nil {
		return nil, err
	}
	p.Defer(func() { _ = conn.Close() })
	return conn, nil
}

// StartVerifier starts the verifier of callers' tokens (see
// Common.StartVerifier).
func (p *Process) StartVerifier(ctx context.Context) (*auth.Verifier, error) {
	v, stop, err := p.Common.StartVerifier(ctx, p.Logger)
	if err != nil {
		return nil, err
	}
	p.Defer(stop)
	return v, nil
}

// GRPCService is the gRPC service a process serves.
type GRPCService struct {
	// Name is its full name (package.Service), reported by
	// grpc.health.v1.
	Name string
	// Rules are its access rules, which the Guard enforces with Verifier.
	Rules    func() (auth.Rules, error)
	Verifier *auth.Verifier
	// Register registers it on the server.
	Register func(s *grpc.Server)
	// Listening, when set, is told the bound address.
	Listening func(addr net.Addr)
}

// Serve starts publishing the store's audit outbox (until Close) and
// serves s, with the audit query service (auditgrpc) over the store, on
// GRPC_LISTEN_ADDR until ctx is cancelled (see Serve), ready while the
// store answers. Open the store first.
func (p *Process) Serve(ctx context.Context, s GRPCService) error {
	rules, err := s.Rules()
	if err != nil {
		return err
	}
	db := p.DB
	p.Defer(p.Common.StartAuditPublisher(ctx, db, p.Logger))
	return Serve(ctx, ServerOptions{
		Name:     p.Common.Name,
		Addr:     p.Common.Serve.GRPCListen,
		Ops:      p.Ops,
		Logger:   p.Logger,
		Guard:    auth.NewGuard(s.Verifier, rules, p.Common.Environment.IsProduction()),
		Services: []string{s.Name, auditgrpc.ServiceName},
		Register: func(g *grpc.Server) {
			s.Register(g)
			auditgrpc.New(db).Register(g)
		},
		Ready:     db.Ping,
		Listening: s.Listening,
	})
}
