// Package ssohttp is the HTTP side of browser sign-in: the handlers of
// /login, /login/upstream, /login/callback, /login/local, /logout,
// /backchannel-logout, /session and the OpenID provider's /oauth2/authorize,
// /oauth2/token and /oauth2/userinfo. The session service serves them on
// its own listener (SESSION_HTTP_ADDR); the REST edge forwards these paths
// to it under the suite's origin. Handlers parse, set cookies and write
// the answers the specifications name; the rules are package sso's.
package ssohttp
