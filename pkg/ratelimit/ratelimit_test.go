package ratelimit

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/dhosauth/dhosauth/pkg/storage"
	"github.com/dhosauth/dhosauth/pkg/storage/storagetest"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

func migrations() storage.Migrations {
	return storage.Migrations{Postgres: fstest.MapFS{}, SQLite: fstest.MapFS{}, Shared: []storage.NamedMigrations{Migrations()}}
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time            { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration)       { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock(t time.Time) *clock          { return &clock{t: t} }
func limit(max int, w time.Duration) Limit { return Limit{Name: "test", Max: max, Window: w} }

// TestConformance runs the limiter on both backends: the limit holds
// exactly, refusals count nothing and say when to come back, Return gives
// a success back, windows slide, limits are independent per bucket, a
// request's buckets count together or not at all, and expired counters
// are pruned.
func TestConformance(t *testing.T) {
	storagetest.Each(t, migrations(), func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

		t.Run("exact limit, retry after the window", func(t *testing.T) {
			c := newClock(start)
			s := New(db).WithClock(c.now)
			b := Bucket{Limit: limit(3, time.Minute), Key: "exact"}
			for i := range 3 {
				r, err := s.Take(ctx, b)
				if err != nil || !r.Allowed {
					t.Fatalf("attempt %d: %+v %v", i+1, r, err)
				}
			}
			r, err := s.Take(ctx, b)
			if err != nil || r.Allowed || r.Refused != "test" {
				t.Fatalf("4th attempt allowed: %+v %v", r, err)
			}
			// The window started at 12:00, three attempts in it: the
			// next fits once the weighted previous window is below 3.
			if r.RetryAfter < time.Minute || r.RetryAfter > 2*time.Minute {
				t.Fatalf("retry after %v", r.RetryAfter)
			}
			if hits, _, _ := s.Count(ctx, b); hits != 3 {
				t.Fatalf("a refusal counted: %d hits", hits)
			}
			c.add(r.RetryAfter)
			if r, _ := s.Take(ctx, b); !r.Allowed {
				t.Fatalf("refused after Retry-After (%v): %+v", r.RetryAfter, r)
			}
		})

		t.Run("sliding window weighs the previous one", func(t *testing.T) {
			c := newClock(start)
			s := New(db).WithClock(c.now)
			b := Bucket{Limit: limit(10, time.Minute), Key: "slide"}
			for range 10 {
				if r, _ := s.Take(ctx, b); !r.Allowed {
					t.Fatal("refused within the limit")
				}
			}
			// A quarter into the next window, 3/4 of the previous 10
			// still count: 7.5 + hits <= 10 allows two more.
			c.add(time.Minute + 15*time.Second)
			for i := range 2 {
				if r, _ := s.Take(ctx, b); !r.Allowed {
					t.Fatalf("attempt %d refused", i+1)
				}
			}
			if r, _ := s.Take(ctx, b); r.Allowed {
				t.Fatal("sliding window allowed a burst at the window's edge")
			}
			// Two windows later the old attempts are gone.
			c.add(2 * time.Minute)
			if r, _ := s.Take(ctx, b); !r.Allowed {
				t.Fatal("old windows still counted")
			}
		})

		t.Run("return gives a success back", func(t *testing.T) {
			s := New(db).WithClock(newClock(start).now)
			b := Bucket{Limit: limit(2, time.Minute), Key: "return"}
			for range 5 {
				r, err := s.Take(ctx, b)
				if err != nil || !r.Allowed {
					t.Fatalf("refused though each attempt was returned: %+v %v", r, err)
				}
				if err := s.Return(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
		})

		t.Run("buckets count together or not at all", func(t *testing.T) {
			s := New(db).WithClock(newClock(start).now)
			wide := Bucket{Limit: Limit{Name: "wide", Max: 100, Window: time.Minute}, Key: "k"}
			narrow := Bucket{Limit: Limit{Name: "narrow", Max: 1, Window: time.Minute}, Key: "k"}
			if r, _ := s.Take(ctx, wide, narrow); !r.Allowed {
				t.Fatal("first refused")
			}
			r, _ := s.Take(ctx, wide, narrow)
			if r.Allowed || r.Refused != "narrow" {
				t.Fatalf("second: %+v", r)
			}
			if hits, _, _ := s.Count(ctx, wide); hits != 1 {
				t.Fatalf("the refused request counted in the other bucket: %d", hits)
			}
			// Another key of the narrow limit is its own bucket.
			other := narrow
			other.Key = "other"
			if r, _ := s.Take(ctx, wide, other); !r.Allowed {
				t.Fatal("another key refused")
			}
			// A limit that is off counts nothing.
			off := Bucket{Limit: Limit{Name: "off"}, Key: "k"}
			for range 3 {
				if r, _ := s.Take(ctx, off); !r.Allowed {
					t.Fatal("off limit refused")
				}
			}
		})

		t.Run("concurrent takers never exceed the limit", func(t *testing.T) {
			s := New(db).WithClock(newClock(start).now)
			b := Bucket{Limit: limit(25, time.Hour), Key: "concurrent"}
			shared := Bucket{Limit: Limit{Name: "shared", Max: 1000, Window: time.Hour}, Key: "x"}
			var allowed atomic.Int32
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					for range 10 {
						// Both orders: the lock order is fixed inside Take.
						r, err := s.Take(ctx, b, shared)
						if err != nil {
							t.Error(err)
							return
						}
						if r.Allowed {
							allowed.Add(1)
						}
						r, err = s.Take(ctx, shared, b)
						if err != nil {
							t.Error(err)
							return
						}
						if r.Allowed {
							allowed.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if got := allowed.Load(); got != 25 {
				t.Fatalf("%d of 160 concurrent attempts allowed, want exactly 25", got)
			}
		})

		t.Run("a lagging clock does not reset a newer window", func(t *testing.T) {
			c := newClock(start.Add(time.Minute))
			s := New(db).WithClock(c.now)
			b := Bucket{Limit: limit(2, time.Minute), Key: "skew"}
			for range 2 {
				_, _ = s.Take(ctx, b)
			}
			lagging := New(db).WithClock(func() time.Time { return start.Add(59 * time.Second) })
			if r, _ := lagging.Take(ctx, b); r.Allowed {
				t.Fatal("a replica whose clock lags a second reset the counters")
			}
		})

		t.Run("expired counters are pruned", func(t *testing.T) {
			c := newClock(start.Add(24 * time.Hour))
			s := New(db).WithClock(c.now)
			_, _ = s.Take(ctx, Bucket{Limit: limit(5, time.Minute), Key: "prune-1"})
			before, _ := s.Rows(ctx)
			c.add(3 * time.Minute)
			s.lastPrune.Store(0)
			_, _ = s.Take(ctx, Bucket{Limit: limit(5, time.Minute), Key: "prune-2"})
			after, _ := s.Rows(ctx)
			if after >= before+1 || after < 1 {
				t.Fatalf("rows %d before, %d after: expired counters not pruned", before, after)
			}
		})
	})
}

// Reserve: failures stay counted, anything else is given back (even once
// the caller's context has ended), and a full bucket refuses with no
// settle; a nil limiter counts nothing.
func TestReserve(t *testing.T) {
	storagetest.Each(t, migrations(), func(t *testing.T, db storage.DB) {
		s := New(db).WithClock(newClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)).now)
		b := Bucket{Limit: limit(2, time.Minute), Key: "reserve"}
		for range 5 {
			ctx, cancel := context.WithCancel(context.Background())
			r, settle, err := Reserve(ctx, s, b)
			if err != nil || !r.Allowed || settle == nil {
				t.Fatalf("a success below the limit: %+v %v", r, err)
			}
			cancel()
			if err := settle(false); err != nil {
				t.Fatalf("giving a success back after the caller left: %v", err)
			}
		}
		if hits, _, _ := s.Count(context.Background(), b); hits != 0 {
			t.Fatalf("successes counted: %d", hits)
		}
		for i := range 2 {
			r, settle, err := Reserve(context.Background(), s, b)
			if err != nil || !r.Allowed {
				t.Fatalf("failure %d: %+v %v", i+1, r, err)
			}
			if err := settle(true); err != nil {
				t.Fatal(err)
			}
		}
		r, settle, err := Reserve(context.Background(), s, b)
		if err != nil || r.Allowed || settle != nil || r.Refused != "test" || r.RetryAfter <= 0 {
			t.Fatalf("third attempt after two failures: %+v, settle %v, %v", r, settle != nil, err)
		}
	})
	r, settle, err := Reserve(context.Background(), nil, Bucket{Limit: limit(1, time.Minute), Key: "x"})
	if err != nil || !r.Allowed || settle(true) != nil {
		t.Fatalf("nil limiter: %+v %v", r, err)
	}
}

// AddressBucket counts the address the context carries (an IPv6 client
// by its /64), and a request without one as "unknown".
func TestAddressBucket(t *testing.T) {
	l := limit(3, time.Minute)
	for _, c := range []struct {
		ctx  context.Context
		want string
	}{
		{context.Background(), "unknown"},
		{WithAddress(context.Background(), netip.MustParseAddr("192.0.2.7")), "192.0.2.7"},
		{WithAddress(context.Background(), netip.MustParseAddr("2001:db8:1:2:3::9")), "2001:db8:1:2::/64"},
	} {
		if b := AddressBucket(c.ctx, l); b.Key != c.want || b.Limit != l {
			t.Errorf("bucket %+v, want key %q", b, c.want)
		}
	}
}

func TestOver(t *testing.T) {
	l := limit(10, 100*time.Second)
	// 11 hits in the current window: wait for the next window, where the
	// 10 kept weigh 10*(1-f) and one more fits once f >= 0.1.
	wait, full := over(l, 11, 0, 0, 50_000)
	if !full || wait != 60*time.Second {
		t.Fatalf("wait %v full %v", wait, full)
	}
	// Within the limit now, but the previous window still weighs.
	if _, full := over(l, 5, 10, 0, 60_000); full {
		t.Fatal("5 + 10*0.4 = 9 is within 10")
	}
	wait, full = over(l, 5, 10, 0, 40_000)
	// 5 + 10*0.6 = 11 > 10: wait until 10*(1-f) <= 5, f = 0.5: 10s.
	if !full || wait != 10*time.Second {
		t.Fatalf("wait %v full %v", wait, full)
	}
}

func TestParseLimit(t *testing.T) {
	for in, want := range map[string]string{"30/15m": "30/15m0s", "off": "off", "0": "off", " 5 / 1h ": "5/1h0m0s"} {
		l, err := ParseLimit("x", in)
		if err != nil || l.String() != want {
			t.Errorf("%q: %v %v", in, l, err)
		}
	}
	for _, in := range []string{"30", "x/1m", "5/1ms", "5/48h", "-1/1m", "5/"} {
		if _, err := ParseLimit("x", in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestAddresses(t *testing.T) {
	trusted, err := ParsePrefixes("10.0.0.0/8, 192.0.2.7, fd00::/8")
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr
	cases := []struct {
		peer string
		xff  []string
		want string
	}{
		{"203.0.113.9", []string{"1.2.3.4"}, "203.0.113.9"},             // untrusted peer: header ignored
		{"10.1.2.3", []string{"1.2.3.4"}, "1.2.3.4"},                    // trusted proxy
		{"10.1.2.3", []string{"6.6.6.6, 1.2.3.4, 10.9.9.9"}, "1.2.3.4"}, // right-most untrusted
		{"10.1.2.3", []string{"6.6.6.6", "1.2.3.4"}, "1.2.3.4"},         // several headers
		{"10.1.2.3", []string{"junk, 1.2.3.4"}, "1.2.3.4"},              // left of the client ignored
		{"10.1.2.3", []string{"1.2.3.4, junk"}, "10.1.2.3"},             // garbage from the proxy: the proxy
		{"10.1.2.3", nil, "10.1.2.3"},                                   // no header
		{"192.0.2.7", []string{"10.0.0.1, 192.0.2.7"}, "10.0.0.1"},      // every hop trusted: the left-most
		{"::ffff:10.1.2.3", []string{"2001:db8::1"}, "2001:db8::1"},     // mapped peer
		{"fd00::1", []string{"::ffff:198.51.100.1"}, "198.51.100.1"},    // mapped client
		{"203.0.113.9", []string{"10.0.0.1"}, "203.0.113.9"},            // spoofing a trusted one from outside
		{"10.1.2.3", []string{"1.2.3.4, 5.6.7.8:443"}, "10.1.2.3"},      // host:port is not an address
		{"10.1.2.3", []string{"  2001:db8::5  "}, "2001:db8::5"},        // spaces
		{"10.1.2.3", []string{"10.0.0.1, 2001:db8::5%eth0"}, "2001:db8::5%eth0"},
	}
	for _, c := range cases {
		got := ForwardedClient(a(c.peer), c.xff, trusted)
		if got.String() != c.want {
			t.Errorf("peer %s xff %q: %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
	if k := AddressKey(a("2001:db8:1:2:3:4:5:6")); k != "2001:db8:1:2::/64" {
		t.Errorf("IPv6 key %s", k)
	}
	if k := AddressKey(a("2001:db8:1:2:ffff::1")); k != "2001:db8:1:2::/64" {
		t.Errorf("IPv6 key of the same /64 %s", k)
	}
	if k := AddressKey(a("198.51.100.7")); k != "198.51.100.7" {
		t.Errorf("IPv4 key %s", k)
	}
	if AddressKey(netip.Addr{}) != "unknown" {
		t.Error("zero address")
	}
	if _, err := ParsePrefixes("10.0.0.0/33"); err == nil {
		t.Error("bad prefix accepted")
	}
}

func TestClientAddress(t *testing.T) {
	p := &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP("10.0.0.5"), Port: 4000}}
	ctx := peer.NewContext(context.Background(), p)
	if got := ClientAddress(ctx); got.String() != "10.0.0.5" {
		t.Fatalf("peer: %s", got)
	}
	md := metadata.Pairs(ClientAddressMetadata, "198.51.100.1")
	if got := ClientAddress(metadata.NewIncomingContext(ctx, md)); got.String() != "198.51.100.1" {
		t.Fatalf("metadata: %s", got)
	}
	bad := metadata.Pairs(ClientAddressMetadata, "not an address")
	if got := ClientAddress(metadata.NewIncomingContext(ctx, bad)); got.String() != "10.0.0.5" {
		t.Fatalf("bad metadata: %s", got)
	}
	if got := ClientAddress(context.Background()); got.IsValid() {
		t.Fatalf("nothing known: %s", got)
	}
}
