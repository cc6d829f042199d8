// Package suite starts the real binaries of the suite on a fresh
// PostgreSQL database for the benchmark, and reports how long each took to
// become ready and what it uses.
package suite

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/dhosauth/dhosauth/bench/internal/proc"
	"github.com/dhosauth/dhosauth/bench/internal/report"
	"github.com/dhosauth/dhosauth/internal/testport"
	"github.com/jackc/pgx/v5"
)

// Processes are the suite's binaries, in the order they are started.
var Processes = []string{"token", "device", "session", "activation", "gateway"}

// InternalKey is the INTERNAL_AUTH_KEY of the benchmark's suite: the load
// generator mints its administrator's token with it, as dhosctl does.
const InternalKey = "bench-internal-auth-key-0123456789abcdef0123456789"

// Issuer is the TOKEN_ISSUER (and audience) of the benchmark's tokens.
const Issuer = "https://bench.dhosauth.example/"

// Options describe the suite to start.
type Options struct {
	// BinDir holds the binaries (make build).
	BinDir string
	// AdminURL is a PostgreSQL URL the benchmark may create and drop
	// databases with.
	AdminURL string
	// SigningKey is mounted in the token service (SIGNING_KEYS_DIR), so
	// that the load generator can sign tokens the service accepts.
	SigningKey *ecdsa.PrivateKey
	// Env is added to every process's environment (wins over the
	// defaults).
	Env map[string]string
	// Log receives the processes' output (warnings and errors only).
	Log io.Writer
}

// Process is one running binary.
type Process struct {
	Name string
	Cmd  *exec.Cmd
	// Ops is the address of its ops listener (/readyz, /debug/pprof).
	Ops string
	// Ready is how long it took from exec to /readyz answering 200.
	Ready time.Duration
	// IdleRSS is its resident memory once the whole suite was ready,
	// before any load.
	IdleRSS int64

	exited chan struct{}
	log    *prefixWriter
}

// Pid is the process id.
func (p *Process) Pid() int { return p.Cmd.Process.Pid }

// Suite is a running suite.
type Suite struct {
	// URL is the REST edge.
	URL string
	// GRPC are the services' gRPC addresses by name.
	GRPC map[string]string
	// Procs are the processes by name.
	Procs map[string]*Process
	// Database is the name of the benchmark's database; DatabaseURL
	// reaches it.
	Database    string
	DatabaseURL string
	// DataDir holds generated keys.
	DataDir string
	// Ready is how long it took from the first exec until every process
	// was ready.
	Ready time.Duration

	adminURL string
}

// freeAddr returns a free loopback address for a process to listen on,
// outside the kernel's ephemeral range (see testport: a port from
// 127.0.0.1:0 is often taken again before the process binds it).
func freeAddr() (string, error) {
	return testport.Addr()
}

// withDatabase returns u with its database name replaced.
func withDatabase(u, db string) (string, error) {
	p, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("database URL: %w", err)
	}
	p.Path = "/" + db
	return p.String(), nil
}

// Start creates a fresh database and starts every process on it, and
// waits until each is ready.
func Start(ctx context.Context, o Options) (*Suite, error) {
	s := &Suite{GRPC: map[string]string{}, Procs: map[string]*Process{}, adminURL: o.AdminURL}
	s.Database = fmt.Sprintf("dhosbench_%d", time.Now().UnixNano())
	var err error
	if s.DatabaseURL, err = withDatabase(o.AdminURL, s.Database); err != nil {
		return nil, err
	}
	if err := s.admin(ctx, "CREATE DATABASE "+s.Database); err != nil {
		return nil, fmt.Errorf("create the benchmark database (is PostgreSQL at %s?): %w", o.AdminURL, err)
	}
	ok := false
	defer func() {
		if !ok {
			s.Stop()
		}
	}()
	if s.DataDir, err = os.MkdirTemp("", "dhosbench"); err != nil {
		return nil, err
	}
	keys := filepath.Join(s.DataDir, "keys")
	if err := writeKey(keys, o.SigningKey); err != nil {
		return nil, err
	}
	edge, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(edge)
	s.URL = "http://" + edge
	env := map[string]string{
		"ENVIRONMENT":       "TEST",
		"LOG_LEVEL":         "WARN",
		"LOG_FORMAT":        "json",
		"DATA_DIR":          s.DataDir,
		"HTTP_HOST":         "127.0.0.1",
		"HTTP_PORT":         port,
		"DATABASE_URL":      s.DatabaseURL,
		"INTERNAL_AUTH_KEY": InternalKey,
		"TOKEN_ISSUER":      Issuer,
		"TOKEN_AUDIENCE":    Issuer,
		"SIGNING_KEYS_DIR":  keys,
		// The load generator stands for a load balancer in front of the
		// edge: its X-Forwarded-For names each flow's client.
		"TRUSTED_PROXIES": "127.0.0.1/32",
	}
	for _, p := range Processes[:4] {
		a, err := freeAddr()
		if err != nil {
			return nil, err
		}
		s.GRPC[p] = a
		env[strings.ToUpper(p)+"_GRPC_ADDR"] = a
	}
	// The session service's browser sign-in listener, which the edge
	// forwards to.
	if env["SESSION_HTTP_ADDR"], err = freeAddr(); err != nil {
		return nil, err
	}
	for k, v := range o.Env {
		env[k] = v
	}
	var base []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "DATABASE_") || strings.HasPrefix(k, "OTEL_") || k == "HS_KEY" || k == "HS_ISSUER" || k == "OPS_ADDR" {
			continue
		}
		base = append(base, kv)
	}
	for k, v := range env {
		base = append(base, k+"="+v)
	}
	logw := o.Log
	if logw == nil {
		logw = io.Discard
	}
	start := time.Now()
	for _, name := range Processes {
		ops, err := freeAddr()
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(filepath.Join(o.BinDir, name))
		cmd.Env = append(append([]string(nil), base...), "OPS_ADDR="+ops)
		w := &prefixWriter{w: logw, prefix: name + ": "}
		cmd.Stdout, cmd.Stderr = w, w
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start %s: %w (run `make build` first)", name, err)
		}
		p := &Process{Name: name, Cmd: cmd, Ops: ops, exited: make(chan struct{}), log: w}
		go func() { _ = cmd.Wait(); close(p.exited) }()
		s.Procs[name] = p
	}
	var wg sync.WaitGroup
	errs := make([]error, len(Processes))
	for i, name := range Processes {
		p := s.Procs[name]
		wg.Go(func() {
			d, err := waitReady(ctx, p, start, 30*time.Second)
			p.Ready, errs[i] = d, err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s.Ready = time.Since(start)
	for _, p := range s.Procs {
		if m, err := proc.Mem(p.Pid()); err == nil {
			p.IdleRSS = m.RSS
		}
	}
	ok = true
	return s, nil
}

// waitReady polls the process's /readyz until it answers 200.
func waitReady(ctx context.Context, p *Process, start time.Time, limit time.Duration) (time.Duration, error) {
	c := &http.Client{Timeout: time.Second}
	u := "http://" + p.Ops + "/readyz"
	for {
		if resp, err := c.Get(u); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		select {
		case <-p.exited:
			if a := p.log.inUse(); a != "" {
				return 0, fmt.Errorf("%s exited during start-up: its address %s was already in use (another process took the port after the suite chose it)", p.Name, a)
			}
			return 0, fmt.Errorf("%s exited during start-up (see its log above)", p.Name)
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if time.Since(start) > limit {
			return 0, fmt.Errorf("%s was not ready after %s", p.Name, limit)
		}
	}
}

func writeKey(dir string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "bench.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

func (s *Suite) admin(ctx context.Context, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.adminURL)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, sql)
	return err
}

// PostgresPids returns the PostgreSQL server processes that work for the
// benchmark: the backends connected to its database and the server's
// background processes (WAL writer, checkpointer, …).
func (s *Suite) PostgresPids(ctx context.Context) ([]int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.adminURL)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	rows, err := c.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE (datname = $1 OR backend_type <> 'client backend') AND pid <> pg_backend_pid()`, s.Database)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int])
}

// DBStats reads PostgreSQL's statistics of the benchmark's database. They
// trail by up to a second (backends report them in batches).
func (s *Suite) DBStats(ctx context.Context) (report.DBWork, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.adminURL)
	if err != nil {
		return report.DBWork{}, err
	}
	defer c.Close(context.Background())
	var w report.DBWork
	err = c.QueryRow(ctx, `SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted, tup_fetched
		FROM pg_stat_database WHERE datname = $1`, s.Database).Scan(&w.Commits, &w.Rollbacks, &w.Inserted, &w.Updated, &w.Deleted, &w.Fetched)
	return w, err
}

// Stop stops every process (SIGINT, then SIGKILL after 10 s) and drops
// the database.
func (s *Suite) Stop() {
	// The edge first, so that it does not log the services going away.
	stop := func(ps ...*Process) {
		for _, p := range ps {
			_ = p.Cmd.Process.Signal(os.Interrupt)
		}
		for _, p := range ps {
			select {
			case <-p.exited:
			case <-time.After(10 * time.Second):
				_ = p.Cmd.Process.Kill()
				<-p.exited
			}
		}
	}
	var rest []*Process
	for name, p := range s.Procs {
		if name == "gateway" {
			stop(p)
		} else {
			rest = append(rest, p)
		}
	}
	stop(rest...)
	if s.DataDir != "" {
		os.RemoveAll(s.DataDir)
	}
	if err := s.admin(context.Background(), "DROP DATABASE IF EXISTS "+s.Database+" WITH (FORCE)"); err != nil {
		fmt.Fprintf(os.Stderr, "bench: drop database %s: %v\n", s.Database, err)
	}
}

// prefixWriter prefixes each line a process writes with its name.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
	// addrInUse is the first address a line said was already in use.
	addrInUse string
}

// addrInUse finds a listener that failed because its address was taken in
// a line; it captures the address.
var addrInUse = regexp.MustCompile(`(\S+): bind: address already in use`)

// inUse is the first address the process said was already in use, or "".
func (p *prefixWriter) inUse() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addrInUse
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := strings.IndexByte(string(p.buf), '\n')
		if i < 0 {
			break
		}
		if p.addrInUse == "" {
			if m := addrInUse.FindSubmatch(p.buf[:i]); m != nil {
				p.addrInUse = string(m[1])
			}
		}
		_, _ = fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i])
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}
