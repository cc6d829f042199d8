package testport

import (
	"net"
	"strconv"
	"sync"
	"testing"
)

func TestParseRange(t *testing.T) {
	for in, want := range map[string][2]int{
		"32768\t60999\n": {32768, 60999},
		"1024 65000":     {1024, 65000},
		"":               {defaultEphemeralFirst, defaultEphemeralLast},
		"40000":          {defaultEphemeralFirst, defaultEphemeralLast},
		"a b":            {defaultEphemeralFirst, defaultEphemeralLast},
		"50000 40000":    {defaultEphemeralFirst, defaultEphemeralLast},
		"0 70000":        {defaultEphemeralFirst, defaultEphemeralLast},
	} {
		if lo, hi := parseRange(in); lo != want[0] || hi != want[1] {
			t.Errorf("parseRange(%q) = %d, %d; want %d, %d", in, lo, hi, want[0], want[1])
		}
	}
}

func TestPool(t *testing.T) {
	for _, c := range []struct{ lo, hi, first, n int }{
		{32768, 60999, 20000, 12768}, // Linux's default: 20000–32767
		{49152, 65535, 20000, 29152}, // IANA's: 20000–49151
		{20500, 60999, 10000, 10500}, // too few above 20000
		{10500, 60999, 61000, 4536},  // too few below: above the range
		{5000, 65535, 1024, 3976},    // only below 10000 is left
		{1024, 65000, 0, 0},          // nothing left: the kernel picks
	} {
		first, n := pool(c.lo, c.hi)
		if first != c.first || n != c.n {
			t.Errorf("pool(%d, %d) = %d, %d; want %d, %d", c.lo, c.hi, first, n, c.first, c.n)
		}
		if n > 0 && first+n-1 >= c.lo && first <= c.hi {
			t.Errorf("pool(%d, %d) = %d…%d overlaps the ephemeral range", c.lo, c.hi, first, first+n-1)
		}
	}
}

// check fails the test unless addr is a loopback address outside the
// ephemeral range, inside the pool, and not seen before.
func check(t *testing.T, addr string, seen map[int]bool) {
	t.Helper()
	host, ps, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("Addr() = %q (%v), want 127.0.0.1:<port>", addr, err)
	}
	p, err := strconv.Atoi(ps)
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := ephemeralRange()
	if p >= lo && p <= hi {
		t.Errorf("port %d is in the ephemeral range %d–%d", p, lo, hi)
	}
	if size > 0 && (p < first || p >= first+size) {
		t.Errorf("port %d is outside the pool %d–%d", p, first, first+size-1)
	}
	if seen[p] {
		t.Errorf("port %d handed out twice", p)
	}
	seen[p] = true
}

func TestAddrDistinctOutsideEphemeralRange(t *testing.T) {
	seen := map[int]bool{}
	for range 500 {
		a, err := Addr()
		if err != nil {
			t.Fatal(err)
		}
		check(t, a, seen)
	}
	if size == 0 {
		t.Skip("no pool outside the ephemeral range on this machine")
	}
}

func TestAddrConcurrent(t *testing.T) {
	const workers, each = 8, 50
	addrs := make(chan string, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				a, err := Addr()
				if err != nil {
					t.Error(err)
					return
				}
				addrs <- a
			}
		})
	}
	wg.Wait()
	close(addrs)
	seen := map[int]bool{}
	for a := range addrs {
		check(t, a, seen)
	}
	if len(seen) != workers*each {
		t.Errorf("%d distinct ports, want %d", len(seen), workers*each)
	}
}

// TestAddrSkipsPortInUse occupies the port Addr would try next: Addr must
// hand out another one.
func TestAddrSkipsPortInUse(t *testing.T) {
	initOnce.Do(setup)
	if size == 0 {
		t.Skip("no pool outside the ephemeral range on this machine")
	}
	var l net.Listener
	var busy int
	for range 20 {
		busy = first + int((start+next.Load())%uint64(size))
		var err error
		if l, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(busy))); err == nil {
			break
		}
		// Already in use by someone: move on to the next candidate.
		next.Add(1)
	}
	if l == nil {
		t.Skip("could not occupy a candidate port")
	}
	defer l.Close()
	p, err := Port()
	if err != nil {
		t.Fatal(err)
	}
	if p == busy {
		t.Fatalf("Port() = %d, which is in use", p)
	}
	// The busy port was not reserved: it may be handed out once free.
	mu.Lock()
	r := reserved[busy]
	mu.Unlock()
	if r {
		t.Errorf("port %d, found in use, stays reserved", busy)
	}
}

// TestAddrIsBindable checks that the addresses can be listened on (as the
// processes they are for will).
func TestAddrIsBindable(t *testing.T) {
	for range 20 {
		a, err := Addr()
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("listen on %s: %v", a, err)
		}
		l.Close()
	}
}

func TestKernelPortFallback(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		p, err := kernelPort()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}
