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

	"github.com/dhosauth/dhosauth/pkg/config"
)

// MaxJSONBytes bounds a JSON document (a JWK set, a discovery document, a
// userinfo response) read over HTTP.
const MaxJSONBytes = 1 << 20

// defaultClient fetches when the caller gives no client.
var defaultClient = &http.Client{Timeout: 5 * time.Second}

// FetchJSON reads the JSON document at uri into dst: a GET that asks for
// application/json, with bearer as its Authorization when not empty, and
// wants 200 and at most MaxJSONBytes of plain JSON (a signed
// application/jwt response is refused). client nil means one with a 5s
// timeout. The errors carry no credential: the bearer token is never in
// them, and the HTTP client strips a password from the URL it names.
func FetchJSON(ctx context.Context, client *http.Client, uri, bearer string, dst any) error {
	if client == nil {
		client = defaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJSONBytes+1))
	if err != nil {
		return err
	}
	if len(body) > MaxJSONBytes {
		return errors.New("document too large")
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/jwt") {
		return errors.New("signed (application/jwt) responses are not supported")
	}
	return json.Unmarshal(body, dst)
}

// HTTPJWKS returns a fetcher of the JWK set at uri (a JSON object with a
// "keys" array, RFC 7517 section 5), read with FetchJSON. client nil means
// a client with a 5s timeout.
func HTTPJWKS(uri string, client *http.Client) func(ctx context.Context) ([]JWK, error) {
	return func(ctx context.Context) ([]JWK, error) {
		var set struct {
			Keys []JWK `json:"keys"`
		}
		if err := FetchJSON(ctx, client, uri, "", &set); err != nil {
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
	list, err := config.JSONList[TrustedIssuer](text, "{issuer, jwks_uri, audience, algorithms}")
	if err != nil {
		return nil, err
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
		if err := CheckSecureURL("jwks_uri", ti.JWKSURI, true); err != nil {
			return nil, fmt.Errorf("issuer %q: %v", ti.Issuer, err)
		}
		ti.Keys = &RemoteKeys{Fetch: HTTPJWKS(ti.JWKSURI, nil), MinRefresh: minRefresh}
	}
	return list, nil
}

// CheckSecureURL checks a URL an issuer is reached at (a JWKS URL, a
// discovery or token endpoint, an issuer): absolute, and https, or http
// only on a loopback address (tests, sidecars, a provider on the same
// machine). Unless allowQuery, it may have no query or fragment either.
// name starts the error ("jwks_uri …").
func CheckSecureURL(name, uri string, allowQuery bool) error {
	u, err := url.Parse(uri)
	switch {
	case allowQuery && (err != nil || u.Host == ""):
		return fmt.Errorf("%s %q is not an absolute URL", name, uri)
	case !allowQuery && (err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != ""):
		return fmt.Errorf("%s %q is not an absolute URL without query", name, uri)
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
	return fmt.Errorf("%s %q must be https (http only on a loopback address)", name, uri)
}
