package proc

import (
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	line := "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 1500 0 0 0 250 75 0 0 20 0 12 0 100 0 0\n"
	d, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if d != 3250*time.Millisecond {
		t.Fatalf("cpu %v, want 3.25s", d)
	}
	if _, err := parseStat([]byte("1 (x) S 1")); err == nil {
		t.Fatal("short stat accepted")
	}
}

func TestParseStatus(t *testing.T) {
	st := "Name:\tgateway\nVmPeak:\t 2000 kB\nVmHWM:\t   30000 kB\nVmRSS:\t   25000 kB\nThreads:\t8\n"
	m, err := parseStatus([]byte(st))
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS != 25000<<10 || m.Peak != 30000<<10 {
		t.Fatalf("memory %+v", m)
	}
	if _, err := parseStatus([]byte("Name:\tx\n")); err == nil {
		t.Fatal("status without memory lines accepted")
	}
}

func TestSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if _, err := CPU(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	m, err := Mem(os.Getpid())
	if err != nil || m.RSS <= 0 || m.Peak < m.RSS {
		t.Fatalf("memory %+v, %v", m, err)
	}
}
