// Package config reads settings from the environment into typed values,
// collecting every problem instead of stopping at the first, and describes
// the running environment (DEVELOPMENT … PRODUCTION).
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Environment is the value of ENVIRONMENT.
type Environment string

// The environments the contract names. Unset means Production.
const (
	Development Environment = "DEVELOPMENT"
	Test        Environment = "TEST"
	Demo        Environment = "DEMO"
	Staging     Environment = "STAGING"
	Production  Environment = "PRODUCTION"
)

// IsProduction reports whether non-production features must stay off.
func (e Environment) IsProduction() bool { return e == Production }

// Loader reads environment variables, remembering what it read (for the
// start-up log, secrets masked) and every invalid value.
type Loader struct {
	lookup  func(string) (string, bool)
	errs    []error
	seen    map[string]string
	secrets map[string]bool
}

// NewLoader reads from the process environment.
func NewLoader() *Loader { return NewLoaderFrom(os.LookupEnv) }

// NewLoaderFrom reads through lookup (tests pass a map).
func NewLoaderFrom(lookup func(string) (string, bool)) *Loader {
	return &Loader{lookup: lookup, seen: map[string]string{}, secrets: map[string]bool{}}
}

// MapLookup adapts a map to a lookup function.
func MapLookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func (l *Loader) raw(name string) (string, bool) {
	v, ok := l.lookup(name)
	v = strings.TrimSpace(v)
	if ok && v != "" {
		l.seen[name] = v
		return v, true
	}
	return "", false
}

// Lookup is the loader's source of variables, for code that reads its own
// (the OpenTelemetry SDK's OTEL_* variables). What it reads is not in
// Summary.
func (l *Loader) Lookup() func(string) (string, bool) { return l.lookup }

// Fail records a problem found by a rule outside the loader.
func (l *Loader) Fail(format string, args ...any) {
	l.errs = append(l.errs, fmt.Errorf(format, args...))
}

// String returns the variable or def.
func (l *Loader) String(name, def string) string {
	if v, ok := l.raw(name); ok {
		return v
	}
	return def
}

// Secret is String for values that must never be logged.
func (l *Loader) Secret(name string) string {
	l.secrets[name] = true
	v, _ := l.raw(name)
	return v
}

// Int returns the variable as an integer within [lo, hi], or def.
func (l *Loader) Int(name string, def, lo, hi int) int {
	v, ok := l.raw(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		l.Fail("%s: want a whole number from %d to %d, got %q", name, lo, hi, v)
		return def
	}
	return n
}

// Bool returns the variable as a boolean (true/false/1/0), or def.
func (l *Loader) Bool(name string, def bool) bool {
	v, ok := l.raw(name)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		l.Fail("%s: want true or false, got %q", name, v)
		return def
	}
	return b
}

// Duration returns the variable as a Go duration ("30s", "5m"), or def.
func (l *Loader) Duration(name string, def time.Duration) time.Duration {
	v, ok := l.raw(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		l.Fail("%s: want a positive duration such as 30s, got %q", name, v)
		return def
	}
	return d
}

// Environment reads ENVIRONMENT; unset means PRODUCTION.
func (l *Loader) Environment() Environment {
	v := strings.ToUpper(l.String("ENVIRONMENT", string(Production)))
	switch e := Environment(v); e {
	case Development, Test, Demo, Staging, Production:
		return e
	}
	l.Fail("ENVIRONMENT: want one of DEVELOPMENT, TEST, DEMO, STAGING, PRODUCTION, got %q", v)
	return Production
}

// Err returns every problem found, or nil.
func (l *Loader) Err() error { return errors.Join(l.errs...) }

// Summary lists the variables that were set, secrets masked, for the
// start-up log.
func (l *Loader) Summary() []any {
	keys := make([]string, 0, len(l.seen))
	for k := range l.seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		v := l.seen[k]
		if l.secrets[k] || looksSecret(k) {
			v = "********"
		}
		out = append(out, k, v)
	}
	return out
}

// JSONList decodes a setting that is a JSON array of T (OIDC_PROVIDERS,
// TRUSTED_ISSUERS …): space around it is ignored, blank text is no
// entries, and an unknown field is an error. entries names the entries in
// that error: "want a JSON array of <entries>: …".
func JSONList[T any](text, entries string) ([]T, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, nil
	}
	var list []T
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("want a JSON array of %s: %v", entries, err)
	}
	return list, nil
}

// looksSecret masks values whose names say they are secrets, even when a
// caller read them with String instead of Secret.
func looksSecret(name string) bool {
	if name == "DATABASE_URL" {
		return true
	}
	for _, s := range []string{"_KEY", "_PASSWORD", "_SECRET", "_TOKEN"} {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}
