package servicetest

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/pkg/config"
	"github.com/dhosauth/dhosauth/pkg/service"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Run is a service's run function started as its main starts it: in its
// own goroutine, until Stop cancels its context as SIGTERM does.
type Run struct {
	t       testing.TB
	cancel  context.CancelFunc
	done    chan struct{} // closed when the run function has returned
	err     error         // what it returned, once done is closed
	conn    *grpc.ClientConn
	stopped bool
}

// start runs fn in its own goroutine; the test's cleanup stops it if the
// test does not.
func start(t testing.TB, fn func(ctx context.Context) error) *Run {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Run{t: t, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = fn(ctx)
	}()
	t.Cleanup(r.Stop)
	return r
}

// RunEnv is the environment StartRun sets under the test's own variables:
// a development process on the embedded store in a fresh DATA_DIR (no
// PostgreSQL), its ops listener on a free port, logging errors only.
func RunEnv(t testing.TB) map[string]string {
	return map[string]string{
		"ENVIRONMENT":   "DEVELOPMENT",
		"DATA_DIR":      t.TempDir(),
		"DATABASE_URL":  "",
		"DATABASE_HOST": "",
		"OPS_ADDR":      "127.0.0.1:0",
		"LOG_LEVEL":     "ERROR",
	}
}

// StartRun sets RunEnv and env on top of it in the process environment
// (t.Setenv), where run, a service's run function, reads its
// configuration, and starts run. A run function does not say where it
// listens: check with Serving that it goes on serving, then Stop it.
func StartRun(t testing.TB, env map[string]string, run func(ctx context.Context) error) *Run {
	t.Helper()
	Setenv(t, RunEnv(t))
	Setenv(t, env)
	return start(t, run)
}

// StartServe starts serve, a service's run function that reads its
// configuration through lookup (here: from env alone) and tells listening
// where its gRPC server listens, waits until it listens and reports
// itself healthy over grpc.health.v1, and returns it with a client
// connection to it (service.Dial, no credentials of its own), which Stop
// closes.
func StartServe(t testing.TB, env map[string]string, serve func(ctx context.Context, lookup func(string) (string, bool), listening func(net.Addr)) error) (*Run, *grpc.ClientConn) {
	t.Helper()
	addrc := make(chan string, 1)
	r := start(t, func(ctx context.Context) error {
		return serve(ctx, config.MapLookup(env), func(a net.Addr) { addrc <- a.String() })
	})
	var addr string
	select {
	case addr = <-addrc:
	case <-r.done:
		r.stopped = true
		t.Fatalf("serve: %v", r.err)
	case <-time.After(StartTimeout):
		t.Fatalf("service did not start within %v", StartTimeout)
	}
	conn, err := service.Dial(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.conn = conn
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", h, err)
	}
	return r, conn
}

// Serving fails the test if the run function returns within d: a service
// that started goes on serving until it is stopped.
func (r *Run) Serving(d time.Duration) {
	r.t.Helper()
	select {
	case <-r.done:
		r.stopped = true
		r.t.Fatalf("run stopped early: %v", r.err)
	case <-time.After(d):
	}
}

// Stop closes the client connection, if any, cancels the run function's
// context and fails the test unless it returns nil within StopTimeout. It
// does nothing the second time.
func (r *Run) Stop() {
	r.t.Helper()
	if r.stopped {
		return
	}
	r.stopped = true
	if r.conn != nil {
		r.conn.Close()
	}
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			r.t.Fatalf("run after shutdown: %v", r.err)
		}
	case <-time.After(StopTimeout):
		r.t.Fatalf("run did not stop within %v", StopTimeout)
	}
}

// RunRejects sets env in the process environment (t.Setenv), calls run
// and fails the test unless run refuses to start with an error that
// mentions each of want: every configuration problem reported at once.
func RunRejects(t testing.TB, env map[string]string, run func(ctx context.Context) error, want ...string) {
	t.Helper()
	Setenv(t, env)
	WantError(t, run(context.Background()), want...)
}

// WantError fails the test unless err is an error that mentions each of
// want.
func WantError(t testing.TB, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("accepted a bad configuration")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %s:\n%v", w, err)
		}
	}
}

// Setenv sets each variable of env for the test (t.Setenv).
func Setenv(t testing.TB, env map[string]string) {
	for k, v := range env {
		t.Setenv(k, v)
	}
}
