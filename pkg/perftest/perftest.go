// Package perftest runs the in-process floor of the benchmark (make bench,
// scenario e): a service's own work for a flow, called as Go functions on
// a real PostgreSQL store, with no network and no serialisation between
// the caller and the service. Floor benchmarks are named BenchmarkFloor*
// and skip without TEST_DATABASE_URL.
package perftest

import (
	"context"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// InFlight is how many flows run at once per CPU (as the load generator
// keeps 32 flows in flight on two CPUs).
const InFlight = 16

// Parallel runs flow b.N times, InFlight per CPU at once, and reports the
// rate ("flows/s") and the latency percentiles ("p50-ms", "p95-ms",
// "p99-ms") besides ns/op. n numbers the flow (from 1).
func Parallel(b *testing.B, flow func(ctx context.Context, n int64) error) {
	ctx := context.Background()
	var next atomic.Int64
	var mu sync.Mutex
	var all []time.Duration
	b.SetParallelism(InFlight)
	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			t0 := time.Now()
			if err := flow(ctx, next.Add(1)); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		all = append(all, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	b.StopTimer()
	slices.Sort(all)
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "flows/s")
	if len(all) > 0 && cpu > 0 {
		// This process's CPU per flow (the database's is not in it).
		b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(len(all)), "cpu-ms/op")
	}
	for _, q := range []float64{50, 95, 99} {
		b.ReportMetric(float64(Percentile(all, q))/float64(time.Millisecond), "p"+strconv.Itoa(int(q))+"-ms")
	}
}

// Percentile is the nearest-rank q-th percentile of sorted (0 when empty).
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
