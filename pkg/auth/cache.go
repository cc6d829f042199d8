package auth

import (
	"crypto/sha256"
	"sync"
)

// verifiedCache remembers tokens that verified, keyed by the SHA-256 of
// the compact token, so that a token seen before costs a hash and a map
// lookup instead of a signature check. It is bounded: shards of fixed
// capacity, each evicting its oldest entry (first in, first out) when
// full. Tokens are short-lived and reused for their whole life, so age is
// as good a victim as recency, and FIFO needs no bookkeeping on a hit.
type verifiedCache struct {
	shards []cacheShard
}

type cacheShard struct {
	mu    sync.Mutex
	m     map[[32]byte]*Principal
	ring  [][32]byte // insertion order; ring[next] is the oldest slot
	used  []bool
	next  int
	limit int
}

// cacheShards is how many independently locked parts a large cache has.
const cacheShards = 16

func newVerifiedCache(size int) *verifiedCache {
	n := cacheShards
	if size < 4*n {
		n = 1
	}
	per := (size + n - 1) / n
	if n > 1 {
		// Keep the total at most size.
		per = size / n
	}
	c := &verifiedCache{shards: make([]cacheShard, n)}
	for i := range c.shards {
		c.shards[i] = cacheShard{m: make(map[[32]byte]*Principal, per), ring: make([][32]byte, per), used: make([]bool, per), limit: per}
	}
	return c
}

func cacheKey(raw string) [32]byte { return sha256.Sum256([]byte(raw)) }

func (c *verifiedCache) shard(k [32]byte) *cacheShard {
	return &c.shards[int(k[0])%len(c.shards)]
}

func (c *verifiedCache) get(k [32]byte) (*Principal, bool) {
	s := c.shard(k)
	s.mu.Lock()
	p, ok := s.m[k]
	s.mu.Unlock()
	return p, ok
}

func (c *verifiedCache) put(k [32]byte, p *Principal) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[k]; ok {
		s.m[k] = p
		return
	}
	if s.used[s.next] {
		delete(s.m, s.ring[s.next])
	}
	s.ring[s.next], s.used[s.next] = k, true
	s.next = (s.next + 1) % s.limit
	s.m[k] = p
}

// remove forgets k (its slot in the ring is reused in turn).
func (c *verifiedCache) remove(k [32]byte) {
	s := c.shard(k)
	s.mu.Lock()
	delete(s.m, k)
	s.mu.Unlock()
}

func (c *verifiedCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
