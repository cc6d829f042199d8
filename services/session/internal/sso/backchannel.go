package sso

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dhosauth/dhosauth/pkg/audit"
	"github.com/dhosauth/dhosauth/services/session/internal/upstream"
)

// BackChannelLogout handles a logout token an upstream provider sent
// (OpenID Connect Back-Channel Logout 1.0): the provider is picked by the
// token's iss, the token validated fully (upstream.VerifyLogoutToken),
// its jti refused when seen before, and every session of the named
// subject and/or upstream session ended. It returns an *OAuthError
// (invalid_request) for a token that is not valid; every outcome is
// audited.
func (s *Service) BackChannelLogout(ctx context.Context, raw string) (*OAuthError, error) {
	refuse := func(reason, provider string) (*OAuthError, error) {
		data := audit.Data{}
		if provider != "" {
			data["provider"] = provider
		}
		s.record(ctx, failure(ctx, EventBackChannel, "", "", reason, data))
		return oauthErr(ErrInvalidRequest, "the logout token is not valid"), nil
	}
	if raw == "" {
		return refuse("no logout_token", "")
	}
	p := s.providerOf(raw)
	if p == nil {
		return refuse("logout token of an unknown issuer", "")
	}
	lc, err := p.VerifyLogoutToken(ctx, raw)
	if err != nil {
		return refuse(strings.TrimPrefix(err.Error(), "logout token: "), p.ID())
	}
	if err := s.store.RememberJTI(ctx, p.Issuer(), lc.JTI, lc.Expires); err != nil {
		if errors.Is(err, ErrReplayed) {
			return refuse("replayed logout token (jti seen before)", p.ID())
		}
		return nil, fmt.Errorf("remember jti: %w", err)
	}
	sessions, err := s.store.SessionsByUpstream(ctx, p.ID(), lc.Subject, lc.SessionID)
	if err != nil {
		return nil, fmt.Errorf("find sessions: %w", err)
	}
	ids := make([]any, 0, len(sessions))
	for _, sess := range sessions {
		if err := s.end(ctx, sess, "upstream back-channel logout", "provider:"+p.ID()); err != nil {
			return nil, err
		}
		ids = append(ids, sess.ID)
	}
	if err := s.store.Record(ctx, event(ctx, EventBackChannel, "provider:"+p.ID(), "", audit.Data{
		"provider": p.ID(), "sessions_ended": ids, "upstream_session": lc.SessionID != "",
	})); err != nil {
		return nil, fmt.Errorf("record back-channel logout: %w", err)
	}
	return nil, nil
}

// providerOf picks the provider a logout token is for: its issuer's, and
// of several registrations at one issuer the one whose client id is the
// token's audience (verification checks both again).
func (s *Service) providerOf(raw string) Upstream {
	iss, aud := upstream.IssuerOf(raw)
	list := s.byIssuer[iss]
	for _, p := range list {
		if slices.Contains(aud, p.Config().ClientID) {
			return p
		}
	}
	if len(list) > 0 {
		return list[0]
	}
	return nil
}

// Delivery of back-channel logout tokens to client apps.
const (
	// MaxDeliveryAttempts bounds the attempts per app and session.
	MaxDeliveryAttempts = 5
	// deliveryLease is how long an attempt may take before another
	// replica may try.
	deliveryLease = 30 * time.Second
	// deliveryTimeout bounds one POST to an app.
	deliveryTimeout = 5 * time.Second
	// deliveryPoll is how often pending deliveries are looked for when
	// nothing wakes the worker.
	deliveryPoll = 2 * time.Second
)

// retryDelay is the wait before attempt n+1 (1s, 2s, 4s, 8s).
func retryDelay(attempts int) time.Duration {
	return time.Second << min(attempts-1, 4)
}

// Wake makes the delivery worker look for deliveries now.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// RunDeliveries sends pending back-channel logout tokens until ctx ends,
// and prunes what has expired every so often. client nil means a client
// with deliveryTimeout and no redirects.
func (s *Service) RunDeliveries(ctx context.Context, client *http.Client) {
	if client == nil {
		client = defaultDeliveryClient()
	}
	t := time.NewTicker(deliveryPoll)
	defer t.Stop()
	lastPrune := time.Time{}
	for {
		s.DeliverDue(ctx, client)
		if time.Since(lastPrune) > 10*time.Minute {
			now := s.now()
			if err := s.store.Prune(ctx, now, now.Add(-keepEnded)); err != nil && ctx.Err() == nil {
				s.cfg.Logger.WarnContext(ctx, "sessions: prune failed", "error", err.Error())
			}
			lastPrune = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// DeliverDue makes one attempt at every due delivery (RunDeliveries calls
// it; tests call it directly).
func (s *Service) DeliverDue(ctx context.Context, client *http.Client) {
	if client == nil {
		client = defaultDeliveryClient()
	}
	now := s.now()
	due, err := s.store.DueDeliveries(ctx, now, 50)
	if err != nil {
		if ctx.Err() == nil {
			s.cfg.Logger.WarnContext(ctx, "back-channel logout: reading deliveries failed", "error", err.Error())
		}
		return
	}
	for _, d := range due {
		ok, err := s.store.ClaimDelivery(ctx, d, now.Add(deliveryLease))
		if err != nil || !ok {
			continue
		}
		d.Attempts++
		s.attempt(ctx, client, d)
	}
}

// attempt sends one logout token and records the outcome: delivered,
// retried later, or given up after MaxDeliveryAttempts.
func (s *Service) attempt(ctx context.Context, client *http.Client, d Delivery) {
	data := audit.Data{"client_id": d.ClientID, "session_id": d.SessionID, "attempts": d.Attempts}
	c, ok := s.clients[d.ClientID]
	if !ok || c.BackchannelLogoutURI == "" {
		s.finish(ctx, d, failure(ctx, EventBackChannelSent, "", d.Subject, "client no longer configured", data))
		return
	}
	err := s.send(ctx, client, c, d)
	if err == nil {
		s.finish(ctx, d, event(ctx, EventBackChannelSent, "", d.Subject, data))
		return
	}
	s.cfg.Logger.WarnContext(ctx, "back-channel logout: delivery failed", "client_id", d.ClientID, "attempt", d.Attempts, "error", err.Error())
	if d.Attempts >= MaxDeliveryAttempts {
		s.finish(ctx, d, failure(ctx, EventBackChannelSent, "", d.Subject, "gave up: "+truncate(err.Error(), 150), data))
		return
	}
	if err := s.store.RetryDelivery(ctx, d.ID, s.now().Add(retryDelay(d.Attempts)), truncate(err.Error(), 300)); err != nil {
		s.cfg.Logger.WarnContext(ctx, "back-channel logout: scheduling a retry failed", "error", err.Error())
	}
}

func (s *Service) finish(ctx context.Context, d Delivery, ev audit.Event) {
	if err := s.store.FinishDelivery(ctx, d.ID, ev); err != nil {
		s.cfg.Logger.WarnContext(ctx, "back-channel logout: recording a delivery failed", "error", err.Error())
	}
}

// send signs a logout token for the app and POSTs it (form-encoded
// logout_token); 200 and 204 are success.
func (s *Service) send(ctx context.Context, client *http.Client, c *Client, d Delivery) error {
	tok, err := s.tokens.LogoutToken(ctx, c.ID, d.Subject, d.SessionID)
	if err != nil {
		return fmt.Errorf("sign logout token: %w", err)
	}
	body := url.Values{"logout_token": {tok}}.Encode()
	rctx, cancel := context.WithTimeout(ctx, deliveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, c.BackchannelLogoutURI, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return errors.New("the app did not answer")
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("the app answered HTTP %d", resp.StatusCode)
	}
	return nil
}

// defaultDeliveryClient bounds each POST and follows no redirect.
func defaultDeliveryClient() *http.Client {
	return &http.Client{Timeout: deliveryTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
