package stats

import (
	"sync"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {95, 95 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0.1, time.Millisecond}} {
		if got := Percentile(lat, c.q); got != c.want {
			t.Errorf("p%v = %v, want %v", c.q, got, c.want)
		}
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("empty: %v", got)
	}
	one := []time.Duration{7 * time.Millisecond}
	if Percentile(one, 1) != 7*time.Millisecond || Percentile(one, 99) != 7*time.Millisecond {
		t.Error("a single value is every percentile")
	}
}

func TestSummarizeSortsAndCounts(t *testing.T) {
	lat := []time.Duration{4 * time.Millisecond, time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond}
	s := Summarize(lat, 2, 2*time.Second)
	want := Summary{Count: 4, Errors: 2, Rate: 2, Mean: 2.5, P50: 2, P95: 4, P99: 4, Max: 4}
	if s != want {
		t.Fatalf("summary %+v, want %+v", s, want)
	}
	if z := Summarize(nil, 3, time.Second); z.Count != 0 || z.Errors != 3 || z.P99 != 0 || z.Rate != 0 {
		t.Fatalf("empty summary %+v", z)
	}
}

func TestRecorderMergesShards(t *testing.T) {
	var r Recorder
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			s := r.Shard()
			for i := range 1000 {
				s.Add(time.Duration(g*1000+i+1) * time.Microsecond)
			}
			s.Error()
		})
	}
	wg.Wait()
	s := r.Summarize(time.Second)
	if s.Count != 8000 || s.Errors != 8 || s.Rate != 8000 {
		t.Fatalf("summary %+v", s)
	}
	if s.P50 != 4 || s.Max != 8 {
		t.Fatalf("p50 %v max %v, want 4 and 8 ms", s.P50, s.Max)
	}
}
