package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	activationv1 "github.com/dhosauth/dhosauth/gen/go/dhos/activation/v1"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// noKeepAlive sends each request on its own connection, so that idle
// client connections do not count as the server's goroutines.
var noKeepAlive = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 60 * time.Second}

// call sends one request with noKeepAlive and reports how long it took.
func call(method, url, token, body string) (Response, time.Duration) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	start := time.Now()
	resp, err := noKeepAlive.Do(req)
	if err != nil {
		return Response{Body: []byte(err.Error())}, time.Since(start)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Body: b, Header: resp.Header}, time.Since(start)
}

// goroutines reads a process's goroutine count from its ops listener.
func goroutines(t *testing.T, s *Suite, p string) int {
	t.Helper()
	r := s.OpsGet(p, "/debug/pprof/goroutine?debug=1")
	line, _, _ := strings.Cut(string(r.Body), "\n")
	n, err := strconv.Atoi(strings.TrimPrefix(line, "goroutine profile: total "))
	if err != nil {
		t.Fatalf("%s goroutine profile: %q", p, line)
	}
	return n
}

// settle waits until p's goroutines are at most want, and returns the last
// count.
func settle(t *testing.T, s *Suite, p string, want int, within time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		n := goroutines(t, s, p)
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stallProxy forwards TCP connections to a target and can stop forwarding
// (without closing anything), as a hung dependency or a black-holed
// network does.
type stallProxy struct {
	lis    net.Listener
	target string
	mu     sync.Mutex
	cond   *sync.Cond
	stall  bool
	conns  []net.Conn
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{lis: lis, target: target}
	p.cond = sync.NewCond(&p.mu)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *stallProxy) Addr() string { return p.lis.Addr().String() }

func (p *stallProxy) serve() {
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *stallProxy) handle(c net.Conn) {
	p.wait()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, c, up)
	p.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				p.wait()
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		dst.Close()
		src.Close()
	}
	go pipe(up, c)
	go pipe(c, up)
}

// wait blocks while the proxy is stalled.
func (p *stallProxy) wait() {
	p.mu.Lock()
	for p.stall {
		p.cond.Wait()
	}
	p.mu.Unlock()
}

// Stall stops forwarding; Resume forwards what waited and goes on.
func (p *stallProxy) Stall()  { p.set(true) }
func (p *stallProxy) Resume() { p.set(false) }

func (p *stallProxy) set(v bool) {
	p.mu.Lock()
	p.stall = v
	p.cond.Broadcast()
	p.mu.Unlock()
}

func (p *stallProxy) close() {
	p.Resume()
	p.lis.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestServiceKilledAndRestarted kills the device service (SIGKILL, as a
// crash or an OOM kill) under the edge: the edge answers 503 with
// Retry-After at once, not after a timeout, for as long as it is gone,
// and serves again within seconds of the service's return.
func TestServiceKilledAndRestarted(t *testing.T) {
	s := Start(t, nil)
	admin := s.AdminToken(t)
	dev := Expect(t, s.Do("POST", "/dhos/v1/device", admin, map[string]any{"location_id": "L1", "description": "ward tablet"}), 200).JSON(t)["uuid"].(string)
	Expect(t, s.Do("GET", "/dhos/v1/device/"+dev, admin, nil), 200)

	s.Kill("device")
	var slowest time.Duration
	for range 20 {
		r, took := call("GET", s.URL+"/dhos/v1/device/"+dev, admin, "")
		if r.Status != 503 || r.Header.Get("Retry-After") == "" {
			t.Fatalf("with the device service gone: %d %s (Retry-After %q), want 503 with Retry-After", r.Status, r.Body, r.Header.Get("Retry-After"))
		}
		slowest = max(slowest, took)
		time.Sleep(50 * time.Millisecond)
	}
	if slowest > time.Second {
		t.Fatalf("the slowest 503 took %v: the edge waited instead of answering at once", slowest)
	}

	s.StartAgain("device")
	back := time.Now()
	for {
		r, _ := call("GET", s.URL+"/dhos/v1/device/"+dev, admin, "")
		if r.Status == 200 {
			break
		}
		if r.Status != 503 {
			t.Fatalf("while the device service starts: %d %s, want 503 or 200", r.Status, r.Body)
		}
		if time.Since(back) > 15*time.Second {
			t.Fatalf("not served again 15s after the device service restarted: %d %s", r.Status, r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("503 at most %v after the kill; served again %v after the restart", slowest.Round(time.Millisecond), time.Since(back).Round(time.Millisecond))
}

// TestSlowDependency stalls, in turn, the connection from the edge to the
// activation service and the connections from the services to
// PostgreSQL, with TCP proxies that stop forwarding without closing
// anything. The calls' deadlines fire (the edge's 5s per call; a direct
// call without a deadline is cut by the service at RPC_TIMEOUT), the
// clients get 504 or 503 (never a hang or a 500), the processes'
// goroutines return to their baseline instead of piling up, and once the
// dependency answers again, so does the suite.
func TestSlowDependency(t *testing.T) {
	pg := postgresEnv(t)
	pgProxy := newStallProxy(t, net.JoinHostPort(pg["DATABASE_HOST"], pg["DATABASE_PORT"]))
	pg["DATABASE_HOST"], pg["DATABASE_PORT"] = "127.0.0.1", strings.Split(pgProxy.Addr(), ":")[1]
	realActivation := freePort(t)
	actProxy := newStallProxy(t, realActivation)
	pg["ACTIVATION_GRPC_ADDR"] = actProxy.Addr()
	pg["RPC_TIMEOUT"] = "3s"
	pg["LOG_LEVEL"] = "INFO"
	s := StartWith(t, pg, map[string]map[string]string{"activation": {"GRPC_LISTEN_ADDR": realActivation}})
	admin := s.AdminToken(t)
	list := s.URL + "/dhos/v1/patient/" + Unique("patient") + "/activation"
	for range 5 {
		if r, _ := call("GET", list, admin, ""); r.Status != 200 {
			t.Fatalf("warm-up: %d %s", r.Status, r.Body)
		}
	}

	// load sends n requests at once and checks every answer.
	load := func(phase string, n int, want ...int) {
		t.Helper()
		var wg sync.WaitGroup
		var slowest atomic.Int64
		errs := make(chan string, n)
		for range n {
			wg.Go(func() {
				r, took := call("GET", list, admin, "")
				slowest.Store(max(slowest.Load(), int64(took)))
				ok := false
				for _, w := range want {
					ok = ok || r.Status == w
				}
				if !ok {
					errs <- fmt.Sprintf("%d %s after %v", r.Status, r.Body, took)
				}
			})
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Errorf("%s: %s, want one of %v", phase, e, want)
		}
		if d := time.Duration(slowest.Load()); d > 12*time.Second {
			t.Errorf("%s: the slowest answer took %v", phase, d)
		}
		t.Logf("%s: %d requests answered, slowest after %v", phase, n, time.Duration(slowest.Load()).Round(time.Millisecond))
	}
	recovered := func(phase string) {
		t.Helper()
		start := time.Now()
		for {
			r, _ := call("GET", list, admin, "")
			if r.Status == 200 {
				t.Logf("%s: served again after %v", phase, time.Since(start).Round(time.Millisecond))
				return
			}
			if time.Since(start) > 15*time.Second {
				t.Fatalf("%s: not served 15s after the dependency answered again: %d %s", phase, r.Status, r.Body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// The edge -> activation connection stalls.
	edgeBase := goroutines(t, s, "gateway")
	actProxy.Stall()
	load("edge -> activation stalled", 30, 504)
	after := settle(t, s, "gateway", edgeBase+5, 10*time.Second)
	t.Logf("edge goroutines: %d before, %d after 30 stalled requests", edgeBase, after)
	if after > edgeBase+5 {
		t.Errorf("edge goroutines piled up: %d before, %d after", edgeBase, after)
	}
	actProxy.Resume()
	recovered("edge -> activation")

	// The services -> PostgreSQL connections stall.
	actBase := goroutines(t, s, "activation")
	edgeBase = goroutines(t, s, "gateway")
	pgProxy.Stall()
	load("services -> PostgreSQL stalled", 30, 503, 504)
	// A direct call without any deadline is cut by the service.
	cc, err := grpc.NewClient(s.Addr["activation"], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	start := time.Now()
	_, err = activationv1.NewActivationServiceClient(cc).ListPatientActivations(
		metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+admin),
		&activationv1.ListPatientActivationsRequest{PatientId: "no-deadline"})
	if c := status.Code(err); (c != codes.DeadlineExceeded && c != codes.Unavailable) || time.Since(start) > 6*time.Second {
		t.Errorf("a call without a deadline on a stalled database: %v after %v, want DEADLINE_EXCEEDED at RPC_TIMEOUT (3s)", err, time.Since(start))
	} else {
		t.Logf("a call without a deadline: %v after %v", status.Code(err), time.Since(start).Round(time.Millisecond))
	}
	for p, base := range map[string]int{"activation": actBase, "gateway": edgeBase} {
		after := settle(t, s, p, base+5, 15*time.Second)
		t.Logf("%s goroutines: %d before, %d after the stalled database", p, base, after)
		if after > base+5 {
			t.Errorf("%s goroutines piled up: %d before, %d after", p, base, after)
		}
	}
	pgProxy.Resume()
	recovered("services -> PostgreSQL")
}

// privatePostgres runs a PostgreSQL server of its own (its own data
// folder and port), for a test that stops and starts it: the shared
// server is never restarted. It returns the port and a function that
// runs pg_ctl with arguments.
func privatePostgres(t *testing.T) (port string, pgctl func(args ...string) error) {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		if os.Getenv("REQUIRE_POSTGRES") == "1" {
			t.Fatal("REQUIRE_POSTGRES=1 but no PostgreSQL server binaries (initdb) are installed")
		}
		t.Skip("no PostgreSQL server binaries (initdb): skipping the restart test")
	}
	bin := filepath.Dir(bins[len(bins)-1])
	dir, err := os.MkdirTemp("", "dhosauth-pg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// initdb refuses to run as root: run the server as postgres then.
	var asUser []string
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal("running as root and there is no postgres user to run PostgreSQL as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	run := func(name string, args ...string) error {
		argv := append(append(append([]string{}, asUser...), filepath.Join(bin, name)), args...)
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v\n%s", name, err, out)
		}
		return nil
	}
	data := filepath.Join(dir, "data")
	if err := run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"); err != nil {
		t.Fatal(err)
	}
	port = strings.Split(freePort(t), ":")[1]
	opts := fmt.Sprintf("-p %s -k %s -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off", port, dir)
	pgctl = func(args ...string) error {
		return run("pg_ctl", append([]string{"-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "30"}, args...)...)
	}
	if err := pgctl("start"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pgctl("stop", "-m", "immediate") })
	return port, pgctl
}

// TestPostgresRestartUnderLoad restarts the database under the suite
// while clients create and validate patient activations: during the
// outage they get 503 with Retry-After, never a 500; the suite serves
// again within seconds of the database's return; and counting the
// activations in the database afterwards, every one a client was told
// about exists exactly once, every validation it was told succeeded is
// recorded, and no patient has two.
func TestPostgresRestartUnderLoad(t *testing.T) {
	port, pgctl := privatePostgres(t)
	s := Start(t, map[string]string{
		"DATABASE_HOST": "127.0.0.1", "DATABASE_PORT": port, "DATABASE_USER": "postgres",
		"DATABASE_NAME": "postgres", "DATABASE_SSLMODE": "disable", "LOG_LEVEL": "INFO",
	})
	admin := s.AdminToken(t)

	type outcome struct{ created, validated bool }
	var (
		mu       sync.Mutex
		patients = map[string]*outcome{}
		statuses = map[int]int{}
		bad      []string
		lastOK   atomic.Int64
		upAt     atomic.Int64 // when the database was started again
		firstOK  atomic.Int64 // the first 200 after that, in ns since upAt
	)
	record := func(what string, r Response) {
		mu.Lock()
		defer mu.Unlock()
		statuses[r.Status]++
		switch {
		case r.Status == 200:
			now := time.Now().UnixNano()
			lastOK.Store(now)
			if u := upAt.Load(); u != 0 && now > u {
				firstOK.CompareAndSwap(0, now-u)
			}
		case r.Status == 503 && r.Header.Get("Retry-After") != "":
		default:
			bad = append(bad, fmt.Sprintf("%s: %d %s", what, r.Status, r.Body))
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				p := Unique("restart")
				o := &outcome{}
				mu.Lock()
				patients[p] = o
				mu.Unlock()
				r, _ := call("POST", s.URL+"/dhos/v1/patient/"+p+"/activation", admin, "")
				record("create", r)
				if r.Status != 200 {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				m := r.JSON(t)
				s.Secret(m["activation_code"].(string))
				mu.Lock()
				o.created = true
				mu.Unlock()
				r, _ = call("POST", s.URL+"/dhos/v1/activation/"+m["activation_code"].(string), "", `{"otp":"`+m["otp"].(string)+`"}`)
				record("validate", r)
				if r.Status == 200 {
					s.Secret(r.JSON(t)["authorisation_code"].(string))
					mu.Lock()
					o.validated = true
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(2 * time.Second)
	if err := pgctl("stop", "-m", "fast"); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	time.Sleep(2 * time.Second)
	if err := pgctl("start"); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	upAt.Store(up.UnixNano())
	// Load goes on until the suite has served for a while again.
	for time.Since(up) < 20*time.Second {
		if ok := lastOK.Load(); ok > up.UnixNano() && time.Since(time.Unix(0, ok)) < time.Second && time.Since(up) > 5*time.Second {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("statuses %v; database down for %v", statuses, up.Sub(down).Round(time.Millisecond))
	for _, b := range bad {
		t.Errorf("not 200 or 503 with Retry-After: %s", b)
	}
	if statuses[503] == 0 {
		t.Error("no 503 during the outage: the restart was not noticed")
	}
	back := time.Duration(firstOK.Load())
	if back == 0 || back > 10*time.Second {
		t.Fatalf("not served again within 10s of the database's return (first success %v after)", back)
	}
	t.Logf("first success %v after the database was back", back.Round(time.Millisecond))

	conn, err := pgx.Connect(context.Background(), "postgres://postgres@127.0.0.1:"+port+"/postgres?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT patient_id, count(*), count(completed) FROM activation.patient_activation GROUP BY patient_id`)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string][2]int{}
	for rows.Next() {
		var id string
		var n, done int
		if err := rows.Scan(&id, &n, &done); err != nil {
			t.Fatal(err)
		}
		stored[id] = [2]int{n, done}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	created, validated := 0, 0
	for p, o := range patients {
		got := stored[p]
		if got[0] > 1 {
			t.Errorf("patient %s has %d activations: duplicated", p, got[0])
		}
		if o.created {
			created++
			if got[0] != 1 {
				t.Errorf("patient %s: the client was given an activation, the database has %d", p, got[0])
			}
		}
		if o.validated {
			validated++
			if got[1] != 1 {
				t.Errorf("patient %s: the client's validation succeeded, the database has %d completed", p, got[1])
			}
		}
	}
	t.Logf("%d activations created and %d validated by the clients; %d patients in the database", created, validated, len(stored))
	if created < 10 {
		t.Errorf("only %d activations created: no load", created)
	}
}
