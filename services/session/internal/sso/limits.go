package sso

import (
	"context"
	"strconv"
	"time"

	"github.com/dhosauth/dhosauth/pkg/ratelimit"
)

// Names of the brute-force limits: bucket prefixes and the "limit" label
// of dhosauth_ratelimit_refusals_total.
const (
	LimitLocalLoginAddress = "local_login_address"
	LimitLocalLoginUser    = "local_login_user"
	LimitTokenAddress      = "token_address"
	LimitTokenClient       = "token_client"
)

// Limits bound failed attempts at local password sign-in and at the token
// endpoint, in counters shared by every replica (the session store). Only
// failures count: an attempt that succeeds, or fails for a reason that is
// not a wrong secret, is given back. A limit whose Max is 0 is off.
type Limits struct {
	// PerAddress: failures per client address (IPv6: per /64)
	// (RATE_LIMIT_PER_ADDRESS), counted apart for local sign-in and for
	// the token endpoint: browsers and client apps' servers rarely share
	// an address, and one must not lock the other out.
	PerAddress ratelimit.Limit
	// PerPrincipal: failed local sign-ins per user name, and failed
	// client authentications and code redemptions per client_id
	// (RATE_LIMIT_PER_PRINCIPAL).
	PerPrincipal ratelimit.Limit
}

// DefaultLimits are the activation service's (SECURITY.md).
func DefaultLimits() Limits {
	return Limits{
		PerAddress:   ratelimit.Limit{Name: "client_address", Max: 30, Window: 15 * time.Minute},
		PerPrincipal: ratelimit.Limit{Name: "principal", Max: 10, Window: 15 * time.Minute},
	}
}

// Limiter counts attempts in buckets shared by every replica
// (ratelimit.Store).
type Limiter = ratelimit.Limiter

// LimitedError refuses an attempt because a limit is full: nothing was
// checked. The HTTP side answers 429 with Retry-After.
type LimitedError struct {
	// Limit names the full limit (one of the Limit* names).
	Limit string
	// RetryAfter is how long until the limit takes another attempt,
	// whole seconds.
	RetryAfter time.Duration
}

func (e *LimitedError) Error() string {
	return "too many failed attempts, try again in " + strconv.Itoa(e.Seconds()) + " seconds"
}

// Seconds is RetryAfter in whole seconds (at least 1), for Retry-After.
func (e *LimitedError) Seconds() int {
	n := int((e.RetryAfter + time.Second - 1) / time.Second)
	return max(n, 1)
}

// addressBucket counts failures of the request's client address under
// the limit name.
func (s *Service) addressBucket(ctx context.Context, name string) ratelimit.Bucket {
	l := s.cfg.Limits.PerAddress
	l.Name = name
	return ratelimit.AddressBucket(ctx, l)
}

// principalBucket counts failures for one user name or client_id. The
// key is an HMAC under the server's state key: the table holds no name
// in clear, and the hash of a guessable name cannot be reversed without
// the key.
func (s *Service) principalBucket(name, id string) ratelimit.Bucket {
	l := s.cfg.Limits.PerPrincipal
	l.Name = name
	return ratelimit.Bucket{Limit: l, Key: s.derive("rate-limit:"+name, id)}
}

// reserve counts an attempt in the buckets before anything is checked,
// or refuses it with a *LimitedError when one of them is full (counted
// on dhosauth_ratelimit_refusals_total; the caller audits it). The
// returned settle must be called with whether the attempt failed on a
// wrong secret: anything else (a success, a refusal for another reason,
// a failure of ours) is given back.
func (s *Service) reserve(ctx context.Context, buckets ...ratelimit.Bucket) (settle func(failed bool), err error) {
	r, done, err := ratelimit.Reserve(ctx, s.cfg.Limiter, buckets...)
	if err != nil {
		return nil, err
	}
	if !r.Allowed {
		return nil, &LimitedError{Limit: r.Refused, RetryAfter: r.RetryAfter}
	}
	return func(failed bool) {
		if err := done(failed); err != nil {
			s.cfg.Logger.WarnContext(ctx, "rate limit: giving an attempt back failed", "error", err.Error())
		}
	}, nil
}
