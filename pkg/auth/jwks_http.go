package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// MaxJWKSBytes bounds a JWK set read over HTTP.
const MaxJWKSBytes = 1 << 20

// HTTPJWKS returns a fetcher of the JWK set at uri (a JSON object with a
// "keys" array, RFC 7517 section 5). client nil means a client with a 5s
// timeout.
func HTTPJWKS(uri string, client *http.Client) func(ctx context.Context) ([]JWK, error) {
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	return func(ctx context.Context) ([]JWK, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("fetch JWKS: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("fetch JWKS: HTTP %d", resp.StatusCode)
		}
		var set struct {
			Keys []JWK `json:"keys"`
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSBytes+1))
		if err != nil {
			return nil, fmt.Errorf("fetch JWKS: %w", err)
		}
		if len(body) > MaxJWKSBytes {
			return nil, errors.New("fetch JWKS: document too large")
		}
		if err := json.Unmarshal(body, &set); err != nil {
			return nil, fmt.Errorf("fetch JWKS: %w", err)
		}
		return set.Keys, nil
	}
}

// ParseTrustedIssuers reads TRUSTED_ISSUERS: a JSON array of
// {"issuer", "jwks_uri", "audience", "algorithms"}. Each issuer gets a
// cached key set on its JWKS URL that refetches an unknown kid at most
// once per minRefresh. The JWKS URL must be https, or http on a loopback
// address (tests, sidecars).
func ParseTrustedIssuers(text string, minRefresh time.Duration) ([]TrustedIssuer, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, nil
	}
	var list []TrustedIssuer
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("want a JSON array of {issuer, jwks_uri, audience, algorithms}: %v", err)
	}
	seen := map[string]bool{}
	for i := range list {
		ti := &list[i]
		switch {
		case ti.Issuer == "":
			return nil, fmt.Errorf("entry %d: issuer is required", i)
		case seen[ti.Issuer]:
			return nil, fmt.Errorf("issuer %q is listed twice", ti.Issuer)
		case ti.Audience == "":
			return nil, fmt.Errorf("issuer %q: audience is required", ti.Issuer)
		case len(ti.Algorithms) == 0:
			return nil, fmt.Errorf("issuer %q: algorithms is required (one or more of %s)", ti.Issuer, strings.Join(AsymmetricAlgorithms, ", "))
		}
		seen[ti.Issuer] = true
		for _, a := range ti.Algorithms {
			if !slices.Contains(AsymmetricAlgorithms, a) {
				return nil, fmt.Errorf("issuer %q: algorithm %q is not one of %s", ti.Issuer, a, strings.Join(AsymmetricAlgorithms, ", "))
			}
		}
		if err := checkJWKSURI(ti.JWKSURI); err != nil {
			return nil, fmt.Errorf("issuer %q: %v", ti.Issuer, err)
		}
		ti.Keys = &RemoteKeys{Fetch: HTTPJWKS(ti.JWKSURI, nil), MinRefresh: minRefresh}
	}
	return list, nil
}

func checkJWKSURI(uri string) error {
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" {
		return fmt.Errorf("jwks_uri %q is not an absolute URL", uri)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || host == "localhost" {
			return nil
		}
	}
	return fmt.Errorf("jwks_uri %q must be https (http only on a loopback address)", uri)
}
