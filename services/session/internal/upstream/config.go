package upstream

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/dhosauth/dhosauth/pkg/auth"
	"github.com/dhosauth/dhosauth/pkg/config"
)

// Presets of known providers.
const (
	PresetOIDC  = "oidc"
	PresetEntra = "entra"
	PresetCIS2  = "cis2"
	PresetHMPPS = "hmpps"
)

// Client authentication methods at the provider's token endpoint.
const (
	ClientSecretBasic = "client_secret_basic"
	ClientSecretPost  = "client_secret_post"
	PrivateKeyJWT     = "private_key_jwt"
)

// Config is one upstream provider, as OIDC_PROVIDERS lists it.
type Config struct {
	// ID names the provider in URLs, sessions and audit events.
	ID string `json:"id"`
	// Name is shown on the sign-in page (default: the id).
	Name string `json:"name"`
	// Preset is oidc (default), entra, cis2 or hmpps.
	Preset string `json:"preset"`
	// Issuer is the provider's issuer URL (its discovery document is at
	// Issuer + /.well-known/openid-configuration). Entra: derived from
	// Tenant when empty.
	Issuer string `json:"issuer"`
	// Tenant is the Entra ID tenant (id or domain).
	Tenant string `json:"tenant"`
	// ClientID is the suite's client id at the provider.
	ClientID string `json:"client_id"`
	// ClientSecret is for client_secret_basic and client_secret_post.
	ClientSecret string `json:"client_secret"`
	// AuthMethod is how the suite authenticates at the token endpoint
	// (default client_secret_basic with a secret, private_key_jwt with a
	// key or assertion file).
	AuthMethod string `json:"auth_method"`
	// PrivateKey (PEM) or PrivateKeyFile sign private_key_jwt assertions;
	// KeyID is their kid (default: the key's RFC 7638 thumbprint) and
	// X5T, when set, their x5t header (Entra's certificate credentials).
	PrivateKey     string `json:"private_key"`
	PrivateKeyFile string `json:"private_key_file"`
	KeyID          string `json:"key_id"`
	X5T            string `json:"x5t"`
	// AssertionAudience is the aud of the assertions this service signs:
	// token_endpoint (default, as OpenID Connect Core section 9 says) or
	// issuer (providers that want their issuer there).
	AssertionAudience string `json:"assertion_audience"`
	// ClientAssertionFile holds a ready-made assertion (a federated
	// credential such as a projected Kubernetes service account token),
	// read at each use.
	ClientAssertionFile string `json:"client_assertion_file"`
	// Scopes requested (default per preset; openid is always included).
	Scopes []string `json:"scopes"`
	// ACRValues is sent as acr_values (CIS2: AAL3_ANY by default).
	ACRValues string `json:"acr_values"`
	// ExtraParams are further authorization request parameters.
	ExtraParams map[string]string `json:"extra_params"`
	// ClinicianClaim names the claim that is the clinician id (default per
	// preset: sub, Entra oid).
	ClinicianClaim string `json:"clinician_claim"`
	// RolesClaim names the claim that holds the roles (a dotted path to a
	// string or a list of strings; default per preset).
	RolesClaim string `json:"roles_claim"`
	// RoleScopes map roles to the scopes of the clinician's tokens; roles
	// the map does not name grant nothing (ROLE_SCOPES applies when
	// empty).
	RoleScopes map[string][]string `json:"role_scopes"`
	// RequireClinician: the clinician id must name a clinician whose login
	// is active (default true).
	RequireClinician *bool `json:"require_clinician"`
	// Algorithms the provider signs with (default RS256, ES256).
	Algorithms []string `json:"algorithms"`
}

// MustHaveClinician reports whether a sign-in needs a known, active
// clinician.
func (c Config) MustHaveClinician() bool { return c.RequireClinician == nil || *c.RequireClinician }

var idRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)

// ParseConfigs reads OIDC_PROVIDERS: a JSON array of Config. Presets are
// applied and every entry is checked; keys and files are read.
func ParseConfigs(text string) ([]Config, error) {
	list, err := config.JSONList[Config](text, "providers")
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i := range list {
		if err := list[i].complete(); err != nil {
			return nil, fmt.Errorf("provider %d (%s): %v", i, list[i].ID, err)
		}
		if seen[list[i].ID] {
			return nil, fmt.Errorf("provider id %q is listed twice", list[i].ID)
		}
		seen[list[i].ID] = true
	}
	return list, nil
}

// complete applies the preset and checks the entry.
func (c *Config) complete() error {
	if !idRe.MatchString(c.ID) || c.ID == "local" {
		return errors.New("id must be 1 to 40 lower-case letters, digits, - or _ (and not \"local\")")
	}
	if c.Name == "" {
		c.Name = c.ID
	}
	if c.Preset == "" {
		c.Preset = PresetOIDC
	}
	var scopes []string
	switch c.Preset {
	case PresetOIDC:
		scopes = []string{"openid", "profile", "email"}
		c.ClinicianClaim = or(c.ClinicianClaim, "sub")
		c.RolesClaim = or(c.RolesClaim, "roles")
	case PresetEntra:
		if c.Issuer == "" {
			if c.Tenant == "" || strings.ContainsAny(c.Tenant, "/?#") || slices.Contains([]string{"common", "organizations", "consumers"}, c.Tenant) {
				return errors.New("entra: tenant (a tenant id or domain) or issuer is required")
			}
			c.Issuer = "https://login.microsoftonline.com/" + c.Tenant + "/v2.0"
		}
		scopes = []string{"openid", "profile", "email"}
		c.ClinicianClaim = or(c.ClinicianClaim, "oid")
		c.RolesClaim = or(c.RolesClaim, "roles")
	case PresetCIS2:
		scopes = []string{"openid", "profile", "nationalrbacaccess", "selectedrole"}
		c.ACRValues = or(c.ACRValues, "AAL3_ANY")
		c.ClinicianClaim = or(c.ClinicianClaim, "sub")
		// Roles come from the selected role (see Identity).
	case PresetHMPPS:
		scopes = []string{"openid"}
		c.ClinicianClaim = or(c.ClinicianClaim, "sub")
		c.RolesClaim = or(c.RolesClaim, "authorities")
	default:
		return fmt.Errorf("preset %q is not one of oidc, entra, cis2, hmpps", c.Preset)
	}
	if len(c.Scopes) == 0 {
		c.Scopes = scopes
	}
	if !slices.Contains(c.Scopes, "openid") {
		c.Scopes = append([]string{"openid"}, c.Scopes...)
	}
	if err := checkURL("issuer", c.Issuer); err != nil {
		return err
	}
	if c.ClientID == "" {
		return errors.New("client_id is required")
	}
	if len(c.Algorithms) == 0 {
		c.Algorithms = []string{auth.AlgRS256, auth.AlgES256}
	}
	for _, a := range c.Algorithms {
		if !slices.Contains(auth.AsymmetricAlgorithms, a) {
			return fmt.Errorf("algorithm %q is not one of %s", a, strings.Join(auth.AsymmetricAlgorithms, ", "))
		}
	}
	hasKey := c.PrivateKey != "" || c.PrivateKeyFile != "" || c.ClientAssertionFile != ""
	if c.AuthMethod == "" {
		c.AuthMethod = ClientSecretBasic
		if hasKey && c.ClientSecret == "" {
			c.AuthMethod = PrivateKeyJWT
		}
	}
	switch c.AuthMethod {
	case ClientSecretBasic, ClientSecretPost:
		if c.ClientSecret == "" {
			return fmt.Errorf("%s needs client_secret", c.AuthMethod)
		}
	case PrivateKeyJWT:
		if !hasKey {
			return errors.New("private_key_jwt needs private_key, private_key_file or client_assertion_file")
		}
		if c.PrivateKeyFile != "" {
			b, err := os.ReadFile(c.PrivateKeyFile)
			if err != nil {
				return fmt.Errorf("private_key_file: %v", err)
			}
			c.PrivateKey = string(b)
		}
		if c.AssertionAudience != "" && c.AssertionAudience != "token_endpoint" && c.AssertionAudience != "issuer" {
			return errors.New("assertion_audience must be token_endpoint or issuer")
		}
		if c.PrivateKey != "" {
			if _, err := parseSigner(c.PrivateKey); err != nil {
				return fmt.Errorf("private key: %v", err)
			}
		}
	default:
		return fmt.Errorf("auth_method %q is not one of client_secret_basic, client_secret_post, private_key_jwt", c.AuthMethod)
	}
	for role := range c.RoleScopes {
		if role == "" {
			return errors.New("role_scopes: empty role name")
		}
	}
	return nil
}

func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

// checkURL accepts https URLs without query, and http ones on a loopback
// address (tests, a provider on the same machine).
func checkURL(field, v string) error { return auth.CheckSecureURL(field, v, false) }
