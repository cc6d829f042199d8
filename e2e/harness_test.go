package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dhosauth/dhosauth/internal/admin"
	"github.com/dhosauth/dhosauth/internal/testport"
	"github.com/dhosauth/dhosauth/pkg/service/servicetest"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

var binDir string

var processes = []string{"token", "device", "session", "activation", "gateway"}

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "dhosauth-e2e-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binDir = dir
		for _, p := range processes {
			pkg := "./services/" + p + "/cmd/" + p
			if p == "gateway" {
				pkg = "./gateway/cmd/gateway"
			}
			cmd := exec.Command("go", "build", "-o", filepath.Join(dir, p), pkg)
			cmd.Dir = ".."
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintf(os.Stderr, "build %s: %v\n", p, err)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// Suite is one running copy of the whole suite.
type Suite struct {
	// ProcEnv holds variables of one process only, on top of Env.
	ProcEnv map[string]map[string]string
	environ []string
	t       testing.TB
	URL     string
	Env     map[string]string
	DataDir string
	Addr    map[string]string
	// Ops are the ops listeners (metrics, health) by process.
	Ops     map[string]string
	mu      sync.Mutex
	secrets []string
	logs    map[string]*servicetest.LogBuffer
	procs   map[string]*process
}

// process is one running binary of a suite.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// freePort returns a free loopback address for a process to listen on. It
// comes from testport, outside the kernel's ephemeral range: a port from
// 127.0.0.1:0 is often taken again (by an outgoing connection's local
// port, or another test's :0 listener) before the process binds it.
func freePort(t testing.TB) string {
	t.Helper()
	a, err := testport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// addrInUse finds a listener that failed because its address was taken in
// a process's log; it captures the address.
var addrInUse = regexp.MustCompile(`(\S+): bind: address already in use`)

// startupFailure describes the first of the processes named that has
// exited, or returns "" if all are running. While the suite starts, none
// should exit: a process that did will not become ready.
func (s *Suite) startupFailure(names ...string) string {
	for _, p := range names {
		s.mu.Lock()
		pr := s.procs[p]
		s.mu.Unlock()
		if pr == nil {
			continue
		}
		select {
		case <-pr.exited:
		default:
			continue
		}
		// The test's clean-up prints the tail of each process's log.
		if m := addrInUse.FindStringSubmatch(s.logs[p].String()); m != nil {
			return fmt.Sprintf("%s exited during start-up: its address %s%s was already in use (another process took the port after freePort chose it)",
				p, m[1], s.whose(p, m[1]))
		}
		return fmt.Sprintf("%s exited during start-up (%v); see its log below", p, pr.cmd.ProcessState)
	}
	return ""
}

// whose names the variables of process p that set the address addr, as
// " (NAME, …)", or returns "".
func (s *Suite) whose(p, addr string) string {
	vars := map[string]string{"OPS_ADDR": s.Ops[p]}
	for k, v := range s.Env {
		vars[k] = v
	}
	for k, v := range s.ProcEnv[p] {
		vars[k] = v
	}
	_, port, _ := net.SplitHostPort(addr)
	var names []string
	for k, v := range vars {
		if v == addr || (strings.HasSuffix(k, "_PORT") && v == port) {
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	return " (" + strings.Join(names, ", ") + ")"
}

// Start runs the suite with env on top of the test defaults.
func Start(t testing.TB, env map[string]string) *Suite {
	t.Helper()
	return StartWith(t, env, nil)
}

// StartWith is Start with variables for single processes (procEnv, by
// process name) on top of env. A process's gRPC address in s.Addr is
// where it listens: its GRPC_LISTEN_ADDR when procEnv sets one.
func StartWith(t testing.TB, env map[string]string, procEnv map[string]map[string]string) *Suite {
	t.Helper()
	s := &Suite{t: t, DataDir: t.TempDir(), Addr: map[string]string{}, Ops: map[string]string{}, procs: map[string]*process{}, ProcEnv: procEnv}
	edge := freePort(t)
	if p, ok := env["HTTP_PORT"]; ok {
		// The caller chose the edge's port (an upstream provider needs
		// the redirect URI before the suite starts).
		edge = "127.0.0.1:" + p
	}
	_, port, _ := net.SplitHostPort(edge)
	s.URL = "http://" + edge
	s.Env = map[string]string{
		"ENVIRONMENT":     "TEST",
		"ALLOW_DROP_DATA": "true",
		"LOG_FORMAT":      "json",
		"LOG_LEVEL":       "DEBUG",
		"DATA_DIR":        s.DataDir,
		"HTTP_PORT":       port,
		"HTTP_HOST":       "127.0.0.1",
		// Every test's requests come from 127.0.0.1: the brute-force
		// limits are off unless a test turns them on (ratelimit_test.go).
		"RATE_LIMIT_PER_ADDRESS":         "off",
		"RATE_LIMIT_PER_PRINCIPAL":       "off",
		"RATE_LIMIT_DEVICE_CODE_GUESSES": "off",
	}
	for _, p := range processes[:4] {
		a := freePort(t)
		s.Addr[p] = a
		s.Env[strings.ToUpper(p)+"_GRPC_ADDR"] = a
	}
	// The session service's browser sign-in listener, forwarded by the edge.
	// (In Env only: Addr holds gRPC addresses.)
	s.Env["SESSION_HTTP_ADDR"] = freePort(t)
	for k, v := range env {
		s.Env[k] = v
	}
	for _, p := range processes[:4] {
		s.Addr[p] = s.Env[strings.ToUpper(p)+"_GRPC_ADDR"]
		if a := procEnv[p]["GRPC_LISTEN_ADDR"]; a != "" {
			s.Addr[p] = a
		}
	}
	var environ []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "DATABASE_") || k == "HS_KEY" || k == "HS_ISSUER" || k == "ENVIRONMENT" {
			continue
		}
		environ = append(environ, kv)
	}
	for k, v := range s.Env {
		environ = append(environ, k+"="+v)
	}
	s.environ = environ
	logs := map[string]*servicetest.LogBuffer{}
	s.logs = logs
	for _, p := range processes {
		s.Ops[p] = freePort(t)
		logs[p] = &servicetest.LogBuffer{}
		s.startProcess(p, p)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for p, b := range logs {
				out := b.String()
				if len(out) > 4000 {
					out = out[len(out)-4000:]
				}
				t.Logf("--- %s log (tail) ---\n%s", p, out)
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for p, b := range logs {
			out := b.String()
			for _, sec := range s.secrets {
				if strings.Contains(out, sec) {
					t.Errorf("the %s log contains a secret (%d characters) returned to a client", p, len(sec))
				}
			}
		}
	})
	s.waitReady(logs)
	return s
}

func (s *Suite) waitReady(logs map[string]*servicetest.LogBuffer) {
	t := s.t
	deadline := time.Now().Add(30 * time.Second)
	for _, p := range processes[:4] {
		cc, err := grpc.NewClient(s.Addr[p], grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
			cancel()
			if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
				break
			}
			if msg := s.startupFailure(processes...); msg != "" {
				t.Fatal(msg)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not become healthy: %v\n%s", p, err, logs[p].String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		cc.Close()
	}
	for {
		resp, err := http.Get(s.URL + "/running")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if msg := s.startupFailure(processes...); msg != "" {
			t.Fatal(msg)
		}
		if time.Now().After(deadline) {
			t.Fatalf("edge did not answer /running: %v\n%s", err, logs["gateway"].String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startProcess starts the binary bin as the process named p (its ops
// address s.Ops[p], its log s.logs[p], appended to across restarts), and
// stops it when the test ends.
func (s *Suite) startProcess(p, bin string) {
	t := s.t
	cmd := exec.Command(filepath.Join(binDir, bin))
	cmd.Env = append(append([]string(nil), s.environ...), "OPS_ADDR="+s.Ops[p])
	for k, v := range s.ProcEnv[p] {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = s.logs[p], s.logs[p]
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.procs[p] = &process{cmd: cmd, exited: exited}
	s.mu.Unlock()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
}

// Kill stops the process at once (SIGKILL) and waits until it is gone.
func (s *Suite) Kill(p string) {
	s.t.Helper()
	s.mu.Lock()
	pr := s.procs[p]
	s.mu.Unlock()
	_ = pr.cmd.Process.Kill()
	select {
	case <-pr.exited:
	case <-time.After(10 * time.Second):
		s.t.Fatalf("%s did not exit after SIGKILL", p)
	}
}

// StartAgain starts the process again with the same configuration (after
// Kill, or after it exited). Restart (audit_test.go) stops it first.
func (s *Suite) StartAgain(p string) {
	s.t.Helper()
	s.startProcess(p, p)
}

// StartEdge starts another replica of the REST edge in front of the same
// services, with env on top of the suite's, and returns its URL.
func (s *Suite) StartEdge(name string, env map[string]string) string {
	s.t.Helper()
	addr := freePort(s.t)
	_, port, _ := net.SplitHostPort(addr)
	s.Ops[name] = freePort(s.t)
	s.logs[name] = &servicetest.LogBuffer{}
	pe := map[string]string{"HTTP_PORT": port}
	for k, v := range env {
		pe[k] = v
	}
	if s.ProcEnv == nil {
		s.ProcEnv = map[string]map[string]string{}
	}
	s.ProcEnv[name] = pe
	s.startProcess(name, "gateway")
	url := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url + "/running")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return url
			}
		}
		if msg := s.startupFailure(name); msg != "" {
			s.t.Fatal(msg)
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("edge %s did not answer /running: %v\n%s", name, err, s.logs[name].String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Log is what the process has logged so far.
func (s *Suite) Log(p string) string { return s.logs[p].String() }

// Signal sends sig to the process.
func (s *Suite) Signal(p string, sig os.Signal) {
	s.mu.Lock()
	pr := s.procs[p]
	s.mu.Unlock()
	if err := pr.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %s: %v", p, err)
	}
}

// Exited is closed when the process has exited.
func (s *Suite) Exited(p string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.procs[p].exited
}

// OpsGet fetches a path from the process's ops listener.
func (s *Suite) OpsGet(p, path string) Response {
	resp, err := http.Get("http://" + s.Ops[p] + path)
	if err != nil {
		return Response{Body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Body: b, Header: resp.Header}
}

// Secret remembers a value that must never appear in any log.
func (s *Suite) Secret(v string) {
	if len(v) < 4 {
		return
	}
	s.mu.Lock()
	s.secrets = append(s.secrets, v)
	s.mu.Unlock()
}

// SystemToken mints a system token with the scopes, as dhosctl does.
func (s *Suite) SystemToken(t testing.TB, scopes ...string) string {
	t.Helper()
	key, err := admin.InternalKey(func(k string) string {
		if k == "DATA_DIR" {
			return s.DataDir
		}
		return s.Env[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tok, err := admin.MintSystemToken(ctx, s.Addr["token"], key, "e2e", scopes)
	if err != nil {
		t.Fatal(err)
	}
	s.Secret(tok)
	return tok
}

// AdminToken has every management scope.
func (s *Suite) AdminToken(t testing.TB) string { return s.SystemToken(t, admin.DefaultScopes...) }

// Response is an HTTP answer.
type Response struct {
	Status int
	Body   []byte
	Header http.Header
}

// JSON decodes the body into a map (or fails the test).
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.Body, err)
	}
	return m
}

// List decodes the body as a JSON array of objects.
func (r Response) List(t testing.TB) []map[string]any {
	t.Helper()
	var l []map[string]any
	if err := json.Unmarshal(r.Body, &l); err != nil {
		t.Fatalf("body %q is not a JSON array: %v", r.Body, err)
	}
	return l
}

// Do sends a request; headers are name, value pairs. A token "" sends no
// Authorization header. A transport failure is a response with status 0
// (Expect reports it), so Do is safe from any goroutine.
func (s *Suite) Do(method, path, token string, body any, headers ...string) Response {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			panic(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		return Response{Body: []byte(err.Error())}
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Response{Body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Body: b, Header: resp.Header}
}

// Expect fails the test unless r has the status.
func Expect(t testing.TB, r Response, status int) Response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
	if status >= 400 {
		var e struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(r.Body, &e); err != nil || e.Code != status || e.Message == "" {
			t.Fatalf("error body %q is not {code: %d, message}", r.Body, status)
		}
	}
	return r
}

// Claims decodes a JWT's payload without verifying it.
func Claims(t testing.TB, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// Unique returns a fresh id with the prefix.
func Unique(prefix string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// backend is a store the suite can run on.
type backend struct {
	name string
	env  func(t testing.TB) map[string]string
}

func backends() []backend {
	return []backend{
		{"sqlite", func(testing.TB) map[string]string { return nil }},
		{"postgres", postgresEnv},
	}
}

// postgresEnv creates a fresh database for one suite and drops it after.
func postgresEnv(t testing.TB) map[string]string {
	url := storagetest.PostgresURL(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	defer conn.Close(ctx)
	name := strings.ReplaceAll(strings.ToLower(Unique("e2e")), "-", "_")
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"DATABASE_HOST":    cfg.Host,
		"DATABASE_PORT":    fmt.Sprint(cfg.Port),
		"DATABASE_USER":    cfg.User,
		"DATABASE_NAME":    name,
		"DATABASE_SSLMODE": "disable",
	}
	if cfg.Password != "" {
		env["DATABASE_PASSWORD"] = cfg.Password
	}
	return env
}

// forEachBackend starts one suite per backend and runs fn against it.
func forEachBackend(t *testing.T, env map[string]string, fn func(t *testing.T, s *Suite)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			all := map[string]string{}
			for k, v := range b.env(t) {
				all[k] = v
			}
			for k, v := range env {
				all[k] = v
			}
			fn(t, Start(t, all))
		})
	}
}

// runBinary runs one process to completion (it is expected to exit).
func runBinary(t testing.TB, name string, env map[string]string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, name))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "OPS_ADDR=127.0.0.1:0"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
		return string(out), err
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return string(out), nil
	}
}
