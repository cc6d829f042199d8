package service

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dhosauth/dhosauth/pkg/audit/auditamqp"
	"github.com/dhosauth/dhosauth/pkg/config"
	"github.com/dhosauth/dhosauth/pkg/logging"
	"github.com/dhosauth/dhosauth/pkg/secret"
	"github.com/dhosauth/dhosauth/pkg/storage"
)

// Default gRPC addresses of the four services.
const (
	DefaultActivationAddr = "127.0.0.1:9091"
	DefaultDeviceAddr     = "127.0.0.1:9092"
	DefaultTokenAddr      = "127.0.0.1:9093"
	DefaultSessionAddr    = "127.0.0.1:9094"
)

// DefaultIssuer is the issuer of the suite's tokens outside production when
// neither TOKEN_ISSUER nor HS_ISSUER is set.
const DefaultIssuer = "http://localhost:8080/"

// Addresses of the services.
type Addresses struct {
	Activation, Device, Token, Session string
}

// Common is the configuration every process reads.
type Common struct {
	Name        string
	Environment config.Environment
	LogFormat   string
	LogLevel    string
	DataDir     string
	Storage     storage.Config
	// HSKey/HSIssuer: legacy HS512 tokens (accepted, and signed when set).
	HSKey    []byte
	HSIssuer string
	// Issuer/Audience of tokens the token service signs.
	Issuer   string
	Audience string
	// InternalKey signs service-to-service tokens.
	InternalKey []byte
	Addr        Addresses
	// Trust: leeway, trusted issuers, revocation polling, verify cache.
	Trust Trust
	// Serve: listeners and shutdown (see ServeConfig).
	Serve ServeConfig
	// Audit configures the publishing of the audit outbox.
	Audit AuditConfig
}

// AuditConfig says where audit events are published and how long they
// are kept.
type AuditConfig struct {
	// URL is the RabbitMQ broker (AMQP_URL); empty: events are only kept
	// in the outbox, for the query API.
	URL string
	// Exchange (AUDIT_EXCHANGE) and RoutingKey (AUDIT_ROUTING_KEY).
	Exchange   string
	RoutingKey string
	// Retention (AUDIT_RETENTION) is how long events are kept once
	// published (or at all, without a broker).
	Retention time.Duration
}

// LoadCommon reads the common configuration for the named service.
func LoadCommon(l *config.Loader, name string) Common {
	c := Common{Name: name}
	c.Environment = l.Environment()
	c.LogFormat = l.String("LOG_FORMAT", "json")
	c.LogLevel = l.String("LOG_LEVEL", "INFO")
	c.DataDir = l.String("DATA_DIR", "data")
	c.Storage = storage.Config{
		Service:  name,
		URL:      databaseURL(l),
		Schema:   l.String("DATABASE_SCHEMA", name),
		DataDir:  c.DataDir,
		MaxConns: l.Int("DATABASE_MAX_CONNS", 10, 1, 1000),
	}
	c.HSKey = []byte(l.Secret("HS_KEY"))
	c.HSIssuer = l.String("HS_ISSUER", "")
	if len(c.HSKey) > 0 && c.HSIssuer == "" {
		l.Fail("HS_ISSUER must be set when HS_KEY is set")
	}
	def := c.HSIssuer
	if def == "" && !c.Environment.IsProduction() {
		def = DefaultIssuer
	}
	c.Issuer = l.String("TOKEN_ISSUER", def)
	if c.Issuer == "" {
		l.Fail("TOKEN_ISSUER (or HS_ISSUER) must be set in PRODUCTION")
	}
	c.Audience = l.String("TOKEN_AUDIENCE", c.Issuer)
	key, err := secret.LoadKey(l.Secret("INTERNAL_AUTH_KEY"), c.DataDir, "internal-auth.key", !c.Environment.IsProduction())
	if err != nil {
		l.Fail("INTERNAL_AUTH_KEY: %v", err)
	}
	c.InternalKey = key
	c.Trust = LoadTrust(l)
	c.Addr = Addresses{
		Activation: l.String("ACTIVATION_GRPC_ADDR", DefaultActivationAddr),
		Device:     l.String("DEVICE_GRPC_ADDR", DefaultDeviceAddr),
		Token:      l.String("TOKEN_GRPC_ADDR", DefaultTokenAddr),
		Session:    l.String("SESSION_GRPC_ADDR", DefaultSessionAddr),
	}
	c.Serve = loadServeConfig(l, name, c.Addr)
	c.Audit = AuditConfig{
		URL:        l.Secret("AMQP_URL"),
		Exchange:   l.String("AUDIT_EXCHANGE", auditamqp.DefaultExchange),
		RoutingKey: l.String("AUDIT_ROUTING_KEY", auditamqp.DefaultRoutingKey),
		Retention:  retention(l, "AUDIT_RETENTION", auditamqp.DefaultRetention),
	}
	if u := c.Audit.URL; u != "" && !strings.HasPrefix(u, "amqp://") && !strings.HasPrefix(u, "amqps://") {
		l.Fail("AMQP_URL: want an amqp:// or amqps:// URL")
	}
	return c
}

// retention reads a period as a number of days ("90d") or a Go duration
// ("2160h").
func retention(l *config.Loader, name string, def time.Duration) time.Duration {
	v := l.String(name, "")
	if v == "" {
		return def
	}
	if n, ok := strings.CutSuffix(v, "d"); ok {
		if days, err := strconv.Atoi(n); err == nil && days > 0 {
			return time.Duration(days) * 24 * time.Hour
		}
	} else if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d
	}
	l.Fail("%s: want a number of days such as 90d, or a duration such as 2160h, got %q", name, v)
	return def
}

// databaseURL builds the PostgreSQL URL from DATABASE_URL or DATABASE_HOST
// and the other DATABASE_* names; empty means the embedded default.
func databaseURL(l *config.Loader) string {
	if u := l.Secret("DATABASE_URL"); u != "" {
		return u
	}
	host := l.String("DATABASE_HOST", "")
	if host == "" {
		return ""
	}
	port := l.Int("DATABASE_PORT", 5432, 1, 65535)
	u := url.URL{
		Scheme: "postgres",
		Host:   host + ":" + strconv.Itoa(port),
		Path:   "/" + l.String("DATABASE_NAME", "dhosauth"),
	}
	user := l.String("DATABASE_USER", "postgres")
	if pw := l.Secret("DATABASE_PASSWORD"); pw != "" {
		u.User = url.UserPassword(user, pw)
	} else {
		u.User = url.User(user)
	}
	q := url.Values{}
	q.Set("sslmode", l.String("DATABASE_SSLMODE", "prefer"))
	u.RawQuery = q.Encode()
	return u.String()
}

// Logger builds the process logger from LOG_FORMAT and LOG_LEVEL.
func (c Common) Logger() (*slog.Logger, error) {
	lg, err := logging.New(os.Stderr, c.LogFormat, c.LogLevel)
	if err != nil {
		return nil, err
	}
	return lg.With("service", c.Name), nil
}

// StoreName describes the configured backend for logs.
func (c Common) StoreName() string {
	if c.Storage.URL != "" {
		return fmt.Sprintf("postgres (schema %s)", c.Storage.Schema)
	}
	return fmt.Sprintf("sqlite (%s/%s.db)", c.DataDir, c.Storage.Schema)
}
