package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is the gateway's configuration, read once at start-up from flags
// and CHAPERONE_* environment variables (a flag wins over the variable).
type Config struct {
	Listen           string
	PublicURL        string
	TLSCert          string
	TLSKey           string
	OIDCIssuer       string
	OIDCClientID     string
	OIDCClientSecret string
	OIDCScopes       []string
	AllowedDomains   []string
	Tenant           string
	PupilGroups      []string
	StaffGroups      []string
	SLTGroups        []string
	HeadGroups       []string
	DSLGroups        []string
	AdminGroups      []string
	PlaceholderWords []string
	Database         string
	SessionIdle      time.Duration
	LogLevel         string
	Location         *time.Location
	RosterGroups     []string
	RecordPolicy     string
	UDPPort          int
	ICEPublicIPs     []string
	ICELoopback      bool
	StaffGrace       time.Duration
}

// ConfigError names the configuration key that is missing or invalid.
type ConfigError struct {
	Key string // flag name; the variable is CHAPERONE_<KEY>
	Msg string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("configuration %s (flag -%s, environment %s): %s", e.Key, e.Key, envName(e.Key), e.Msg)
}

func envName(key string) string { return "CHAPERONE_" + strings.ToUpper(key) }

// configDefaults are the values `chaperone dev` starts from.
type configDefaults map[string]string

// parseConfig reads flags from args and variables through getenv. defaults
// fill keys that neither sets (used by `chaperone dev`).
func parseConfig(name string, args []string, getenv func(string) string, defaults configDefaults) (Config, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var c Config
	str := map[string]*string{}
	def := func(key, usage string) *string {
		p := new(string)
		fs.StringVar(p, key, "", usage+" (env "+envName(key)+")")
		str[key] = p
		return p
	}
	listen := def("listen", "address to listen on, e.g. :8080")
	public := def("public_url", "URL people use to reach the gateway, e.g. https://lessons.school.example")
	tlsCert := def("tls_cert", "TLS certificate file (PEM); serve HTTPS when set with tls_key")
	tlsKey := def("tls_key", "TLS private key file (PEM)")
	issuer := def("oidc_issuer", "OpenID Connect issuer URL of the school's identity provider")
	clientID := def("oidc_client_id", "OIDC client ID registered for chaperone")
	secret := def("oidc_client_secret", "OIDC client secret")
	secretFile := def("oidc_client_secret_file", "file holding the OIDC client secret")
	scopes := def("oidc_scopes", "comma-separated scopes (default openid,profile,email)")
	domains := def("allowed_domains", "comma-separated e-mail domains of school accounts")
	tenant := def("tenant", "Entra tenant ID (tid) or Google Workspace domain (hd) that accounts must belong to")
	pupils := def("pupil_groups", "comma-separated IdP groups of pupils")
	staff := def("staff_groups", "comma-separated IdP groups of teaching staff")
	slt := def("slt_groups", "comma-separated IdP groups of senior leaders")
	head := def("head_groups", "comma-separated IdP groups of the headteacher")
	dsl := def("dsl_groups", "comma-separated IdP groups of the DSL and deputies")
	admin := def("admin_groups", "comma-separated IdP groups of IT admins")
	placeholders := def("placeholder_words", "comma-separated words that mark a name as a placeholder (default: built-in list)")
	database := def("database", "sqlite:PATH or postgres://...")
	idle := def("session_idle", "signed-in session idle expiry, e.g. 8h")
	logLevel := def("log_level", "debug, info, warn or error")
	timezone := def("timezone", "the school's time zone (default Europe/London)")
	rosterGroups := def("roster_groups", "comma-separated IdP groups offered as class rosters (e.g. year-7,year-8,7A)")
	udpPort := def("udp_port", "the one UDP port for all media (default 50000); open it in the firewall")
	publicIP := def("ice_public_ip", "public IP address(es) to advertise for media when behind NAT, comma-separated")
	loopback := def("ice_loopback", "advertise loopback addresses for media (true only for a browser on the same machine)")
	grace := def("staff_grace", "how long a room waits for staff to return before ending (default 5m)")
	recordPolicy := def("record_policy", "one_to_one (record when a pupil is alone with one member of staff) or always")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for key, p := range str {
		if set[key] {
			continue
		}
		if v := getenv(envName(key)); v != "" {
			*p = v
		} else if v, ok := defaults[key]; ok {
			*p = v
		}
	}
	c.Listen = orDefault(*listen, ":8080")
	c.TLSCert, c.TLSKey = *tlsCert, *tlsKey
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return Config{}, &ConfigError{"tls_cert", "set both tls_cert and tls_key, or neither"}
	}
	var err error
	if c.PublicURL, err = requireURL("public_url", *public); err != nil {
		return Config{}, err
	}
	if c.OIDCIssuer, err = requireURL("oidc_issuer", *issuer); err != nil {
		return Config{}, err
	}
	if c.OIDCClientID = *clientID; c.OIDCClientID == "" {
		return Config{}, &ConfigError{"oidc_client_id", "required: the client ID registered for chaperone at the identity provider"}
	}
	c.OIDCClientSecret = *secret
	if *secretFile != "" {
		b, err := os.ReadFile(*secretFile)
		if err != nil {
			return Config{}, &ConfigError{"oidc_client_secret_file", err.Error()}
		}
		c.OIDCClientSecret = strings.TrimSpace(string(b))
	}
	c.OIDCScopes = list(*scopes)
	if c.AllowedDomains = list(*domains); len(c.AllowedDomains) == 0 {
		return Config{}, &ConfigError{"allowed_domains", "required: the e-mail domain(s) of the school's accounts, e.g. school.example"}
	}
	for _, d := range c.AllowedDomains {
		if strings.ContainsAny(d, "@/ ") || !strings.Contains(d, ".") {
			return Config{}, &ConfigError{"allowed_domains", fmt.Sprintf("%q is not a domain name", d)}
		}
	}
	c.Tenant = strings.TrimSpace(*tenant)
	c.PupilGroups, c.StaffGroups, c.SLTGroups = list(*pupils), list(*staff), list(*slt)
	c.HeadGroups, c.DSLGroups, c.AdminGroups = list(*head), list(*dsl), list(*admin)
	if len(c.StaffGroups)+len(c.HeadGroups) == 0 {
		return Config{}, &ConfigError{"staff_groups", "required: at least one IdP group of teaching staff (and head_groups for the headteacher)"}
	}
	if len(c.PupilGroups) == 0 {
		return Config{}, &ConfigError{"pupil_groups", "required: at least one IdP group of pupils"}
	}
	if *placeholders != "" {
		c.PlaceholderWords = list(*placeholders)
	}
	if c.Database = orDefault(*database, "sqlite:data/chaperone.db"); !strings.HasPrefix(c.Database, "sqlite:") && !strings.HasPrefix(c.Database, "postgres://") && !strings.HasPrefix(c.Database, "postgresql://") {
		return Config{}, &ConfigError{"database", "must start with sqlite: or postgres://"}
	}
	c.SessionIdle = 8 * time.Hour
	if *idle != "" {
		d, err := time.ParseDuration(*idle)
		if err != nil || d < time.Minute || d > 7*24*time.Hour {
			return Config{}, &ConfigError{"session_idle", fmt.Sprintf("%q is not a duration between 1m and 168h", *idle)}
		}
		c.SessionIdle = d
	}
	switch c.LogLevel = orDefault(*logLevel, "info"); c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return Config{}, &ConfigError{"log_level", fmt.Sprintf("%q is not one of debug, info, warn, error", c.LogLevel)}
	}
	if c.Location, err = time.LoadLocation(orDefault(*timezone, "Europe/London")); err != nil {
		return Config{}, &ConfigError{"timezone", fmt.Sprintf("%q is not a time zone name like Europe/London", *timezone)}
	}
	c.RosterGroups = list(*rosterGroups)
	switch c.RecordPolicy = orDefault(*recordPolicy, "one_to_one"); c.RecordPolicy {
	case "one_to_one", "always":
	default:
		return Config{}, &ConfigError{"record_policy", fmt.Sprintf("%q is not one_to_one or always", c.RecordPolicy)}
	}
	c.UDPPort = 50000
	if *udpPort != "" {
		n, err := strconv.Atoi(*udpPort)
		if err != nil || n < 0 || n > 65535 {
			return Config{}, &ConfigError{"udp_port", fmt.Sprintf("%q is not a port number", *udpPort)}
		}
		c.UDPPort = n
	}
	for _, ip := range list(*publicIP) {
		if net.ParseIP(ip) == nil {
			return Config{}, &ConfigError{"ice_public_ip", fmt.Sprintf("%q is not an IP address", ip)}
		}
		c.ICEPublicIPs = append(c.ICEPublicIPs, ip)
	}
	if *loopback != "" {
		if c.ICELoopback, err = strconv.ParseBool(*loopback); err != nil {
			return Config{}, &ConfigError{"ice_loopback", "must be true or false"}
		}
	}
	c.StaffGrace = 5 * time.Minute
	if *grace != "" {
		d, err := time.ParseDuration(*grace)
		if err != nil || d < time.Second || d > time.Hour {
			return Config{}, &ConfigError{"staff_grace", fmt.Sprintf("%q is not a duration between 1s and 1h", *grace)}
		}
		c.StaffGrace = d
	}
	return c, nil
}

func requireURL(key, v string) (string, error) {
	if v == "" {
		return "", &ConfigError{key, "required"}
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", &ConfigError{key, fmt.Sprintf("%q is not an http(s) URL", v)}
	}
	return strings.TrimSuffix(v, "/"), nil
}

func list(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

var errUsage = errors.New("usage")
