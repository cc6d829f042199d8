package ratelimit

import (
	"context"
	"time"

	"github.com/dhosauth/dhosauth/pkg/telemetry"
)

// Limiter counts attempts in buckets shared by every replica (Store).
type Limiter interface {
	Take(ctx context.Context, buckets ...Bucket) (Reservation, error)
	Return(ctx context.Context, r Reservation) error
}

// GiveBackTimeout bounds giving an attempt back after its caller's
// context has ended.
const GiveBackTimeout = 2 * time.Second

// Reserve counts an attempt in buckets before anything is checked. When a
// bucket is full it returns the refusal (Allowed false, RetryAfter and
// the full limit in Refused; counted on dhosauth_ratelimit_refusals_total)
// and a nil settle. Otherwise settle must be called with whether the
// attempt failed on a wrong secret: any other outcome (a success, a
// refusal for another reason, a failure of ours) is given back, within
// GiveBackTimeout even if ctx has ended. Settle's error says the attempt
// could not be given back and stays counted, which errs on the safe side.
// A nil l counts nothing.
func Reserve(ctx context.Context, l Limiter, buckets ...Bucket) (r Reservation, settle func(failed bool) error, err error) {
	if l == nil {
		return Reservation{Allowed: true}, func(bool) error { return nil }, nil
	}
	r, err = l.Take(ctx, buckets...)
	if err != nil {
		return r, nil, err
	}
	if !r.Allowed {
		telemetry.RateLimited(ctx, r.Refused)
		return r, nil, nil
	}
	return r, func(failed bool) error {
		if failed {
			return nil
		}
		gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), GiveBackTimeout)
		defer cancel()
		return l.Return(gctx, r)
	}, nil
}
