package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dhosauth/dhosauth/bench/internal/report"
	"github.com/dhosauth/dhosauth/bench/internal/stats"
)

// floorPackages are the test binaries (built by make bench from these
// packages) whose BenchmarkFloor* functions are the in-process floor.
var floorPackages = map[string]string{
	"activation": "./services/activation/internal/activationgrpc",
	"token":      "./services/token/internal/tokengrpc",
	"device":     "./services/device/internal/devicegrpc",
	"session":    "./services/session/internal/sessiongrpc",
}

// floorPart is one measured piece of a flow's in-process work.
type floorPart struct {
	rate, p50, p95, p99 float64
	cpuMsPerOp          float64
}

// floor runs the floor benchmarks on the benchmark's database (each in
// schemas of its own) and composes the flows from their parts: the parts
// of a flow run one after the other on the same CPUs, so the flow's rate
// is 1 / (sum of 1/rate of each part, times how often the flow does it).
func (b *bencher) floor() error {
	parts := map[string]floorPart{}
	for _, name := range []string{"activation", "token", "device", "session"} {
		bin := filepath.Join(b.o.floorBin, name+"-floor.test")
		if _, err := os.Stat(bin); err != nil {
			fmt.Printf("  (e) floor: %s missing (make bench builds it: go test -c -o %s %s); skipped\n", bin, bin, floorPackages[name])
			return nil
		}
		got, err := runFloor(bin, b.s.DatabaseURL, b.m.floor)
		if err != nil {
			return fmt.Errorf("floor %s: %w", name, err)
		}
		for k, v := range got {
			parts[name+"/"+k] = v
		}
	}
	compose := func(key, title, unit string, uses []struct {
		part  string
		times int
	}) {
		var perFlow, cpu, p50, p95, p99 float64
		steps := map[string]stats.Summary{}
		var order []string
		for _, u := range uses {
			p, ok := parts[u.part]
			if !ok || p.rate <= 0 {
				fmt.Printf("  (e) floor: no %s; %s skipped\n", u.part, key)
				return
			}
			n := float64(u.times)
			perFlow += n / p.rate
			cpu += n * p.cpuMsPerOp
			p50, p95, p99 = p50+n*p.p50, p95+n*p.p95, p99+n*p.p99
			name := u.part
			if u.times > 1 {
				name = fmt.Sprintf("%s ×%d", u.part, u.times)
			}
			steps[name] = stats.Summary{Rate: round(p.rate, 1), P50: p.p50, P95: p.p95, P99: p.p99}
			order = append(order, name)
		}
		rate := 1 / perFlow
		sc := report.Scenario{Key: key, Title: title, Load: fmt.Sprintf("in-process, %d in flight per CPU", 16), Unit: unit,
			Flows: stats.Summary{Rate: round(rate, 1), P50: round(p50, 3), P95: round(p95, 3), P99: round(p99, 3)},
			Steps: steps, StepOrder: order,
			Processes: map[string]report.Usage{report.InProcess: {CPUPerFlowMs: round(cpu, 3)}},
			DurationS: b.m.floor.Seconds()}
		b.r.Scenarios = append(b.r.Scenarios, sc)
		fmt.Printf("  %-44s %-22s %9.1f /s  (parts: %s)\n", title, sc.Load, rate, strings.Join(order, " + "))
	}
	type use = struct {
		part  string
		times int
	}
	compose("e-patient-floor", "(e) patient flow in-process (floor)", "patient flow",
		[]use{{"activation/PatientFlow", 1}, {"token/IssueToken/patient", 1}})
	compose("e-device-floor", "(e) device flow in-process (floor)", "device flow",
		[]use{{"activation/DeviceFlow", 1}, {"device/GetDevice", 2}, {"token/IssueToken/device", 1}})
	compose("e-clinician-floor", "(e) clinician sign-in in-process (floor)", "sign-in",
		[]use{{"session/ClinicianSignIn", 1}, {"device/GetDevice", 1}, {"token/IssueToken/clinician", 1}})
	return nil
}

// runFloor runs one floor test binary and reads its benchmark lines.
func runFloor(bin, dbURL string, d time.Duration) (map[string]floorPart, error) {
	cmd := exec.Command(bin, "-test.run", "^$", "-test.bench", "^BenchmarkFloor", "-test.benchtime", d.String(), "-test.count", "1")
	cmd.Env = append(os.Environ(), "TEST_DATABASE_URL="+dbURL, "REQUIRE_POSTGRES=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%v\n%s", err, out.String())
	}
	got := map[string]floorPart{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "BenchmarkFloor") {
			continue
		}
		name := strings.TrimPrefix(f[0], "BenchmarkFloor")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i] // the -GOMAXPROCS suffix
		}
		var p floorPart
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "flows/s":
				p.rate = v
			case "p50-ms":
				p.p50 = v
			case "p95-ms":
				p.p95 = v
			case "p99-ms":
				p.p99 = v
			case "cpu-ms/op":
				p.cpuMsPerOp = v
			}
		}
		got[name] = p
	}
	if len(got) == 0 {
		return nil, fmt.Errorf("no BenchmarkFloor results in:\n%s", out.String())
	}
	return got, nil
}
