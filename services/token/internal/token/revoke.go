package token

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dhosauth/dhosauth/pkg/apperr"
	"github.com/dhosauth/dhosauth/pkg/auth"
)

// MaxReasonLength bounds the reason given for a revocation, in bytes.
const MaxReasonLength = 200

// RevocationPageSize is how many revocations one ListRevocations answer
// carries at most.
const RevocationPageSize = 1000

// Revoke refuses, from now on, every token of the principal issued before
// now. The cut-off is the start of the next whole second (iat is in whole
// seconds): tokens issued in the rest of this second are refused too,
// except those the issuer signs after this call, which carry the cut-off
// as their iat. The revocation is in this process's verifier at once, in
// other token-service replicas and in every service's local verifier
// within their poll interval. It returns the cut-off.
func (i *Issuer) Revoke(ctx context.Context, kind Kind, subject, reason string) (time.Time, error) {
	if !kind.Revocable() {
		return time.Time{}, apperr.InvalidArgument("kind must be one of patient, device, clinician")
	}
	if err := checkID("principal_id", subject); err != nil {
		return time.Time{}, err
	}
	if len(reason) > MaxReasonLength {
		return time.Time{}, apperr.InvalidArgument("reason must be at most %d bytes", MaxReasonLength)
	}
	now := i.cfg.Now().UTC()
	e, err := i.store.Revoke(ctx, RevocationEntry{
		Kind:          kind,
		Subject:       subject,
		RevokedBefore: now.Truncate(time.Second).Add(time.Second),
		RecordedAt:    now.Truncate(time.Millisecond),
		Reason:        reason,
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("record revocation: %w", err)
	}
	if i.revoked != nil {
		i.revoked.Add(auth.Revocation{Kind: kind.Proto(), ID: subject, RevokedBefore: e.RevokedBefore})
	}
	return e.RevokedBefore, nil
}

// Revocations returns the revocations recorded after cursor (see
// auth.RevocationPage). A cursor is "<epoch>:<seq>"; an empty, malformed
// or foreign one starts from the beginning (Reset).
func (i *Issuer) Revocations(ctx context.Context, cursor string) (auth.RevocationPage, error) {
	if len(cursor) > 100 {
		return auth.RevocationPage{}, apperr.InvalidArgument("cursor is not one this service gave")
	}
	epoch, err := i.revocationEpoch(ctx)
	if err != nil {
		return auth.RevocationPage{}, err
	}
	var after int64
	reset := true
	if e, seq, ok := strings.Cut(cursor, ":"); ok && e == epoch {
		if n, err := strconv.ParseInt(seq, 10, 64); err == nil && n >= 0 {
			after, reset = n, false
		}
	}
	pruneBefore := i.cfg.Now().UTC().Add(-i.cfg.Retention())
	rows, err := i.store.RevocationsAfter(ctx, after, pruneBefore, RevocationPageSize)
	if err != nil {
		return auth.RevocationPage{}, fmt.Errorf("read revocations: %w", err)
	}
	page := auth.RevocationPage{Reset: reset, More: len(rows) == RevocationPageSize, PruneBefore: pruneBefore}
	for _, r := range rows {
		page.Revocations = append(page.Revocations, auth.Revocation{Kind: r.Kind.Proto(), ID: r.Subject, RevokedBefore: r.RevokedBefore})
		after = r.Seq
	}
	page.Cursor = epoch + ":" + strconv.FormatInt(after, 10)
	return page, nil
}

func (i *Issuer) revocationEpoch(ctx context.Context) (string, error) {
	i.epochMu.Lock()
	defer i.epochMu.Unlock()
	if i.epoch == "" {
		e, err := i.store.RevocationEpoch(ctx)
		if err != nil {
			return "", fmt.Errorf("read revocation epoch: %w", err)
		}
		i.epoch = e
	}
	return i.epoch, nil
}

// PruneRevocations forgets revocations that no longer refuse anything:
// every token issued before their cut-off has expired.
func (i *Issuer) PruneRevocations(ctx context.Context) (int64, error) {
	return i.store.PruneRevocations(ctx, i.cfg.Now().UTC().Add(-i.cfg.Retention()))
}
