// Package testport picks loopback TCP ports for processes that tests and
// benchmarks start, which bind them later.
//
// The usual way — listen on 127.0.0.1:0, note the port, close, hand the
// address to a child — takes a port from the kernel's ephemeral range
// (/proc/sys/net/ipv4/ip_local_port_range, 32768–60999 by default). That
// range is also where the kernel takes the local port of every outgoing TCP
// connection and of every other test's :0 listener, so between the close
// and the child's bind the port is often taken again (PostgreSQL clients,
// gRPC dials and parallel test binaries open connections all the time),
// and the child exits with "address already in use".
//
// Addr instead picks from a pool below the ephemeral range (by default
// 20000 up to the range's start), where the kernel never allocates on its
// own: only a process that binds the port explicitly can take it. Each
// process walks the pool from its own starting point (derived from its
// process id and start time), so test binaries that go test runs in
// parallel, each using this package, pick different ports; a process never
// hands out the same port twice; and every candidate is checked by
// listening on it, so a port in use is skipped.
package testport

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// rangeFile is where Linux keeps its ephemeral port range.
const rangeFile = "/proc/sys/net/ipv4/ip_local_port_range"

// The ephemeral range assumed when rangeFile cannot be read (Linux's
// default).
const (
	defaultEphemeralFirst = 32768
	defaultEphemeralLast  = 60999
)

// minPool is the fewest ports a pool must have to be used.
const minPool = 1000

var (
	initOnce    sync.Once
	first, size int    // the pool is first … first+size-1; size 0: none
	start       uint64 // this process's starting point in the pool
	next        atomic.Uint64
	mu          sync.Mutex
	reserved    = map[int]bool{} // ports handed out (or being checked)
)

func setup() {
	lo, hi := ephemeralRange()
	first, size = pool(lo, hi)
	start = mix(uint64(os.Getpid())<<32 ^ uint64(time.Now().UnixNano()))
}

// ephemeralRange reads the kernel's ephemeral port range, or returns the
// default one.
func ephemeralRange() (lo, hi int) {
	b, err := os.ReadFile(rangeFile)
	if err != nil {
		return defaultEphemeralFirst, defaultEphemeralLast
	}
	return parseRange(string(b))
}

// parseRange parses rangeFile's content ("32768\t60999\n"), or returns the
// default range if it does not hold two ports in order.
func parseRange(s string) (lo, hi int) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return defaultEphemeralFirst, defaultEphemeralLast
	}
	a, err1 := strconv.Atoi(f[0])
	b, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
		return defaultEphemeralFirst, defaultEphemeralLast
	}
	return a, b
}

// pool returns the ports to pick from (first … first+n-1) given the
// ephemeral range lo … hi: 20000 up to lo-1, or else 10000 up to lo-1, or
// else above hi, or else 1024 up to lo-1, whichever first has at least
// minPool ports. n is 0 when none has: the ephemeral range covers almost
// every port, and Addr falls back to the kernel's choice.
func pool(lo, hi int) (first, n int) {
	for _, c := range []struct{ first, last int }{
		{20000, lo - 1},
		{10000, lo - 1},
		{hi + 1, 65535},
		{1024, lo - 1},
	} {
		if n := c.last - c.first + 1; n >= minPool {
			return c.first, n
		}
	}
	return 0, 0
}

// mix scrambles x (SplitMix64's finaliser), so that nearby process ids
// start far apart.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// ErrExhausted is returned when every port of the pool was handed out or
// is in use.
var ErrExhausted = errors.New("testport: no free port left in the pool")

// Addr returns "127.0.0.1:<port>" of a port outside the kernel's ephemeral
// range that was free when Addr returned (it listened on it and closed)
// and that this process has not handed out before. It is safe for
// concurrent use.
func Addr() (string, error) {
	p, err := Port()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

// Port is Addr's port number.
func Port() (int, error) {
	initOnce.Do(setup)
	if size == 0 {
		return kernelPort()
	}
	for range size {
		p := first + int((start+next.Add(1)-1)%uint64(size))
		mu.Lock()
		taken := reserved[p]
		reserved[p] = true
		mu.Unlock()
		if taken {
			continue
		}
		if free(p) {
			return p, nil
		}
		// In use by someone else: it may be free when the walk comes
		// round again.
		mu.Lock()
		delete(reserved, p)
		mu.Unlock()
	}
	return 0, ErrExhausted
}

// free reports whether the port can be listened on at 127.0.0.1 now.
func free(p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// kernelPort is the fallback when there is no pool: a port the kernel
// picks (in its ephemeral range, with the race this package avoids
// otherwise).
func kernelPort() (int, error) {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("testport: %w", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		mu.Lock()
		taken := reserved[p]
		reserved[p] = true
		mu.Unlock()
		if !taken {
			return p, nil
		}
	}
	return 0, ErrExhausted
}
