package main

import (
	"github.com/dhosauth/dhosauth/pkg/config"
	"github.com/dhosauth/dhosauth/pkg/ratelimit"
	"github.com/dhosauth/dhosauth/pkg/secret"
	"github.com/dhosauth/dhosauth/pkg/service"
	"github.com/dhosauth/dhosauth/services/activation/internal/activation"
)

// settings is the activation service's whole configuration.
type settings struct {
	Common      service.Common
	Rules       activation.Config
	CodeHashKey []byte
}

// loadSettings reads the configuration; problems are collected in l.
func loadSettings(l *config.Loader) settings {
	c := service.LoadCommon(l, activation.ServiceName)
	production := c.Environment.IsProduction()
	def := activation.DefaultConfig()
	r := activation.Config{
		OTPLength:            l.Int("OTP_LENGTH", def.OTPLength, 4, 32),
		ActivationCodeLength: l.Int("AUTHORISATION_CODE_LENGTH", def.ActivationCodeLength, 8, 64),
		DeviceCodeLength:     l.Int("SEND_ENTRY_ACTIVATION_CODE_LENGTH", def.DeviceCodeLength, 6, 18),
		ExpiryDays:           l.Int("ACTIVATION_EXPIRY_END_OF_NTH_DAY", def.ExpiryDays, 0, 365),
		MaxAttempts:          l.Int("MAX_ACTIVATION_ATTEMPTS", def.MaxAttempts, 1, 1000),
		AllowDropData:        l.Bool("ALLOW_DROP_DATA", false),
		Production:           production,
		Limits: activation.Limits{
			PerAddress:        limit(l, "RATE_LIMIT_PER_ADDRESS", def.Limits.PerAddress),
			PerPrincipal:      limit(l, "RATE_LIMIT_PER_PRINCIPAL", def.Limits.PerPrincipal),
			DeviceCodeGuesses: limit(l, "RATE_LIMIT_DEVICE_CODE_GUESSES", def.Limits.DeviceCodeGuesses),
		},
	}
	var key []byte
	value := l.Secret("CODE_HASH_KEY")
	if production && value == "" {
		l.Fail("CODE_HASH_KEY must be set in PRODUCTION (at least %d characters)", secret.MinKeyLength)
	} else {
		k, err := secret.LoadKey(value, c.DataDir, "code-hash.key", !production)
		if err != nil {
			l.Fail("CODE_HASH_KEY: %v", err)
		}
		key = k
	}
	return settings{Common: c, Rules: r, CodeHashKey: key}
}

// limit reads a rate limit ("N/duration", or "off").
func limit(l *config.Loader, name string, def ratelimit.Limit) ratelimit.Limit {
	v := l.String(name, def.String())
	lim, err := ratelimit.ParseLimit(def.Name, v)
	if err != nil {
		l.Fail("%s: %v", name, err)
		return def
	}
	return lim
}
