// Package sso is the session service's browser sign-in domain: server-side
// sessions behind an opaque cookie, sign-in through upstream OpenID
// Connect providers (package upstream) or a local password, the suite's
// own OpenID provider for registered client apps (authorize, token,
// userinfo, RP-initiated logout), the back-channel logout the upstream
// sends, and the back-channel logout tokens sent to every app that joined
// a session when it ends.
//
// It owns the rules; the HTTP side (package ssohttp) only parses and
// writes. Errors of the OAuth endpoints are *OAuthError with the error
// code the specifications name; every sign-in, sign-out and refusal is
// audited (pkg/audit). Secrets are never stored: the cookie, codes and
// states only as SHA-256, the PKCE verifier and nonce of an upstream
// sign-in derived from its state under a server key, client secrets as
// SHA-256 in the configuration, local passwords as argon2id. Failed local
// sign-ins and token requests are limited per client address and per name
// or client_id (Limits, counted in the session store by pkg/ratelimit);
// a refusal is a *LimitedError, or at the token endpoint an *OAuthError
// with RetryAfter.
package sso
