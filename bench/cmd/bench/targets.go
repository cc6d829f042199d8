package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/dhosauth/dhosauth/bench/internal/report"
)

// targets judges the run against the performance issue's targets and the
// token platform's VerifyToken figures.
func targets(r *report.Run) []report.Target {
	var out []report.Target
	add := func(name, want, measured string, met bool) {
		out = append(out, report.Target{Name: name, Want: want, Measured: measured, Met: met})
	}
	a, okA := r.Find("a-patient-max")
	f, okF := r.Find("f-scrypt")
	if okA {
		add("patient flows (a), PostgreSQL", "≥ 1,000 /s", fmt.Sprintf("%.0f /s", a.Flows.Rate), a.Flows.Rate >= 1000 && a.Flows.Errors == 0)
	}
	if okA && okF && f.Flows.Rate > 0 {
		x := a.Flows.Rate / f.Flows.Rate
		add("patient flows (a) vs the original design's scrypt (f)", "≥ 50×", fmt.Sprintf("%.0f× (%.0f /s vs %.1f /s)", x, a.Flows.Rate, f.Flows.Rate), x >= 50)
	}
	for _, key := range []string{"a-patient-half", "b-device-half", "c-clinician-half"} {
		s, ok := r.Find(key)
		if !ok {
			continue
		}
		worst, name := 0.0, ""
		var parts []string
		for _, step := range s.StepOrder {
			p := s.Steps[step].P99
			parts = append(parts, fmt.Sprintf("%s %.1f", step, p))
			if p > worst {
				worst, name = p, step
			}
		}
		_ = name
		errs := s.Flows.Errors
		add("p99 of each REST call at half the highest rate, "+strings.TrimSuffix(s.Title, ", half that rate"), "< 25 ms",
			strings.Join(parts, ", ")+" ms ("+s.Load+")", worst < 25 && errs == 0)
	}
	if s, ok := r.Find("d-verify-seen"); ok {
		add("VerifyToken, seen tokens", "≥ 15,000 /s", fmt.Sprintf("%.0f /s", s.Flows.Rate), s.Flows.Rate >= 15000 && s.Flows.Errors == 0)
	}
	in, okIn := r.Find("e-verify-inprocess")
	if s, ok := r.Find("d-verify-unseen"); ok && okIn && in.Flows.Rate > 0 {
		p := 100 * s.Flows.Rate / in.Flows.Rate
		measured := fmt.Sprintf("%.0f%% (%.0f /s of %.0f /s)", p, s.Flows.Rate, in.Flows.Rate)
		if bare, ok := r.Find("e-verify-bare-grpc"); ok {
			// What the gRPC transport allows, apart from the token service.
			measured += fmt.Sprintf("; a bare grpc-go server: %.0f%% (%.0f /s)", 100*bare.Flows.Rate/in.Flows.Rate, bare.Flows.Rate)
		}
		add("VerifyToken, unseen tokens", "≥ 70% of in-process verification", measured, p >= 70 && s.Flows.Errors == 0)
	}
	for _, key := range []string{"d-verify-seen-paced", "d-verify-unseen-paced"} {
		if s, ok := r.Find(key); ok {
			which := "seen"
			if key == "d-verify-unseen-paced" {
				which = "unseen"
			}
			add("VerifyToken p99, "+which+" tokens, "+s.Load, "< 5 ms", fmt.Sprintf("%.2f ms", s.Flows.P99), s.Flows.P99 < 5 && s.Flows.Errors == 0)
		}
	}
	if len(r.Startup) > 0 {
		var names []string
		for n := range r.Startup {
			names = append(names, n)
		}
		slices.Sort(names)
		worstRSS, worstReady := 0.0, 0.0
		var rss, ready []string
		for _, n := range names {
			st := r.Startup[n]
			worstRSS = max(worstRSS, st.IdleRSSMiB)
			worstReady = max(worstReady, st.ReadyMs)
			rss = append(rss, fmt.Sprintf("%s %.1f", n, st.IdleRSSMiB))
			ready = append(ready, fmt.Sprintf("%s %.0f", n, st.ReadyMs))
		}
		add("idle RSS of each process", "< 40 MiB", strings.Join(rss, ", ")+" MiB", worstRSS < 40)
		add("start-up to ready (fresh database, migrations included)", "< 1 s", strings.Join(ready, ", ")+" ms", worstReady < 1000)
	}
	return out
}
