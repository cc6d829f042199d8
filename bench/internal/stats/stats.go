// Package stats turns the latencies a load generator records into the
// figures the benchmark reports: count, errors, rate and percentiles.
package stats

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Recorder collects latencies from many goroutines. Each goroutine takes
// its own Shard, so recording takes no lock.
type Recorder struct {
	mu     sync.Mutex
	shards []*Shard
}

// Shard is one goroutine's part of a Recorder.
type Shard struct {
	lat    []time.Duration
	errors int
}

// Shard returns a new shard of r for one goroutine.
func (r *Recorder) Shard() *Shard {
	s := &Shard{lat: make([]time.Duration, 0, 1024)}
	r.mu.Lock()
	r.shards = append(r.shards, s)
	r.mu.Unlock()
	return s
}

// Add records one successful operation.
func (s *Shard) Add(d time.Duration) { s.lat = append(s.lat, d) }

// Error records one failed operation.
func (s *Shard) Error() { s.errors++ }

// Summary is what a run of one operation measured. Latencies are in
// milliseconds.
type Summary struct {
	Count  int     `json:"count"`
	Errors int     `json:"errors"`
	Rate   float64 `json:"rate_per_s"`
	Mean   float64 `json:"mean_ms"`
	P50    float64 `json:"p50_ms"`
	P95    float64 `json:"p95_ms"`
	P99    float64 `json:"p99_ms"`
	Max    float64 `json:"max_ms"`
}

// Summarize merges the shards (call it once every goroutine is done);
// elapsed is the wall time of the run, for the rate of successful
// operations.
func (r *Recorder) Summarize(elapsed time.Duration) Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []time.Duration
	errs := 0
	for _, s := range r.shards {
		all = append(all, s.lat...)
		errs += s.errors
	}
	return Summarize(all, errs, elapsed)
}

// Summarize computes the summary of latencies (sorted in place) and errs
// failures over elapsed.
func Summarize(lat []time.Duration, errs int, elapsed time.Duration) Summary {
	slices.Sort(lat)
	s := Summary{Count: len(lat), Errors: errs}
	if elapsed > 0 {
		s.Rate = round(float64(len(lat))/elapsed.Seconds(), 1)
	}
	if len(lat) == 0 {
		return s
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	s.Mean = ms(sum / time.Duration(len(lat)))
	s.P50 = ms(Percentile(lat, 50))
	s.P95 = ms(Percentile(lat, 95))
	s.P99 = ms(Percentile(lat, 99))
	s.Max = ms(lat[len(lat)-1])
	return s
}

// Percentile returns the q-th percentile (0 < q <= 100) of sorted by the
// nearest-rank method: the smallest value with at least q% of the values
// at or below it. It returns 0 for no values.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }

func round(v float64, places int) float64 {
	p := math.Pow10(places)
	return math.Round(v*p) / p
}
