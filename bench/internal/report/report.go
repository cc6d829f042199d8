// Package report is the benchmark's output: one JSON document per run,
// the targets it is judged against, and the Markdown table the README
// carries.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dhosauth/dhosauth/bench/internal/stats"
)

// Run is one run of the benchmark.
type Run struct {
	// ID is the run's timestamp (UTC, 20060102T150405Z): its file name.
	ID      string  `json:"id"`
	Mode    string  `json:"mode"`
	Machine Machine `json:"machine"`
	// Startup is each process's start-up to ready and idle memory.
	Startup map[string]Startup `json:"startup"`
	// SuiteReadyMs is from the first exec until every process was ready.
	SuiteReadyMs float64    `json:"suite_ready_ms"`
	Scenarios    []Scenario `json:"scenarios"`
	Targets      []Target   `json:"targets"`
	// Profiles are the CPU profiles captured, if any (files next to the
	// JSON).
	Profiles []string `json:"profiles,omitempty"`
	// Env is what the run added to the processes' environment.
	Env map[string]string `json:"env,omitempty"`
	// Notes say what else was running, or anything odd.
	Notes string `json:"notes,omitempty"`
	// DurationS is how long the whole run took.
	DurationS float64 `json:"duration_s"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs      int     `json:"cpus"`
	CPUModel  string  `json:"cpu_model"`
	MemoryGiB float64 `json:"memory_gib"`
	Kernel    string  `json:"kernel"`
	Go        string  `json:"go"`
	Postgres  string  `json:"postgres"`
	Commit    string  `json:"commit"`
	// LoadBefore is the 1-minute load average when the run started:
	// other work on the machine skews the figures.
	LoadBefore float64 `json:"load_before"`
}

// Startup is one process's start.
type Startup struct {
	ReadyMs    float64 `json:"ready_ms"`
	IdleRSSMiB float64 `json:"idle_rss_mib"`
}

// Scenario is one measured phase.
type Scenario struct {
	// Key is the letter and a name: "a-patient", "d-verify-seen".
	Key   string `json:"key"`
	Title string `json:"title"`
	// Load says how it was driven: "closed, 32 in flight" or "open,
	// 500/s".
	Load string `json:"load"`
	// Unit is what a flow is ("patient flow", "call", "hash").
	Unit  string                   `json:"unit"`
	Flows stats.Summary            `json:"flows"`
	Steps map[string]stats.Summary `json:"steps,omitempty"`
	// StepOrder lists Steps in the order of the flow.
	StepOrder []string `json:"step_order,omitempty"`
	// Processes is what each process used during the run.
	Processes map[string]Usage `json:"processes,omitempty"`
	// Errors are the first few errors, if any.
	Errors []string `json:"errors,omitempty"`
	// DurationS is the measured wall time.
	DurationS float64 `json:"duration_s"`
	// Database is PostgreSQL's work per flow (pg_stat_database).
	Database *DBWork `json:"database_per_flow,omitempty"`
}

// DBWork is what PostgreSQL did, from its statistics of the benchmark's
// database (per flow in Scenario.Database).
type DBWork struct {
	Commits   float64 `json:"commits"`
	Rollbacks float64 `json:"rollbacks"`
	Inserted  float64 `json:"rows_inserted"`
	Updated   float64 `json:"rows_updated"`
	Deleted   float64 `json:"rows_deleted"`
	Fetched   float64 `json:"rows_fetched"`
}

// Sub returns w minus o.
func (w DBWork) Sub(o DBWork) DBWork {
	return DBWork{w.Commits - o.Commits, w.Rollbacks - o.Rollbacks, w.Inserted - o.Inserted, w.Updated - o.Updated, w.Deleted - o.Deleted, w.Fetched - o.Fetched}
}

// PerFlow divides w by n flows.
func (w DBWork) PerFlow(n int) *DBWork {
	f := float64(n)
	r := func(v float64) float64 { return float64(int64(v/f*100+0.5)) / 100 }
	return &DBWork{r(w.Commits), r(w.Rollbacks), r(w.Inserted), r(w.Updated), r(w.Deleted), r(w.Fetched)}
}

// Usage is what one process (or PostgreSQL, all its processes together)
// used during a scenario.
type Usage struct {
	CPUSeconds float64 `json:"cpu_s"`
	// Cores is CPU seconds per wall second.
	Cores float64 `json:"cores"`
	// CPUPerFlowMs is CPU milliseconds per completed flow.
	CPUPerFlowMs float64 `json:"cpu_ms_per_flow"`
	// PeakRSSMiB is the peak resident set during the scenario (VmHWM
	// after a reset; 0 where not measured, e.g. PostgreSQL).
	PeakRSSMiB float64 `json:"peak_rss_mib,omitempty"`
}

// Target is one of the targets, judged.
type Target struct {
	Name     string `json:"name"`
	Want     string `json:"want"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

// Find returns the scenario with key, if the run has it.
func (r *Run) Find(key string) (Scenario, bool) {
	for _, s := range r.Scenarios {
		if s.Key == key {
			return s, true
		}
	}
	return Scenario{}, false
}

// Write saves the run as dir/<id>.json.
func (r *Run) Write(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, r.ID+".json")
	return p, os.WriteFile(p, append(b, '\n'), 0o644)
}

// Load reads every run in dir, oldest first.
func Load(dir string) ([]*Run, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	var out []*Run
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var r Run
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = append(out, &r)
	}
	return out, nil
}

// InProcess names the usage of an in-process floor scenario: the
// benchmark process running the services' code (PostgreSQL's CPU is not
// counted there).
const InProcess = "in-process"

// ProcessOrder is the order processes are listed in.
var ProcessOrder = []string{"gateway", "activation", "device", "session", "token", "postgres", "loadgen"}

// Markdown writes the run's scenario and target tables.
func (r *Run) Markdown(w io.Writer) {
	fmt.Fprintf(w, "Run %s (%s mode), %d CPUs (%s), load average %.2f at start, commit %s.\n\n",
		r.ID, r.Mode, r.Machine.CPUs, r.Machine.CPUModel, r.Machine.LoadBefore, r.Machine.Commit)
	fmt.Fprintln(w, "| scenario | load | rate | p50 | p95 | p99 | errors | CPU ms per flow: edge / activation / device / session / token / PostgreSQL / load generator |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, s := range r.Scenarios {
		fmt.Fprintf(w, "| %s | %s | %s /s | %s | %s | %s | %d | %s |\n", s.Title, s.Load, num(s.Flows.Rate), msec(s.Flows.P50), msec(s.Flows.P95), msec(s.Flows.P99), s.Flows.Errors, cpuCell(s))
		for _, name := range s.StepOrder {
			st := s.Steps[name]
			if len(s.StepOrder) < 2 {
				break
			}
			fmt.Fprintf(w, "| &nbsp;&nbsp;↳ %s | | | %s | %s | %s | %d | |\n", name, msec(st.P50), msec(st.P95), msec(st.P99), st.Errors)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | wanted | measured | met |")
	fmt.Fprintln(w, "| --- | --- | --- | --- |")
	for _, t := range r.Targets {
		met := "yes"
		if !t.Met {
			met = "**no**"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", t.Name, t.Want, t.Measured, met)
	}
}

func cpuCell(s Scenario) string {
	if len(s.Processes) == 0 {
		return ""
	}
	if u, ok := s.Processes[InProcess]; ok {
		return fmt.Sprintf("%.2f in the services' code, in one process (PostgreSQL not counted)", u.CPUPerFlowMs)
	}
	var parts []string
	for _, p := range ProcessOrder {
		u, ok := s.Processes[p]
		if !ok {
			parts = append(parts, "–")
			continue
		}
		parts = append(parts, fmt.Sprintf("%.2f", u.CPUPerFlowMs))
	}
	return strings.Join(parts, " / ")
}

func num(v float64) string {
	switch {
	case v >= 100:
		return commas(int64(v + 0.5))
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func commas(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func msec(v float64) string {
	switch {
	case v == 0:
		return "–"
	case v < 1:
		return fmt.Sprintf("%.2f ms", v)
	case v < 100:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.0f ms", v)
	}
}
