package load

import (
	"context"
	"runtime"
	"time"

	"golang.org/x/crypto/scrypt"
)

// The original design's hash: scrypt with these parameters, about four
// times per patient flow (the secrets hashed when an activation is
// created, checked when it is validated, and the authorisation code
// stored and then checked for the JWT).
const (
	ScryptN        = 16384
	ScryptR        = 8
	ScryptP        = 1
	ScryptKeyLen   = 64
	ScryptPerFlow  = 4
	StepScryptHash = "scrypt"
)

// ScryptFlow is the original design's hashing cost of one patient flow:
// ScryptPerFlow scrypt calls with its parameters.
func ScryptFlow() Flow {
	salt := []byte("0123456789abcdef")
	return func(ctx context.Context, t *Tally) error {
		for range ScryptPerFlow {
			t0 := t.Begin(0)
			if _, err := scrypt.Key([]byte("ABCDEFGHJKMNPQRSTUVWXYZ2345678"), salt, ScryptN, ScryptR, ScryptP, ScryptKeyLen); err != nil {
				t.Failed(0)
				return err
			}
			t.Done(0, t0)
		}
		return nil
	}
}

// Scrypt runs ScryptFlow on every CPU for d: the most patient flows per
// second the original design could complete here, counting nothing but
// its hashing.
func Scrypt(ctx context.Context, d time.Duration) Result {
	return Closed(ctx, []string{StepScryptHash}, runtime.GOMAXPROCS(0), 0, d, ScryptFlow())
}
