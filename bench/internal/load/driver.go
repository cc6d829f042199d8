// Package load drives the suite: closed-loop runs (a fixed number of
// flows in flight, for the highest rate) and open-loop runs (flows
// started at a fixed rate, for latency at a given load), and records each
// step's latency.
package load

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/dhosauth/dhosauth/bench/internal/stats"
)

// Flow is one complete operation of a scenario (a patient's three REST
// calls, one VerifyToken call, …). It times each of its steps with t.
type Flow func(ctx context.Context, t *Tally) error

// Tally records one goroutine's step and flow latencies.
type Tally struct {
	steps []*stats.Shard
	flow  *stats.Shard
	// due is when an open-loop flow was due to start: its first step is
	// timed from then, so a queue in front of the suite is not hidden.
	due time.Time
	// Worker numbers the tally (closed loop: the worker running it).
	Worker int
}

// Begin returns when step started: now, or when an open-loop flow was due
// for its first step.
func (t *Tally) Begin(step int) time.Time {
	if step == 0 && !t.due.IsZero() {
		return t.due
	}
	return time.Now()
}

// Done records that step, begun at start, succeeded.
func (t *Tally) Done(step int, start time.Time) { t.steps[step].Add(time.Since(start)) }

// Failed records that step failed.
func (t *Tally) Failed(step int) { t.steps[step].Error() }

// Result is what a run measured.
type Result struct {
	// Flows are the complete flows (rate: flows per second).
	Flows stats.Summary
	// Steps are each step's calls, by the scenario's step names.
	Steps map[string]stats.Summary
	// Elapsed is the wall time of the measured run.
	Elapsed time.Duration
	// FirstErrors are the first few errors seen.
	FirstErrors []string
}

type recorders struct {
	names []string
	steps []*stats.Recorder
	flow  stats.Recorder
	mu    sync.Mutex
	errs  []string
}

func newRecorders(names []string) *recorders {
	r := &recorders{names: names}
	for range names {
		r.steps = append(r.steps, &stats.Recorder{})
	}
	return r
}

func (r *recorders) tally(worker int) *Tally {
	t := &Tally{flow: r.flow.Shard(), Worker: worker}
	for _, s := range r.steps {
		t.steps = append(t.steps, s.Shard())
	}
	return t
}

func (r *recorders) fail(err error) {
	r.mu.Lock()
	if len(r.errs) < 5 {
		r.errs = append(r.errs, err.Error())
	}
	r.mu.Unlock()
}

func (r *recorders) result(elapsed time.Duration) Result {
	res := Result{Flows: r.flow.Summarize(elapsed), Steps: map[string]stats.Summary{}, Elapsed: elapsed, FirstErrors: r.errs}
	for i, n := range r.names {
		res.Steps[n] = r.steps[i].Summarize(elapsed)
	}
	return res
}

// Closed runs flow on workers goroutines, each starting its next flow
// when the last one ends, for d after a warm-up of warm (not measured).
func Closed(ctx context.Context, steps []string, workers int, warm, d time.Duration, flow Flow) Result {
	if warm > 0 {
		closed(ctx, newRecorders(steps), workers, warm, flow)
	}
	r := newRecorders(steps)
	elapsed := closed(ctx, r, workers, d, flow)
	return r.result(elapsed)
}

func closed(ctx context.Context, r *recorders, workers int, d time.Duration, flow Flow) time.Duration {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		t := r.tally(w)
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(stop) {
				t0 := time.Now()
				if err := flow(ctx, t); err != nil {
					t.flow.Error()
					r.fail(err)
					continue
				}
				t.flow.Add(time.Since(t0))
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// Open starts flows at rate per second for d (at most maxInFlight at
// once: beyond that the start waits, and the wait counts in the first
// step's latency).
func Open(ctx context.Context, steps []string, rate float64, d time.Duration, maxInFlight int, flow Flow) Result {
	r := newRecorders(steps)
	free := make(chan *Tally, maxInFlight)
	for i := range maxInFlight {
		free <- r.tally(i)
	}
	total := int(d.Seconds() * rate)
	interval := time.Duration(float64(time.Second) / rate)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range total {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		t := <-free
		t.due = due
		wg.Go(func() {
			defer func() { free <- t }()
			if err := flow(ctx, t); err != nil {
				t.flow.Error()
				r.fail(err)
				return
			}
			t.flow.Add(time.Since(due))
		})
	}
	wg.Wait()
	return r.result(time.Since(start))
}

// StatusError is a REST call that did not answer as expected.
type StatusError struct {
	Step   string
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	b := e.Body
	if len(b) > 200 {
		b = b[:200]
	}
	return fmt.Sprintf("%s: status %d: %s", e.Step, e.Status, b)
}
