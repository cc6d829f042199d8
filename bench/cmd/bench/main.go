// Command bench is the suite's benchmark (make bench): it starts the real
// binaries on a fresh PostgreSQL database, drives them with the load
// generator in this process, and writes one JSON file per run and a chart
// of every run in the results folder.
//
// Scenarios: (a) the patient flow through the REST edge, (b) the device
// flow, (c) a clinician's sign-in with a device JWT, (d) VerifyToken over
// gRPC for seen and unseen tokens, (e) the same operations in-process
// without network (the floor), (f) the original design's scrypt hashing
// per patient flow. See docs/performance.md.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dhosauth/dhosauth/bench/internal/chart"
	"github.com/dhosauth/dhosauth/bench/internal/load"
	"github.com/dhosauth/dhosauth/bench/internal/proc"
	"github.com/dhosauth/dhosauth/bench/internal/report"
	"github.com/dhosauth/dhosauth/bench/internal/suite"
	"github.com/dhosauth/dhosauth/internal/admin"
	"github.com/jackc/pgx/v5"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == bareArg {
		if err := serveBare(); err != nil {
			fmt.Fprintln(os.Stderr, "bench: bare server:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// mode holds the lengths and loads of one mode.
type mode struct {
	warm, flow, open, rest, verify, scrypt, floor time.Duration
	workers                                       int
}

var modes = map[string]mode{
	"quick": {warm: 2 * time.Second, flow: 8 * time.Second, open: 6 * time.Second, rest: 5 * time.Second, verify: 3 * time.Second, scrypt: 3 * time.Second, floor: 2 * time.Second, workers: 32},
	"full":  {warm: 5 * time.Second, flow: 30 * time.Second, open: 20 * time.Second, rest: 20 * time.Second, verify: 10 * time.Second, scrypt: 15 * time.Second, floor: 6 * time.Second, workers: 32},
}

type options struct {
	mode     string
	bin      string
	pg       string
	out      string
	only     string
	workers  int
	profile  bool
	notes    string
	rate     int
	logLevel string
	floorBin string
	env      envFlag
}

// envFlag collects -env NAME=value.
type envFlag map[string]string

func (e *envFlag) String() string { return fmt.Sprint(map[string]string(*e)) }

func (e *envFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want NAME=value, got %q", v)
	}
	if *e == nil {
		*e = envFlag{}
	}
	(*e)[k] = val
	return nil
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.mode, "mode", envOr("BENCH", "quick"), "quick (under two minutes) or full")
	fs.StringVar(&o.bin, "bin", "bin", "folder of the built binaries (make build)")
	fs.StringVar(&o.pg, "pg", envOr("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "PostgreSQL URL allowed to create and drop the benchmark's database")
	fs.StringVar(&o.out, "out", "bench/results", "folder of the JSON results and the chart")
	fs.StringVar(&o.only, "only", "", "comma-separated scenario letters to run (default all: abcdef)")
	fs.IntVar(&o.workers, "workers", 0, "flows in flight in the closed-loop REST runs (default per mode)")
	fs.BoolVar(&o.profile, "profile", false, "capture CPU profiles of the edge and the activation service during the patient flow")
	fs.StringVar(&o.notes, "notes", os.Getenv("BENCH_NOTES"), "a note kept with the run (what else ran on the machine)")
	fs.IntVar(&o.rate, "verify-rate", 5000, "VerifyToken calls per second in the fixed-rate runs")
	fs.StringVar(&o.logLevel, "log-level", "WARN", "LOG_LEVEL of the suite's processes")
	fs.StringVar(&o.floorBin, "floor-bin", "bin/bench", "folder of the in-process floor test binaries (make bench builds them)")
	fs.Var(&o.env, "env", "NAME=value added to every process's environment (repeatable)")
	hold := fs.Duration("hold", 0, "keep the suite running this long after it is ready, before any scenario (to inspect it: the ops listeners are printed)")
	chartOnly := fs.Bool("chart", false, "only draw the chart of the runs in -out, and print the latest run's tables")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *chartOnly {
		return redraw(o.out)
	}
	m, ok := modes[o.mode]
	if !ok {
		return fmt.Errorf("unknown mode %q (quick or full)", o.mode)
	}
	if o.workers > 0 {
		m.workers = o.workers
	}
	want := func(letter string) bool { return o.only == "" || strings.Contains(o.only, letter) }
	began := time.Now()
	r := &report.Run{ID: began.UTC().Format("20060102T150405Z"), Mode: o.mode, Machine: machine(ctx, o.pg), Notes: o.notes, Startup: map[string]report.Startup{}}
	fmt.Printf("bench: %s mode, %d CPUs, load average %.2f; results in %s\n", o.mode, r.Machine.CPUs, r.Machine.LoadBefore, o.out)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	env := map[string]string{"LOG_LEVEL": o.logLevel}
	for k, v := range o.env {
		env[k] = v
	}
	if len(o.env) > 0 {
		r.Env = o.env
	}
	s, err := suite.Start(ctx, suite.Options{BinDir: o.bin, AdminURL: o.pg, SigningKey: key, Log: os.Stderr, Env: env})
	if err != nil {
		return err
	}
	defer s.Stop()
	r.SuiteReadyMs = ms(s.Ready)
	for name, p := range s.Procs {
		r.Startup[name] = report.Startup{ReadyMs: ms(p.Ready), IdleRSSMiB: mib(p.IdleRSS)}
		fmt.Printf("  %-10s ready in %4.0f ms, idle RSS %5.1f MiB\n", name, ms(p.Ready), mib(p.IdleRSS))
	}
	if *hold > 0 {
		for name, p := range s.Procs {
			fmt.Printf("  %-10s pid %d, ops http://%s/debug/pprof/\n", name, p.Pid(), p.Ops)
		}
		select {
		case <-time.After(*hold):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	b := &bencher{ctx: ctx, s: s, r: r, m: m, o: o}
	if err := b.prepare(); err != nil {
		return err
	}
	defer b.client.Close()

	// The original design's hashing first, on an idle suite, before the
	// load leaves PostgreSQL work to do (autovacuum): its best case.
	if want("f") {
		b.scrypt()
	}
	if want("a") {
		if err := b.patient(); err != nil {
			return err
		}
	}
	if want("b") || want("c") {
		if err := b.device(want("b")); err != nil {
			return err
		}
	}
	if want("c") {
		if err := b.clinician(); err != nil {
			return err
		}
	}
	if want("d") {
		if err := b.verify(key); err != nil {
			return err
		}
	}
	if want("e") {
		if err := b.floor(); err != nil {
			return err
		}
	}
	r.Targets = targets(r)
	r.DurationS = round(time.Since(began).Seconds(), 1)
	path, err := r.Write(o.out)
	if err != nil {
		return err
	}
	fmt.Printf("\nwrote %s\n\n", path)
	r.Markdown(os.Stdout)
	runs, err := report.Load(o.out)
	if err != nil {
		return err
	}
	png := filepath.Join(o.out, "chart.png")
	if err := chart.Write(png, runs); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	fmt.Printf("\nwrote %s (%d runs)\n", png, len(runs))
	return nil
}

// redraw draws the chart of the runs in dir and prints the latest run.
func redraw(dir string) error {
	runs, err := report.Load(dir)
	if err != nil {
		return err
	}
	if len(runs) == 0 {
		return fmt.Errorf("no runs in %s", dir)
	}
	runs[len(runs)-1].Markdown(os.Stdout)
	png := filepath.Join(dir, "chart.png")
	if err := chart.Write(png, runs); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s (%d runs)\n", png, len(runs))
	return nil
}

type bencher struct {
	ctx    context.Context
	s      *suite.Suite
	r      *report.Run
	m      mode
	o      options
	client *load.Client
	admin  string
	runID  string
	devs   *load.Devices
	// lastDB is PostgreSQL's work per flow in the last phase.
	lastDB *report.DBWork
	// extra are processes outside the suite whose CPU a phase counts
	// (the bare reference server).
	extra map[string][]int
}

func (b *bencher) prepare() error {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	tok, err := admin.MintSystemToken(ctx, b.s.GRPC["token"], []byte(suite.InternalKey), "bench", admin.DefaultScopes)
	if err != nil {
		return err
	}
	b.admin = tok
	b.runID = strconv.FormatInt(time.Now().Unix()%1e6, 36)
	b.client = load.NewClient(b.s.URL, 1024)
	return nil
}

// phase runs fn while measuring what every process uses, and returns
// the usage per completed flow.
func (b *bencher) phase(fn func() load.Result) (load.Result, map[string]report.Usage) {
	pids := map[string][]int{}
	for name, p := range b.s.Procs {
		pids[name] = []int{p.Pid()}
		_ = proc.ResetPeak(p.Pid())
	}
	pids["loadgen"] = []int{os.Getpid()}
	for name, ps := range b.extra {
		pids[name] = ps
	}
	pg, err := b.s.PostgresPids(b.ctx)
	if err == nil {
		pids["postgres"] = pg
	}
	before := map[string]time.Duration{}
	for name, ps := range pids {
		before[name] = cpuOf(ps)
	}
	dbBefore, dbErr := b.s.DBStats(b.ctx)
	start := time.Now()
	res := fn()
	wall := time.Since(start)
	b.lastDB = nil
	if dbAfter, err := b.s.DBStats(b.ctx); err == nil && dbErr == nil && res.Flows.Count > 0 {
		b.lastDB = dbAfter.Sub(dbBefore).PerFlow(res.Flows.Count)
	}
	// Backends opened during the run count too.
	if pg2, err := b.s.PostgresPids(b.ctx); err == nil {
		pids["postgres"] = pg2
	}
	use := map[string]report.Usage{}
	for name, ps := range pids {
		cpu := (cpuOf(ps) - before[name]).Seconds()
		u := report.Usage{CPUSeconds: round(cpu, 2), Cores: round(cpu/wall.Seconds(), 2)}
		if res.Flows.Count > 0 {
			u.CPUPerFlowMs = round(cpu*1000/float64(res.Flows.Count), 3)
		}
		if name != "postgres" {
			if mem, err := proc.Mem(ps[0]); err == nil {
				u.PeakRSSMiB = mib(mem.Peak)
			}
		}
		use[name] = u
	}
	return res, use
}

// cpuOf sums the CPU time of pids (a process that has exited counts 0).
func cpuOf(pids []int) time.Duration {
	var t time.Duration
	for _, p := range pids {
		if d, err := proc.CPU(p); err == nil {
			t += d
		}
	}
	return t
}

func (b *bencher) add(key, title, loadDesc, unit string, steps []string, res load.Result, use map[string]report.Usage) report.Scenario {
	sc := report.Scenario{Key: key, Title: title, Load: loadDesc, Unit: unit, Flows: res.Flows, Processes: use,
		Errors: res.FirstErrors, DurationS: round(res.Elapsed.Seconds(), 2), Database: b.lastDB}
	if len(steps) > 0 {
		sc.Steps, sc.StepOrder = res.Steps, steps
	}
	b.r.Scenarios = append(b.r.Scenarios, sc)
	f := res.Flows
	fmt.Printf("  %-44s %-22s %9.1f /s  p50 %7.2f ms  p99 %7.2f ms  errors %d\n", title, loadDesc, f.Rate, f.P50, f.P99, f.Errors)
	if db := b.lastDB; db != nil && db.Commits > 0 {
		fmt.Printf("      PostgreSQL per flow: %.2f commits, %.2f rollbacks, rows: %.2f inserted, %.2f updated, %.2f deleted, %.2f fetched\n",
			db.Commits, db.Rollbacks, db.Inserted, db.Updated, db.Deleted, db.Fetched)
	}
	for _, e := range res.FirstErrors {
		fmt.Printf("      error: %s\n", e)
	}
	return sc
}

// restPair runs flow closed-loop for the highest rate, then open-loop at
// half that rate for the latency at half load.
func (b *bencher) restPair(key, title, unit string, steps []string, d time.Duration, flow load.Flow, profile bool) {
	var profiles []string
	var wg sync.WaitGroup
	res, use := b.phase(func() load.Result {
		if profile {
			wg.Go(func() { profiles = b.captureProfiles(key, b.m.warm+d/4, d/2, "gateway", "activation", "token") })
		}
		return load.Closed(b.ctx, steps, b.m.workers, b.m.warm, d, flow)
	})
	wg.Wait()
	b.r.Profiles = append(b.r.Profiles, profiles...)
	b.add(key+"-max", title+", highest rate", fmt.Sprintf("closed, %d in flight", b.m.workers), unit, steps, res, use)
	half := res.Flows.Rate / 2
	if half < 1 {
		return
	}
	res, use = b.phase(func() load.Result {
		return load.Open(b.ctx, steps, half, time.Duration(float64(b.m.open)*float64(d)/float64(b.m.flow)), 2048, flow)
	})
	b.add(key+"-half", title+", half that rate", fmt.Sprintf("open, %.0f/s", half), unit, steps, res, use)
}

func (b *bencher) patient() error {
	b.restPair("a-patient", "(a) patient flow, REST", "patient flow", load.FlowSteps, b.m.flow,
		load.PatientFlow(b.client, b.admin, b.runID), b.o.profile)
	return nil
}

func (b *bencher) device(measure bool) error {
	devs, err := load.CreateDevices(b.ctx, b.client, b.admin, b.runID, 2*b.m.workers)
	if err != nil {
		return fmt.Errorf("create devices: %w", err)
	}
	b.devs = devs
	flow := load.DeviceFlow(b.client, b.admin, devs)
	if !measure {
		load.Closed(b.ctx, load.FlowSteps, b.m.workers, 0, time.Second, flow)
		return nil
	}
	b.restPair("b-device", "(b) device flow, REST", "device flow", load.FlowSteps, b.m.rest, flow, false)
	return nil
}

func (b *bencher) clinician() error {
	idents, err := load.CreateClinicians(b.ctx, b.client, b.admin, b.runID, 64)
	if err != nil {
		return fmt.Errorf("create clinicians: %w", err)
	}
	jwts := b.devs.JWTs()
	if len(jwts) == 0 {
		return errors.New("no device JWTs for the clinician flow")
	}
	b.restPair("c-clinician", "(c) clinician sign-in with a device JWT, REST", "sign-in", []string{load.StepClinicianJWT}, b.m.rest,
		load.ClinicianFlow(b.client, jwts, idents), false)
	return nil
}

func (b *bencher) verify(key *ecdsa.PrivateKey) error {
	signer, err := load.NewSigner(key, suite.Issuer)
	if err != nil {
		return err
	}
	d := b.m.verify
	seen := signer.Tokens(1000)
	unseen := signer.Tokens(int(d.Seconds()) * (25000 + b.o.rate))
	res, use := b.phase(func() load.Result { return load.InProcessVerify(b.ctx, signer, unseen, d) })
	b.add("e-verify-inprocess", "(e) ES256 verification in-process, no cache", fmt.Sprintf("%d goroutines", runtime.GOMAXPROCS(0)), "verification", nil, res, use)
	const inflight = 64
	steps := []string{load.StepVerify}
	if err := b.verifyBare(signer, d, inflight); err != nil {
		return err
	}

	vc, err := load.DialToken(b.s.GRPC["token"], 4)
	if err != nil {
		return err
	}
	defer vc.Close()
	if err := vc.Warm(b.ctx, seen); err != nil {
		return err
	}
	var wg sync.WaitGroup
	res, use = b.phase(func() load.Result {
		if b.o.profile {
			wg.Go(func() {
				b.r.Profiles = append(b.r.Profiles, b.captureProfiles("verify-seen", d/4, d/2, "token")...)
			})
		}
		return load.Closed(b.ctx, steps, inflight, time.Second, d, vc.VerifyFlow(load.Cycle(seen)))
	})
	wg.Wait()
	b.add("d-verify-seen", "(d) VerifyToken over gRPC, seen tokens", fmt.Sprintf("closed, %d in flight", inflight), "call", nil, res, use)
	src := load.Once(unseen)
	res, use = b.phase(func() load.Result {
		if b.o.profile {
			wg.Go(func() {
				b.r.Profiles = append(b.r.Profiles, b.captureProfiles("verify-unseen", d/4, d/2, "token")...)
			})
		}
		return load.Closed(b.ctx, steps, inflight, 0, d, vc.VerifyFlow(src))
	})
	wg.Wait()
	b.add("d-verify-unseen", "(d) VerifyToken over gRPC, unseen tokens", fmt.Sprintf("closed, %d in flight", inflight), "call", nil, res, use)
	rate := float64(b.o.rate)
	res, use = b.phase(func() load.Result { return load.Open(b.ctx, steps, rate, d, 512, vc.VerifyFlow(load.Cycle(seen))) })
	b.add("d-verify-seen-paced", "(d) VerifyToken over gRPC, seen tokens", fmt.Sprintf("open, %d/s", b.o.rate), "call", nil, res, use)
	res, use = b.phase(func() load.Result { return load.Open(b.ctx, steps, rate, d, 512, vc.VerifyFlow(src)) })
	b.add("d-verify-unseen-paced", "(d) VerifyToken over gRPC, unseen tokens", fmt.Sprintf("open, %d/s", b.o.rate), "call", nil, res, use)
	return nil
}

// verifyBare measures the bare reference (bare.go): unseen tokens, the
// same client and load as d-verify-unseen.
func (b *bencher) verifyBare(signer *load.Signer, d time.Duration, inflight int) error {
	kid, _ := signer.Key()
	bp, err := startBare(b.ctx, signer.PrivateKey(), kid, suite.Issuer)
	if err != nil {
		return err
	}
	defer bp.Stop()
	vc, err := load.DialToken(bp.Addr, 4)
	if err != nil {
		return err
	}
	defer vc.Close()
	tokens := signer.Tokens(int(d.Seconds()) * 30000)
	b.extra = map[string][]int{"bare": {bp.Pid()}}
	defer func() { b.extra = nil }()
	res, use := b.phase(func() load.Result {
		return load.Closed(b.ctx, []string{load.StepVerify}, inflight, 0, d, vc.VerifyFlow(load.Once(tokens)))
	})
	b.add("e-verify-bare-grpc", "(e) the same verification behind a bare grpc-go server, unseen tokens", fmt.Sprintf("closed, %d in flight", inflight), "call", nil, res, use)
	return nil
}

func (b *bencher) scrypt() {
	res, use := b.phase(func() load.Result { return load.Scrypt(b.ctx, b.m.scrypt) })
	// Only the load generator worked: keep its usage alone.
	use = map[string]report.Usage{"loadgen": use["loadgen"]}
	b.add("f-scrypt", fmt.Sprintf("(f) original design: %d scrypt (N=%d, r=%d, p=%d) per flow", load.ScryptPerFlow, load.ScryptN, load.ScryptR, load.ScryptP),
		fmt.Sprintf("%d goroutines", runtime.GOMAXPROCS(0)), "patient flow", []string{load.StepScryptHash}, res, use)
}

// captureProfiles fetches CPU profiles of the edge and the activation
// service for d, after waiting for wait, into the results folder.
func (b *bencher) captureProfiles(tag string, wait, d time.Duration, procs ...string) []string {
	select {
	case <-time.After(wait):
	case <-b.ctx.Done():
		return nil
	}
	var mu sync.Mutex
	var out []string
	var wg sync.WaitGroup
	// The load generator's own profile, over the same window: its gRPC
	// client is part of what the VerifyToken figures include.
	if file := filepath.Join(b.o.out, "profiles", b.r.ID+"-"+tag+"-loadgen.pprof"); os.MkdirAll(filepath.Dir(file), 0o755) == nil {
		if f, err := os.Create(file); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				wg.Go(func() {
					select {
					case <-time.After(max(time.Second, d)):
					case <-b.ctx.Done():
					}
					pprof.StopCPUProfile()
					f.Close()
					mu.Lock()
					out = append(out, filepath.Join("profiles", filepath.Base(file)))
					mu.Unlock()
				})
			} else {
				f.Close()
			}
		}
	}
	for _, name := range procs {
		p := b.s.Procs[name]
		wg.Go(func() {
			u := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", p.Ops, max(1, int(d.Seconds())))
			resp, err := http.Get(u)
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench: profile %s: %v\n", name, err)
				return
			}
			defer resp.Body.Close()
			file := filepath.Join(b.o.out, "profiles", b.r.ID+"-"+tag+"-"+name+".pprof")
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				return
			}
			f, err := os.Create(file)
			if err != nil {
				return
			}
			_, err = io.Copy(f, resp.Body)
			f.Close()
			if err == nil {
				mu.Lock()
				out = append(out, filepath.Join("profiles", filepath.Base(file)))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out
}

func machine(ctx context.Context, pg string) report.Machine {
	m := report.Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %f kB", &kb); err == nil {
			m.MemoryGiB = round(kb/(1<<20), 1)
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) > 0 {
			m.LoadBefore, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if c, err := pgx.Connect(cctx, pg); err == nil {
		_ = c.QueryRow(cctx, "SHOW server_version").Scan(&m.Postgres)
		c.Close(context.Background())
	}
	return m
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 1) }
func mib(b int64) float64        { return round(float64(b)/(1<<20), 1) }

func round(v float64, places int) float64 {
	p := 1.0
	for range places {
		p *= 10
	}
	if v < 0 {
		return -float64(int64(-v*p+0.5)) / p
	}
	return float64(int64(v*p+0.5)) / p
}
