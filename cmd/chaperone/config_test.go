package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/notify"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

var validEnv = map[string]string{
	"CHAPERONE_PUBLIC_URL":      "https://lessons.oakfield.example",
	"CHAPERONE_OIDC_ISSUER":     "https://login.microsoftonline.com/tid/v2.0",
	"CHAPERONE_OIDC_CLIENT_ID":  "abc",
	"CHAPERONE_ALLOWED_DOMAINS": "oakfield.example, pupils.oakfield.example",
	"CHAPERONE_STAFF_GROUPS":    "g-staff",
	"CHAPERONE_PUPIL_GROUPS":    "g-pupils",
	"CHAPERONE_S3_ENDPOINT":     "s3.oakfield.example:443",
	"CHAPERONE_S3_BUCKET":       "recordings",
	"CHAPERONE_S3_ACCESS_KEY":   "AK",
	"CHAPERONE_S3_SECRET_KEY":   "SK",
}

func with(k, v string) map[string]string {
	m := map[string]string{}
	for a, b := range validEnv {
		m[a] = b
	}
	m[k] = v
	return m
}

func TestParseConfig(t *testing.T) {
	t.Parallel()
	c, err := parseConfig("serve", nil, env(validEnv), nil)
	require.NoError(t, err)
	require.Equal(t, []string{"oakfield.example", "pupils.oakfield.example"}, c.AllowedDomains)
	require.Equal(t, ":8080", c.Listen)
	require.Equal(t, "sqlite:data/chaperone.db", c.Database)

	// A flag wins over the environment.
	c, err = parseConfig("serve", []string{"-listen", ":9000"}, env(with("CHAPERONE_LISTEN", ":7000")), nil)
	require.NoError(t, err)
	require.Equal(t, ":9000", c.Listen)

	bad := []struct{ key, value, want string }{
		{"CHAPERONE_PUBLIC_URL", "", "public_url"},
		{"CHAPERONE_PUBLIC_URL", "lessons.example", "public_url"},
		{"CHAPERONE_OIDC_ISSUER", "ftp://x", "oidc_issuer"},
		{"CHAPERONE_OIDC_CLIENT_ID", "", "oidc_client_id"},
		{"CHAPERONE_ALLOWED_DOMAINS", "", "allowed_domains"},
		{"CHAPERONE_ALLOWED_DOMAINS", "@gmail.com", "allowed_domains"},
		{"CHAPERONE_STAFF_GROUPS", "", "staff_groups"},
		{"CHAPERONE_PUPIL_GROUPS", "", "pupil_groups"},
		{"CHAPERONE_DATABASE", "mysql://x", "database"},
		{"CHAPERONE_SESSION_IDLE", "forever", "session_idle"},
		{"CHAPERONE_LOG_LEVEL", "loud", "log_level"},
		{"CHAPERONE_TLS_CERT", "/cert.pem", "tls_cert"},
		{"CHAPERONE_OIDC_CLIENT_SECRET_FILE", "/nonexistent/secret", "oidc_client_secret_file"},
		{"CHAPERONE_S3_ENDPOINT", "", "s3_endpoint"},
		{"CHAPERONE_S3_ENDPOINT", "https://s3.example", "s3_endpoint"},
		{"CHAPERONE_S3_BUCKET", "", "s3_bucket"},
		{"CHAPERONE_S3_SECRET_KEY", "", "s3_access_key"},
		{"CHAPERONE_RETENTION_DAYS", "27", "retention_days"},
		{"CHAPERONE_RETENTION_DAYS", "four weeks", "retention_days"},
		{"CHAPERONE_LOCK_MODE", "forever", "lock_mode"},
		{"CHAPERONE_S3_TLS", "maybe", "s3_tls"},
		{"CHAPERONE_S3_SECRET_KEY_FILE", "/nonexistent/key", "s3_secret_key_file"},
		{"CHAPERONE_MFA_ROLES", "dsl,pupil", "mfa_roles"},
		{"CHAPERONE_RECORDING_REAUTH", "10s", "recording_reauth"},
		{"CHAPERONE_RECORDING_REAUTH", "soon", "recording_reauth"},
		{"CHAPERONE_SIGNIN_FAILURES_PER_MINUTE", "0", "signin_failures_per_minute"},
		{"CHAPERONE_MFA_ROLES", "none,dsl", "mfa_roles"},
		{"CHAPERONE_ROOM_CONNECTIONS_PER_MINUTE", "lots", "room_connections_per_minute"},
		{"CHAPERONE_TRUSTED_PROXIES", "10.0.0.0/33", "trusted_proxies"},
		{"CHAPERONE_YEAR_LEADS", "year-8", "year_leads"},
		{"CHAPERONE_YEAR_LEADS", "year-8=not-an-address", "year_leads"},
		{"CHAPERONE_YEAR_LEADS", "year-8=a@oakfield.example,year-8=b@oakfield.example", "year_leads"},
		{"CHAPERONE_DSL_EMAILS", "h.murray", "dsl_emails"},
		{"CHAPERONE_SMTP_FROM", "chaperone@oakfield.example", "smtp_host"},
		{"CHAPERONE_SMTP_HOST", "mail.oakfield.example", "smtp_from"},
	}
	for _, b := range bad {
		_, err := parseConfig("serve", nil, env(with(b.key, b.value)), nil)
		var ce *ConfigError
		require.True(t, errors.As(err, &ce), "%s=%q: %v", b.key, b.value, err)
		require.Equal(t, b.want, ce.Key)
		require.Contains(t, err.Error(), "CHAPERONE_"+strings.ToUpper(b.want))
	}
}

func TestParseMailConfig(t *testing.T) {
	t.Parallel()
	m := with("CHAPERONE_YEAR_LEADS", "year-8=P.Sharma@oakfield.example, year-9=d.hughes@oakfield.example")
	c, err := parseConfig("serve", nil, env(m), nil)
	require.NoError(t, err)
	require.Equal(t, "p.sharma@oakfield.example", c.YearLeads["year-8"])
	require.Nil(t, c.SMTP, "no smtp_host: no e-mail")
	require.Empty(t, c.DSLEmails)
	m["CHAPERONE_DSL_EMAILS"] = "H.Murray@oakfield.example, safeguarding@oakfield.example"
	c, err = parseConfig("serve", nil, env(m), nil)
	require.NoError(t, err)
	require.Equal(t, []string{"h.murray@oakfield.example", "safeguarding@oakfield.example"}, c.DSLEmails)
	delete(m, "CHAPERONE_DSL_EMAILS")

	pass := filepath.Join(t.TempDir(), "smtp-pass")
	require.NoError(t, os.WriteFile(pass, []byte("s3cret\n"), 0o600))
	m["CHAPERONE_SMTP_HOST"], m["CHAPERONE_SMTP_FROM"] = "mail.oakfield.example", "chaperone@oakfield.example"
	m["CHAPERONE_SMTP_USERNAME"], m["CHAPERONE_SMTP_PASSWORD_FILE"] = "chaperone", pass
	c, err = parseConfig("serve", nil, env(m), nil)
	require.NoError(t, err)
	require.Equal(t, notify.SMTPConfig{Host: "mail.oakfield.example", Port: 587, From: "chaperone@oakfield.example", TLS: "starttls",
		Username: "chaperone", Password: "s3cret"}, *c.SMTP)
	m["CHAPERONE_SMTP_TLS"] = "tls"
	c, err = parseConfig("serve", nil, env(m), nil)
	require.NoError(t, err)
	require.Equal(t, 465, c.SMTP.Port)

	for _, b := range []struct{ key, value, want string }{
		{"CHAPERONE_SMTP_TLS", "ssl", "smtp_tls"},
		{"CHAPERONE_SMTP_TLS", "none", "smtp_tls"}, // the password would go in clear
		{"CHAPERONE_SMTP_PORT", "0", "smtp_port"},
		{"CHAPERONE_SMTP_PORT", "smtp", "smtp_port"},
		{"CHAPERONE_SMTP_FROM", "Chaperone <c@oakfield.example>", "smtp_from"},
		{"CHAPERONE_SMTP_HOST", "mail.example:25", "smtp_host"},
		{"CHAPERONE_SMTP_PASSWORD_FILE", "/nonexistent/pass", "smtp_password_file"},
		{"CHAPERONE_SMTP_USERNAME", "", "smtp_password"},
	} {
		mm := map[string]string{}
		for k, v := range m {
			mm[k] = v
		}
		mm[b.key] = b.value
		_, err := parseConfig("serve", nil, env(mm), nil)
		var ce *ConfigError
		require.True(t, errors.As(err, &ce), "%s=%q: %v", b.key, b.value, err)
		require.Equal(t, b.want, ce.Key, "%s=%q", b.key, b.value)
	}
	// A relay on localhost may take the password without TLS.
	m["CHAPERONE_SMTP_TLS"], m["CHAPERONE_SMTP_HOST"] = "none", "127.0.0.1"
	c, err = parseConfig("serve", nil, env(m), nil)
	require.NoError(t, err)
	require.Equal(t, 25, c.SMTP.Port)
}

func FuzzParseConfig(f *testing.F) {
	f.Add("https://x.example", "oakfield.example", "8h", "info")
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, public, domains, idle, level string) {
		m := with("CHAPERONE_PUBLIC_URL", public)
		m["CHAPERONE_ALLOWED_DOMAINS"], m["CHAPERONE_SESSION_IDLE"], m["CHAPERONE_LOG_LEVEL"] = domains, idle, level
		c, err := parseConfig("serve", nil, env(m), nil)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Key == "" {
				t.Fatalf("error without a key: %v", err)
			}
			return
		}
		if len(c.AllowedDomains) == 0 || c.PublicURL == "" {
			t.Fatalf("accepted config missing required values: %+v", c)
		}
	})
}

func TestParseConfigRoleMapping(t *testing.T) {
	t.Parallel()
	m := with("CHAPERONE_PUPIL_GROUPS", "")
	m["CHAPERONE_STAFF_GROUPS"] = ""
	m["CHAPERONE_PUPIL_DOMAINS"] = "pupils.oakfield.example"
	m["CHAPERONE_STAFF_DOMAINS"] = "oakfield.example"
	c, err := parseConfig("serve", nil, env(m), nil)
	require.NoError(t, err, "domains stand in for groups")
	require.Equal(t, []string{"pupils.oakfield.example"}, c.PupilDomains)
	require.Equal(t, groupOverageRefuse, c.GroupOverage)

	roles := filepath.Join(t.TempDir(), "roles.csv")
	require.NoError(t, os.WriteFile(roles, []byte("email,role\nm.okafor@oakfield.example,head\n"), 0o600))
	m = with("CHAPERONE_ROLE_FILE", roles)
	c, err = parseConfig("serve", nil, env(m), nil)
	require.NoError(t, err)
	require.Len(t, c.RoleList, 1)

	m = with("CHAPERONE_GROUP_OVERAGE", "graph")
	m["CHAPERONE_TENANT"] = "5b9d7c8e-1f2a-4b3c-9d8e-7f6a5b4c3d2e"
	m["CHAPERONE_OIDC_CLIENT_SECRET"] = "s"
	c, err = parseConfig("serve", nil, env(m), nil)
	require.NoError(t, err)
	require.Equal(t, "https://login.microsoftonline.com/5b9d7c8e-1f2a-4b3c-9d8e-7f6a5b4c3d2e/oauth2/v2.0/token", c.GraphTokenURL)

	bad := []struct {
		set  map[string]string
		want string
	}{
		{map[string]string{"CHAPERONE_PUPIL_DOMAINS": "@pupils"}, "pupil_domains"},
		{map[string]string{"CHAPERONE_ROLE_FILE": "/nonexistent/roles.csv"}, "role_file"},
		{map[string]string{"CHAPERONE_GROUP_OVERAGE": "maybe"}, "group_overage"},
		{map[string]string{"CHAPERONE_GROUP_OVERAGE": "graph", "CHAPERONE_TENANT": "t"}, "group_overage"},
		{map[string]string{"CHAPERONE_GROUP_OVERAGE": "graph", "CHAPERONE_OIDC_CLIENT_SECRET": "s"}, "group_overage"},
		{map[string]string{"CHAPERONE_GRAPH_URL": "graph"}, "graph_url"},
		{map[string]string{"CHAPERONE_ROSTER_INTERVAL": "1s"}, "roster_interval"},
		{map[string]string{"CHAPERONE_OIDC_ISSUER": "https://accounts.google.com"}, "tenant"},
	}
	for _, tc := range bad {
		m := with("CHAPERONE_LISTEN", ":8080")
		for k, v := range tc.set {
			m[k] = v
		}
		_, err := parseConfig("serve", nil, env(m), nil)
		var ce *ConfigError
		require.ErrorAs(t, err, &ce, "%v", tc.set)
		require.Equal(t, tc.want, ce.Key, "%v: %v", tc.set, err)
	}
}

// TestICEConfig: ICE-TCP is on by default on the UDP port's number and
// can be moved or turned off; private candidates are checked by default
// (pupils on the school's LAN).
func TestICEConfig(t *testing.T) {
	t.Parallel()
	c, err := parseConfig("serve", nil, env(validEnv), nil)
	require.NoError(t, err)
	require.Equal(t, 50000, c.UDPPort)
	require.Equal(t, 50000, c.ICETCPPort)
	require.True(t, c.ICEAllowPrivate, "ice_allow_private defaults to true")
	require.False(t, c.ICELoopback)

	c, err = parseConfig("serve", []string{"-udp_port", "0"}, env(validEnv), nil)
	require.NoError(t, err)
	require.Equal(t, 0, c.ICETCPPort, "an ephemeral UDP port: an ephemeral TCP port")
	c, err = parseConfig("serve", nil, env(with("CHAPERONE_ICE_TCP_PORT", "443")), nil)
	require.NoError(t, err)
	require.Equal(t, 443, c.ICETCPPort)
	c, err = parseConfig("serve", nil, env(with("CHAPERONE_ICE_TCP_PORT", "off")), nil)
	require.NoError(t, err)
	require.Equal(t, -1, c.ICETCPPort)
	c, err = parseConfig("serve", nil, env(with("CHAPERONE_ICE_ALLOW_PRIVATE", "false")), nil)
	require.NoError(t, err)
	require.False(t, c.ICEAllowPrivate)
	for _, v := range []string{"-1", "65536", "tcp"} {
		_, err = parseConfig("serve", nil, env(with("CHAPERONE_ICE_TCP_PORT", v)), nil)
		var ce *ConfigError
		require.ErrorAs(t, err, &ce, v)
		require.Equal(t, "ice_tcp_port", ce.Key)
	}
}

// TestTURNConfig: TURN is off unless asked for; an embedded relay needs an
// IPv4 relay address (or ice_public_ip) and, for TLS, a certificate; an
// external TURN needs its shared secret.
func TestTURNConfig(t *testing.T) {
	t.Parallel()
	c, err := parseConfig("serve", nil, env(validEnv), nil)
	require.NoError(t, err)
	require.Nil(t, c.TURN, "off by default")

	c, err = parseConfig("serve", []string{"-turn_port", "3478", "-ice_public_ip", "203.0.113.5"}, env(validEnv), nil)
	require.NoError(t, err)
	require.Equal(t, &TURNConfig{Port: 3478, RelayIP: "203.0.113.5", Host: "lessons.oakfield.example"}, c.TURN)
	st, err := c.TURN.sfuTURN()
	require.NoError(t, err)
	require.True(t, st.Embedded)
	require.Len(t, st.Secret, 64, "a random secret per start")

	c, err = parseConfig("serve", []string{"-turn_urls", "turn:turn.oakfield.example:3478?transport=udp", "-turn_secret", "s3cret"}, env(validEnv), nil)
	require.NoError(t, err)
	require.Equal(t, &TURNConfig{URLs: []string{"turn:turn.oakfield.example:3478?transport=udp"}, Secret: "s3cret"}, c.TURN)

	for _, tc := range []struct {
		args []string
		key  string
	}{
		{[]string{"-turn_port", "3478"}, "turn_relay_ip"},
		{[]string{"-turn_port", "x"}, "turn_port"},
		{[]string{"-turn_port", "3478", "-turn_relay_ip", "::1"}, "turn_relay_ip"},
		{[]string{"-turn_port", "3478", "-turn_relay_ip", "203.0.113.5", "-turn_tls_port", "443"}, "turn_tls_port"},
		{[]string{"-turn_tls_port", "443", "-turn_tls_cert", "c", "-turn_tls_key", "k"}, "turn_port"},
		{[]string{"-turn_urls", "turn:x:3478"}, "turn_secret"},
		{[]string{"-turn_urls", "https://x", "-turn_secret", "s"}, "turn_urls"},
		{[]string{"-turn_secret", "s"}, "turn_port"},
	} {
		_, err := parseConfig("serve", tc.args, env(validEnv), nil)
		var ce *ConfigError
		require.ErrorAs(t, err, &ce, "%v", tc.args)
		require.Equal(t, tc.key, ce.Key, "%v", tc.args)
	}
}
