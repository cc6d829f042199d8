package activation

import (
	"context"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/ratelimit"
	"google.golang.org/grpc/codes"
)

// Names of the brute-force limits: bucket prefixes and the "limit" label of
// dhosauth_ratelimit_refusals_total.
const (
	LimitClientAddress    = "client_address"
	LimitPatient          = "patient_jwt"
	LimitDevice           = "device_jwt"
	LimitDeviceCodeBudget = "device_code_guesses"
)

// Limits bound failed attempts at the unauthenticated RPCs (activation
// validation, patient and device JWT). Only failures count: an attempt
// that succeeds is given back. A limit whose Max is 0 is off.
type Limits struct {
	// PerAddress: failures per client address (IPv6: per /64) at the
	// three RPCs together (RATE_LIMIT_PER_ADDRESS).
	PerAddress ratelimit.Limit
	// PerPrincipal: failed authorisation-code exchanges per patient or
	// per device (RATE_LIMIT_PER_PRINCIPAL). A patient activation code is
	// limited by MaxAttempts instead: it locks for good.
	PerPrincipal ratelimit.Limit
	// DeviceCodeGuesses: failed device-code validations from all clients
	// together (RATE_LIMIT_DEVICE_CODE_GUESSES), the budget that makes
	// enumerating 9-digit codes impractical.
	DeviceCodeGuesses ratelimit.Limit
}

// DefaultLimits are the limits SECURITY.md reasons about.
func DefaultLimits() Limits {
	return Limits{
		PerAddress:        ratelimit.Limit{Name: LimitClientAddress, Max: 30, Window: 15 * time.Minute},
		PerPrincipal:      ratelimit.Limit{Name: "principal", Max: 10, Window: 15 * time.Minute},
		DeviceCodeGuesses: ratelimit.Limit{Name: LimitDeviceCodeBudget, Max: 100, Window: time.Hour},
	}
}

// Limiter counts attempts in buckets shared by every replica
// (ratelimit.Store).
type Limiter = ratelimit.Limiter

// Hash purpose of the keys of per-principal buckets.
const purposeRateLimit = "rate-limit:"

func (s *Service) addressBucket(ctx context.Context) ratelimit.Bucket {
	l := s.cfg.Limits.PerAddress
	l.Name = LimitClientAddress
	return ratelimit.AddressBucket(ctx, l)
}

// principalBucket counts failures for one patient or device. The id is
// hashed under the server key like every other value that reaches the
// store from a public RPC.
func (s *Service) principalBucket(name, id string) ratelimit.Bucket {
	l := s.cfg.Limits.PerPrincipal
	l.Name = name
	return ratelimit.Bucket{Limit: l, Key: hex.EncodeToString(s.hasher.Hash(purposeRateLimit+name, id))}
}

func (s *Service) deviceCodeBudget() ratelimit.Bucket {
	l := s.cfg.Limits.DeviceCodeGuesses
	l.Name = LimitDeviceCodeBudget
	return ratelimit.Bucket{Limit: l, Key: "all"}
}

// reserve counts an attempt in the buckets, or refuses it with
// RESOURCE_EXHAUSTED and how long to wait when one of them is full. The
// returned settle must be called with the attempt's outcome: an outcome
// that is not a refusal (a success, or a failure of ours such as an
// unavailable database) is given back.
func (s *Service) reserve(ctx context.Context, buckets ...ratelimit.Bucket) (settle func(error), err error) {
	r, done, err := ratelimit.Reserve(ctx, s.limiter, buckets...)
	if err != nil {
		return nil, storeErr(err)
	}
	if !r.Allowed {
		secs := int(r.RetryAfter / time.Second)
		return nil, apperr.ResourceExhausted(r.RetryAfter, "too many failed attempts, try again in %s seconds", strconv.Itoa(secs))
	}
	// Giving an attempt back is best effort (ratelimit.Reserve).
	return func(outcome error) { _ = done(countsAsFailure(outcome)) }, nil
}

// countsAsFailure reports whether an outcome is a refusal of the caller's
// secret: the same 404 or 403 every wrong code gets.
func countsAsFailure(err error) bool {
	switch apperr.CodeOf(err) {
	case codes.NotFound, codes.PermissionDenied:
		return true
	}
	return false
}
