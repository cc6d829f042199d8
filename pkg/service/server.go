package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/pkg/telemetry"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
)

// ServerOptions describe one gRPC service process.
type ServerOptions struct {
	Name   string
	Addr   string
	Logger *slog.Logger
	Guard  *auth.Guard
	// Services are the full names reported by grpc.health.v1.
	Services []string
	Register func(s *grpc.Server)
	// Ready reports whether dependencies answer (e.g. the database).
	Ready func(ctx context.Context) error
	// Ops, when set, is told when the server serves and when it starts
	// to stop (its /readyz follows), runs Ready as its "database" check,
	// and supplies ShutdownTimeout and ShutdownDelay when they are zero.
	Ops *Ops
	// ShutdownTimeout bounds draining on SIGTERM (default 10s).
	ShutdownTimeout time.Duration
	// ShutdownDelay: how long to go on serving, reported not ready,
	// before draining.
	ShutdownDelay time.Duration
	// Listening, when set, is told the bound address (tests use port 0).
	Listening func(addr net.Addr)
	// RPCTimeout caps every unary call (default: Ops's RPC_TIMEOUT, else
	// DefaultRPCTimeout).
	RPCTimeout time.Duration
}

// DefaultRPCTimeout is the longest a service works on one RPC unless
// RPC_TIMEOUT says otherwise.
const DefaultRPCTimeout = 10 * time.Second

// StreamWorkersPerCPU is how many goroutines per CPU serve calls and are
// kept with their grown stacks. A call that finds every worker busy runs
// on a new goroutine, whose stack grows again (copystack: 7% of the token
// service's CPU under 64 concurrent VerifyToken calls with one per CPU).
const StreamWorkersPerCPU = 16

// MaxMessageSize bounds every gRPC message the suite receives.
const MaxMessageSize = 1 << 20

// MaxConnectionAge is how long a client connection lives before the server
// asks the client to reconnect (in-flight calls finish first), so that
// clients spread their calls over replicas added since they connected.
const MaxConnectionAge = 5 * time.Minute

// Serve runs the gRPC server until ctx is cancelled, then turns health
// NOT_SERVING and readiness off, goes on serving for ShutdownDelay, drains
// in-flight calls and stops within ShutdownTimeout.
func Serve(ctx context.Context, o ServerOptions) error {
	if o.Ops != nil {
		if o.ShutdownTimeout == 0 {
			o.ShutdownTimeout = o.Ops.ShutdownTimeout()
		}
		if o.ShutdownDelay == 0 {
			o.ShutdownDelay = o.Ops.ShutdownDelay()
		}
		if o.RPCTimeout == 0 {
			o.RPCTimeout = o.Ops.RPCTimeout()
		}
		if o.Ready != nil {
			o.Ops.AddCheck(Check{Name: "database", Fn: o.Ready})
		}
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	if o.RPCTimeout <= 0 {
		o.RPCTimeout = DefaultRPCTimeout
	}
	lis, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", o.Addr, err)
	}
	if o.Listening != nil {
		o.Listening(lis.Addr())
	}
	tel := telemetry.NewGRPCServer()
	srv := grpc.NewServer(
		grpc.MaxRecvMsgSize(MaxMessageSize),
		grpc.NumStreamWorkers(uint32(StreamWorkersPerCPU*runtime.GOMAXPROCS(0))),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: MaxConnectionAge, MaxConnectionAgeGrace: o.ShutdownTimeout}),
		grpc.ChainUnaryInterceptor(tel.Unary(), Recover(o.Logger), Deadline(o.RPCTimeout), MapErrors(o.Logger), o.Guard.Unary()),
		grpc.ChainStreamInterceptor(tel.Stream(), o.Guard.Stream()),
	)
	o.Register(srv)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)

	setAll := func(st healthpb.HealthCheckResponse_ServingStatus) {
		hs.SetServingStatus("", st)
		for _, s := range o.Services {
			hs.SetServingStatus(s, st)
		}
	}
	setAll(healthpb.HealthCheckResponse_SERVING)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if o.Ready != nil {
		go func() {
			t := time.NewTicker(5 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-watchCtx.Done():
					return
				case <-t.C:
				}
				cctx, cancel := context.WithTimeout(watchCtx, 2*time.Second)
				err := o.Ready(cctx)
				cancel()
				if watchCtx.Err() != nil {
					return
				}
				if err != nil {
					setAll(healthpb.HealthCheckResponse_NOT_SERVING)
				} else {
					setAll(healthpb.HealthCheckResponse_SERVING)
				}
			}
		}()
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	o.Logger.Info("serving gRPC", "addr", lis.Addr().String())
	if o.Ops != nil {
		o.Ops.Serving()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	stopWatch()
	if o.Ops != nil {
		o.Ops.Draining()
	}
	hs.Shutdown()
	if o.ShutdownDelay > 0 {
		o.Logger.Info("shutting down: not ready, still serving", "delay", o.ShutdownDelay.String())
		select {
		case <-time.After(o.ShutdownDelay):
		case err := <-errc:
			return err
		}
	}
	o.Logger.Info("shutting down: draining in-flight calls", "timeout", o.ShutdownTimeout.String())
	done := make(chan struct{})
	go func() { srv.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(o.ShutdownTimeout):
		o.Logger.Warn("drain timed out; stopping")
		srv.Stop()
	}
	o.Logger.Info("stopped")
	return nil
}

// Recover turns a panic in a handler into INTERNAL and logs the stack.
func Recover(lg *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				lg.ErrorContext(ctx, "panic in handler", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return h(ctx, req)
	}
}

// Deadline caps every unary call at max: a call without a deadline, or
// whose caller would wait longer, gets one max from now, so no call holds
// a goroutine, a database connection or a lock for longer whatever its
// caller does. Handlers and the database see the deadline through ctx.
func Deadline(max time.Duration) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > max {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, max)
			defer cancel()
		}
		return h(ctx, req)
	}
}

// MapErrors is the one place errors become gRPC statuses: apperr errors
// keep their code and message; storage's unavailable becomes UNAVAILABLE;
// context errors keep their meaning; anything else is logged and masked as
// INTERNAL.
func MapErrors(lg *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := h(ctx, req)
		if err == nil {
			// Checked first: the arguments would be boxed on every call
			// even with debug logging off.
			if lg.Enabled(ctx, slog.LevelDebug) {
				lg.DebugContext(ctx, "rpc", "method", info.FullMethod, "code", "OK", "duration", time.Since(start))
			}
			return resp, nil
		}
		st := ToStatus(err)
		if st.Code() == codes.Internal || st.Code() == codes.Unavailable || st.Code() == codes.Unknown {
			lg.ErrorContext(ctx, "rpc failed", "method", info.FullMethod, "code", st.Code().String(), "error", err.Error())
		} else {
			lg.DebugContext(ctx, "rpc", "method", info.FullMethod, "code", st.Code().String(), "duration", time.Since(start))
		}
		return nil, st.Err()
	}
}

// ToStatus maps any error to the status a client sees.
func ToStatus(err error) *status.Status {
	var ae *apperr.Error
	switch {
	case errors.As(err, &ae):
		return ae.GRPCStatus()
	case errors.Is(err, storage.ErrUnavailable):
		return status.New(codes.Unavailable, "database unavailable, try again")
	case errors.Is(err, context.DeadlineExceeded):
		return status.New(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, context.Canceled):
		return status.New(codes.Canceled, "canceled")
	}
	if st, ok := status.FromError(err); ok {
		// An error from a call to another service: keep client-facing
		// codes, mask the rest.
		switch st.Code() {
		case codes.Unavailable, codes.DeadlineExceeded:
			return status.New(st.Code(), "a dependency did not answer, try again")
		case codes.Internal, codes.Unknown:
			return status.New(codes.Internal, "internal error")
		}
		return st
	}
	return status.New(codes.Internal, "internal error")
}
