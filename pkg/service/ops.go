package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dhosauth/dhosauth/pkg/config"
	"github.com/dhosauth/dhosauth/pkg/telemetry"
)

// Default addresses of the ops listener (metrics, health, pprof), one per
// process so that the whole suite can run on one machine. In a container
// set OPS_ADDR to 0.0.0.0:<port>.
const (
	DefaultGatewayOpsAddr    = "127.0.0.1:9190"
	DefaultActivationOpsAddr = "127.0.0.1:9191"
	DefaultDeviceOpsAddr     = "127.0.0.1:9192"
	DefaultTokenOpsAddr      = "127.0.0.1:9193"
	DefaultSessionOpsAddr    = "127.0.0.1:9194"
)

// defaultOpsAddr is the default OPS_ADDR of the named process.
func defaultOpsAddr(name string) string {
	switch name {
	case "gateway":
		return DefaultGatewayOpsAddr
	case "activation":
		return DefaultActivationOpsAddr
	case "device":
		return DefaultDeviceOpsAddr
	case "token":
		return DefaultTokenOpsAddr
	case "session":
		return DefaultSessionOpsAddr
	}
	return "127.0.0.1:0"
}

// OpsOff is the OPS_ADDR value that turns the ops listener off.
const OpsOff = "off"

// ServeConfig is where a process listens and how it stops.
type ServeConfig struct {
	// GRPCListen is where a service's gRPC server listens
	// (GRPC_LISTEN_ADDR, default: its own *_GRPC_ADDR, which is also
	// where the others call it); empty for the edge.
	GRPCListen string
	// OpsAddr is the ops listener's address (OPS_ADDR, default one port
	// per process from 127.0.0.1:9190; "off" turns it off).
	OpsAddr string
	// ShutdownTimeout bounds draining in-flight requests on SIGTERM
	// (SHUTDOWN_TIMEOUT, default 10s).
	ShutdownTimeout time.Duration
	// ShutdownDelay is how long a stopping process goes on serving while
	// it reports not ready, so load balancers stop sending it requests
	// first (SHUTDOWN_DELAY, default 0; a few seconds in Kubernetes).
	ShutdownDelay time.Duration
	// RPCTimeout caps how long a service works on one RPC (RPC_TIMEOUT,
	// default DefaultRPCTimeout): a call without a deadline, or with a
	// later one, gets this one.
	RPCTimeout time.Duration
	// lookup reads the variables (the telemetry SDK reads OTEL_*).
	lookup func(string) (string, bool)
}

// loadServeConfig reads the ServeConfig of the named process.
func loadServeConfig(l *config.Loader, name string, addr Addresses) ServeConfig {
	own := map[string]string{"activation": addr.Activation, "device": addr.Device, "token": addr.Token, "session": addr.Session}[name]
	return ServeConfig{
		GRPCListen:      l.String("GRPC_LISTEN_ADDR", own),
		OpsAddr:         l.String("OPS_ADDR", defaultOpsAddr(name)),
		ShutdownTimeout: l.Duration("SHUTDOWN_TIMEOUT", 10*time.Second),
		ShutdownDelay:   nonNegativeDuration(l, "SHUTDOWN_DELAY"),
		RPCTimeout:      l.Duration("RPC_TIMEOUT", DefaultRPCTimeout),
		lookup:          l.Lookup(),
	}
}

// nonNegativeDuration reads a duration that may be zero (default zero).
func nonNegativeDuration(l *config.Loader, name string) time.Duration {
	v := l.String(name, "0s")
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		l.Fail("%s: want a duration such as 5s (or 0s), got %q", name, v)
		return 0
	}
	return d
}

// Check is one readiness check: a dependency that must answer.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// CheckTimeout bounds each readiness check.
const CheckTimeout = 2 * time.Second

// Readiness states.
const (
	opsStarting int32 = iota
	opsServing
	opsDraining
)

// Ops is a process's operations side: its telemetry and the ops listener,
// which serves
//
//   - /livez: 200 while the process runs (liveness);
//   - /readyz: 200 once the process serves and every check passes; 503
//     while it starts, when a dependency does not answer, and from the
//     moment it is told to stop (readiness);
//   - /metrics: Prometheus metrics;
//   - /debug/pprof/: Go profiles.
type Ops struct {
	lg              *slog.Logger
	tel             *telemetry.Telemetry
	srv             *http.Server
	addr            net.Addr
	state           atomic.Int32
	mu              sync.Mutex
	checks          []Check
	shutdownTimeout time.Duration
	shutdownDelay   time.Duration
	rpcTimeout      time.Duration
}

// StartOps sets up telemetry (installing the global tracer and meter
// providers: call it before opening the database or creating clients) and
// starts the ops listener on c.Serve.OpsAddr. Close stops both.
func StartOps(ctx context.Context, c Common, lg *slog.Logger, version string) (*Ops, error) {
	sc := c.Serve
	tel, err := telemetry.Setup(ctx, telemetry.Options{Service: c.Name, Version: version, Lookup: sc.lookup, Logger: lg})
	if err != nil {
		return nil, err
	}
	o := &Ops{lg: lg, tel: tel, shutdownTimeout: sc.ShutdownTimeout, shutdownDelay: sc.ShutdownDelay, rpcTimeout: sc.RPCTimeout}
	if sc.OpsAddr == OpsOff {
		lg.Info("telemetry", tel.Describe()...)
		return o, nil
	}
	lis, err := net.Listen("tcp", sc.OpsAddr)
	if err != nil {
		_ = tel.Shutdown(ctx)
		return nil, fmt.Errorf("OPS_ADDR: listen %s: %w", sc.OpsAddr, err)
	}
	o.addr = lis.Addr()
	o.srv = &http.Server{
		Handler:           o.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		// pprof's profile and trace endpoints stream for up to their
		// "seconds" parameter.
		WriteTimeout: 2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(lg.Handler(), slog.LevelDebug),
	}
	go func() {
		if err := o.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			lg.Error("ops listener stopped", "error", err.Error())
		}
	}()
	lg.Info("ops listening", append([]any{"url", "http://" + lis.Addr().String(), "endpoints", "/livez /readyz /metrics /debug/pprof/"}, tel.Describe()...)...)
	return o, nil
}

// Addr is the ops listener's bound address (nil when it is off).
func (o *Ops) Addr() net.Addr { return o.addr }

// ShutdownTimeout bounds draining in-flight requests (SHUTDOWN_TIMEOUT).
func (o *Ops) ShutdownTimeout() time.Duration { return o.shutdownTimeout }

// ShutdownDelay is how long a stopping process keeps serving while it
// reports not ready, so that load balancers stop sending it requests
// before it stops accepting them (SHUTDOWN_DELAY).
func (o *Ops) ShutdownDelay() time.Duration { return o.shutdownDelay }

// RPCTimeout caps the time a service spends on one RPC (RPC_TIMEOUT).
func (o *Ops) RPCTimeout() time.Duration { return o.rpcTimeout }

// AddCheck adds a readiness check.
func (o *Ops) AddCheck(c Check) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.checks = append(o.checks, c)
}

// Serving marks the process ready to take requests (subject to checks).
func (o *Ops) Serving() { o.state.CompareAndSwap(opsStarting, opsServing) }

// Draining marks the process as stopping: /readyz answers 503 from now on.
func (o *Ops) Draining() { o.state.Store(opsDraining) }

// Ready runs the checks: nil when the process serves and every dependency
// answers.
func (o *Ops) Ready(ctx context.Context) (map[string]string, error) {
	switch o.state.Load() {
	case opsStarting:
		return nil, errors.New("starting")
	case opsDraining:
		return nil, errors.New("shutting down")
	}
	o.mu.Lock()
	checks := append([]Check(nil), o.checks...)
	o.mu.Unlock()
	results := make(map[string]string, len(checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	var failed bool
	for _, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
			defer cancel()
			res := "ok"
			if err := c.Fn(cctx); err != nil {
				res = err.Error()
			}
			mu.Lock()
			defer mu.Unlock()
			results[c.Name] = res
			if res != "ok" {
				failed = true
			}
		}()
	}
	wg.Wait()
	if failed {
		return results, errors.New("a dependency does not answer")
	}
	return results, nil
}

// Handler serves the ops endpoints.
func (o *Ops) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		writeOpsJSON(w, http.StatusOK, map[string]any{"status": "alive"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		checks, err := o.Ready(r.Context())
		if err != nil {
			writeOpsJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "reason": err.Error(), "checks": checks})
			return
		}
		writeOpsJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": checks})
	})
	mux.Handle("GET /metrics", o.tel.MetricsHandler())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

func writeOpsJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Close stops the ops listener and flushes telemetry (spans not yet
// exported), each within a few seconds. Call it last, after the servers
// have stopped.
func (o *Ops) Close() {
	o.Draining()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if o.srv != nil {
		_ = o.srv.Shutdown(ctx)
	}
	if err := o.tel.Shutdown(ctx); err != nil {
		o.lg.Warn("telemetry shutdown", "error", err.Error())
	}
}
