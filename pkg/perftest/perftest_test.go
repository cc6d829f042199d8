package perftest

import (
	"context"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 200; i++ {
		d = append(d, time.Duration(i))
	}
	if Percentile(d, 50) != 100 || Percentile(d, 99) != 198 || Percentile(d, 100) != 200 || Percentile(nil, 50) != 0 {
		t.Fatalf("percentiles %v %v %v", Percentile(d, 50), Percentile(d, 99), Percentile(d, 100))
	}
}

func BenchmarkParallel(b *testing.B) {
	Parallel(b, func(context.Context, int64) error { return nil })
}
