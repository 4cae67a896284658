package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/notify"
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
	PupilDomains     []string
	StaffDomains     []string
	RoleList         map[string][]auth.Role // from role_file
	GroupOverage     string                 // groupOverageRefuse or groupOverageGraph
	GraphURL         string
	GraphTokenURL    string
	RosterDir        string        // scheduled class-list import; "" = none
	RosterInterval   time.Duration // how often RosterDir is read
	Database         string
	SessionIdle      time.Duration
	LogLevel         string
	Location         *time.Location
	RosterGroups     []string
	RecordPolicy     string
	UDPPort          int
	ICETCPPort       int // the one TCP port for ICE-TCP; -1 = no ICE-TCP
	ICEPublicIPs     []string
	ICELoopback      bool
	ICEAllowPrivate  bool        // clients' candidates may name private addresses
	TURN             *TURNConfig // nil: no TURN relay
	MetricsListen    string      // where /metrics is served on its own; "" = not
	MetricsToken     string      // when set, /metrics is also on listen, for this bearer token
	StaffGrace       time.Duration
	RejoinGrace      time.Duration
	S3               S3Config
	SpoolDir         string
	MFARoles         []string // nil: the default (dsl, head, admin)
	MFAACR           []string
	RecordingReauth  time.Duration
	SigninFailures   int
	SigninStarts     int
	RoomConnsPerAddr int
	TrustedProxies   []netip.Prefix
	YearLeads        notify.YearLeads
	DSLEmails        []string           // always told of a concern, with the accounts signed in as DSL
	SMTP             *notify.SMTPConfig // nil: no e-mail
}

// S3Config is where recordings are stored.
type S3Config struct {
	Endpoint, Bucket, AccessKey, SecretKey, Region, LockMode string
	TLS                                                      bool
	RetentionDays                                            int
}

// group_overage values.
const (
	groupOverageRefuse = "refuse"
	groupOverageGraph  = "graph"
)

const (
	// defaultMetricsListen keeps /metrics off the address people use:
	// only this machine (or, set to :9090, the pod network) reaches it.
	defaultMetricsListen = "127.0.0.1:9090"
	metricsOff           = "off"
	iceTCPOff            = "off" // ice_tcp_port: no ICE-TCP
	minMetricsToken      = 16
)

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
	pupilDomains := def("pupil_domains", "comma-separated e-mail domains whose accounts are pupils, e.g. pupils.school.sch.uk (for IdPs without groups: Google Workspace)")
	staffDomains := def("staff_domains", "comma-separated e-mail domains whose accounts are staff")
	roleFile := def("role_file", "CSV file with columns email and role (pupil, staff, slt, head, dsl, admin): roles by address, for IdPs without groups")
	overage := def("group_overage", "what to do when Entra ID leaves the groups out (more than 200): refuse (default, with a page telling the IT admin what to change) or graph (look them up in Microsoft Graph with the app's client ID and secret)")
	graphURL := def("graph_url", "Microsoft Graph base URL (default https://graph.microsoft.com)")
	graphTokenURL := def("graph_token_url", "token endpoint for Graph's client credentials (default https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token)")
	rosterDir := def("roster_dir", "directory the MIS drops class lists in (OneRoster 1.2 CSV or School Data Sync CSV, a .zip or the CSV files); read at start and every roster_interval")
	rosterInterval := def("roster_interval", "how often roster_dir is read (default 1h)")
	placeholders := def("placeholder_words", "comma-separated words that mark a name as a placeholder (default: built-in list)")
	database := def("database", "sqlite:PATH or postgres://...")
	idle := def("session_idle", "signed-in session idle expiry, e.g. 8h")
	logLevel := def("log_level", "debug, info, warn or error")
	timezone := def("timezone", "the school's time zone (default Europe/London)")
	rosterGroups := def("roster_groups", "comma-separated IdP groups offered as class rosters (e.g. year-7,year-8,7A)")
	udpPort := def("udp_port", "the one UDP port for all media (default 50000); open it in the firewall")
	tcpPort := def("ice_tcp_port", "the one TCP port for media from networks that block UDP (ICE-TCP; default: the udp_port number), or off")
	publicIP := def("ice_public_ip", "public IP address(es) to advertise for media when behind NAT, comma-separated")
	loopback := def("ice_loopback", "advertise loopback addresses for media (true only for a browser on the same machine)")
	allowPrivate := def("ice_allow_private", "check clients' media candidates on private addresses (10/8, 172.16/12, 192.168/16, fc00::/7), as pupils on the school's LAN have (default true); false: LAN clients still connect, from their own checks")
	turnPort := def("turn_port", "run the embedded TURN relay on this UDP and TCP port (e.g. 3478) for networks that block the media ports (default off)")
	turnTLSPort := def("turn_tls_port", "also serve the embedded TURN relay over TLS on this port (e.g. 443 or 5349), for networks that allow only TLS; needs turn_tls_cert and turn_tls_key (or tls_cert and tls_key)")
	turnCert := def("turn_tls_cert", "TLS certificate file (PEM) for turn_tls_port (default tls_cert)")
	turnKey := def("turn_tls_key", "TLS private key file (PEM) for turn_tls_port (default tls_key)")
	turnRelayIP := def("turn_relay_ip", "the IPv4 address clients reach the embedded TURN relay on (default: the first ice_public_ip)")
	turnURLs := def("turn_urls", "TURN URLs handed to browsers, comma-separated (turn:host:3478?transport=udp,turns:host:443?transport=tcp): an external TURN server such as coturn, or the embedded relay's public names")
	turnSecret := def("turn_secret", "shared secret of the TURN server (coturn static-auth-secret) from which each participant's short-lived credentials are made (default with the embedded relay: random at each start)")
	turnSecretFile := def("turn_secret_file", "file holding turn_secret")
	metricsListen := def("metrics_listen", "address serving /metrics on its own, e.g. 127.0.0.1:9090 (the default), or off")
	metricsToken := def("metrics_token_file", "file holding a bearer token: /metrics is also served on listen, to requests with Authorization: Bearer <token>")
	grace := def("staff_grace", "how long a room waits for staff to return before ending (default 5m)")
	rejoin := def("rejoin_grace", "how long someone whose connection dropped may come back into the lesson without being admitted again (default 2m)")
	s3Endpoint := def("s3_endpoint", "S3-compatible endpoint for recordings, host:port (required)")
	s3Bucket := def("s3_bucket", "bucket for recordings: must have Object Lock and versioning enabled (required)")
	s3Access := def("s3_access_key", "S3 access key")
	s3AccessFile := def("s3_access_key_file", "file holding the S3 access key")
	s3Secret := def("s3_secret_key", "S3 secret key")
	s3SecretFile := def("s3_secret_key_file", "file holding the S3 secret key")
	s3Region := def("s3_region", "S3 region (default us-east-1)")
	s3TLS := def("s3_tls", "use TLS to reach S3 (default true)")
	retention := def("retention_days", "days recordings stay immutable (Object Lock); at least 28 (default 28)")
	lockMode := def("lock_mode", "Object Lock mode: GOVERNANCE (default) or COMPLIANCE")
	spool := def("spool_dir", "local directory where recordings are spooled before upload (default data/spool)")
	recordPolicy := def("record_policy", "one_to_one (record when a pupil is alone with one member of staff) or always")
	mfaRoles := def("mfa_roles", "roles that need a multi-factor sign-in: comma-separated from dsl, head, slt, admin, staff, or none (default dsl,head,admin)")
	mfaACR := def("mfa_acr", "acr values that count as multi-factor sign-in, comma-separated (amr containing mfa always counts)")
	reauth := def("recording_reauth", "how recent a sign-in must be to play, download or release recordings (default 15m)")
	signinFailures := def("signin_failures_per_minute", "failed sign-ins allowed per minute from one address before 429 (default 10)")
	signinStarts := def("signin_starts_per_minute", "sign-ins started per minute from one address (default 1000)")
	roomConns := def("room_connections_per_minute", "live-lesson connections per minute from one address (default 2000)")
	trusted := def("trusted_proxies", "addresses or CIDR ranges of reverse proxies whose X-Forwarded-For names the client, comma-separated")
	yearLeads := def("year_leads", "year group leads told of concerns: comma-separated group=e-mail, e.g. year-8=j.lead@school.example")
	dslEmails := def("dsl_emails", "e-mail addresses always told of a concern (the DSLs, even before their first sign-in): comma-separated")
	smtpHost := def("smtp_host", "SMTP server for concern e-mail (unset: no e-mail)")
	smtpPort := def("smtp_port", "SMTP port (default 587 for starttls, 465 for tls, 25 for none)")
	smtpFrom := def("smtp_from", "sender address of concern e-mail, e.g. chaperone@school.example")
	smtpTLS := def("smtp_tls", "none, starttls (default) or tls")
	smtpUser := def("smtp_username", "SMTP username (unset: no authentication)")
	smtpUserFile := def("smtp_username_file", "file holding the SMTP username")
	smtpPass := def("smtp_password", "SMTP password")
	smtpPassFile := def("smtp_password_file", "file holding the SMTP password")
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
	if c.Tenant == "" && googleIssuer(c.OIDCIssuer) {
		// Anyone can make a Google account with a school address that is
		// not (yet) in Workspace: hd is what says Workspace manages it.
		return Config{}, &ConfigError{"tenant", "required with Google (oidc_issuer https://accounts.google.com): the Workspace primary domain, which Google's hd claim must equal"}
	}
	c.PupilGroups, c.StaffGroups, c.SLTGroups = list(*pupils), list(*staff), list(*slt)
	c.HeadGroups, c.DSLGroups, c.AdminGroups = list(*head), list(*dsl), list(*admin)
	for _, d := range []struct {
		key string
		v   string
		dst *[]string
	}{{"pupil_domains", *pupilDomains, &c.PupilDomains}, {"staff_domains", *staffDomains, &c.StaffDomains}} {
		*d.dst = list(d.v)
		for _, x := range *d.dst {
			if strings.ContainsAny(x, "@/ ") || !strings.Contains(x, ".") {
				return Config{}, &ConfigError{d.key, fmt.Sprintf("%q is not a domain name", x)}
			}
		}
	}
	if *roleFile != "" {
		f, err := os.Open(*roleFile)
		if err != nil {
			return Config{}, &ConfigError{"role_file", err.Error()}
		}
		c.RoleList, err = auth.ParseRoleList(f)
		f.Close()
		if err != nil {
			return Config{}, &ConfigError{"role_file", fmt.Sprintf("%s: %v", *roleFile, err)}
		}
	}
	byAddress := len(c.RoleList) > 0
	if len(c.StaffGroups)+len(c.HeadGroups)+len(c.StaffDomains) == 0 && !byAddress {
		return Config{}, &ConfigError{"staff_groups", "required: at least one IdP group of teaching staff (and head_groups for the headteacher), or staff_domains or role_file"}
	}
	if len(c.PupilGroups)+len(c.PupilDomains) == 0 && !byAddress {
		return Config{}, &ConfigError{"pupil_groups", "required: at least one IdP group of pupils, or pupil_domains or role_file"}
	}
	switch c.GroupOverage = orDefault(*overage, groupOverageRefuse); c.GroupOverage {
	case groupOverageRefuse:
	case groupOverageGraph:
		if c.OIDCClientSecret == "" {
			return Config{}, &ConfigError{"group_overage", "graph needs oidc_client_secret: Graph is reached with the app's own credentials"}
		}
		if *graphTokenURL == "" && c.Tenant == "" {
			return Config{}, &ConfigError{"group_overage", "graph needs tenant (the Entra tenant ID) or graph_token_url"}
		}
	default:
		return Config{}, &ConfigError{"group_overage", fmt.Sprintf("%q is not refuse or graph", c.GroupOverage)}
	}
	if *graphURL != "" {
		if c.GraphURL, err = requireURL("graph_url", *graphURL); err != nil {
			return Config{}, err
		}
	}
	if *graphTokenURL != "" {
		if c.GraphTokenURL, err = requireURL("graph_token_url", *graphTokenURL); err != nil {
			return Config{}, err
		}
	} else if c.Tenant != "" {
		c.GraphTokenURL = auth.GraphTokenURL(c.Tenant)
	}
	c.RosterDir = *rosterDir
	c.RosterInterval = time.Hour
	if *rosterInterval != "" {
		d, err := time.ParseDuration(*rosterInterval)
		if err != nil || d < time.Minute || d > 7*24*time.Hour {
			return Config{}, &ConfigError{"roster_interval", fmt.Sprintf("%q is not a duration between 1m and 168h", *rosterInterval)}
		}
		c.RosterInterval = d
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
	switch c.ICETCPPort = c.UDPPort; *tcpPort {
	case "":
	case iceTCPOff:
		c.ICETCPPort = -1
	default:
		n, err := strconv.Atoi(*tcpPort)
		if err != nil || n < 0 || n > 65535 {
			return Config{}, &ConfigError{"ice_tcp_port", fmt.Sprintf("%q is not a port number or off", *tcpPort)}
		}
		c.ICETCPPort = n
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
	c.ICEAllowPrivate = true
	if *allowPrivate != "" {
		if c.ICEAllowPrivate, err = strconv.ParseBool(*allowPrivate); err != nil {
			return Config{}, &ConfigError{"ice_allow_private", "must be true or false"}
		}
	}
	if c.TURN, err = parseTURN(turnKeys{*turnPort, *turnTLSPort, *turnCert, *turnKey, *turnRelayIP, *turnURLs, *turnSecret, *turnSecretFile},
		c.ICEPublicIPs, c.PublicURL, c.TLSCert, c.TLSKey); err != nil {
		return Config{}, err
	}
	switch c.MetricsListen = orDefault(*metricsListen, defaultMetricsListen); c.MetricsListen {
	case metricsOff:
		c.MetricsListen = ""
	default:
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			return Config{}, &ConfigError{"metrics_listen", fmt.Sprintf("%q is not host:port or off", c.MetricsListen)}
		}
	}
	if err := readSecretFiles(secretFromFile{"metrics_token_file", *metricsToken, &c.MetricsToken}); err != nil {
		return Config{}, err
	}
	if *metricsToken != "" && len(c.MetricsToken) < minMetricsToken {
		return Config{}, &ConfigError{"metrics_token_file", fmt.Sprintf("the token must be at least %d characters", minMetricsToken)}
	}
	if c.S3, err = parseS3(*s3Endpoint, *s3Bucket, *s3Access, *s3AccessFile, *s3Secret, *s3SecretFile, *s3Region, *s3TLS, *retention, *lockMode); err != nil {
		return Config{}, err
	}
	c.SpoolDir = orDefault(*spool, "data/spool")
	if c.YearLeads, err = notify.ParseYearLeads(*yearLeads); err != nil {
		return Config{}, &ConfigError{"year_leads", err.Error()}
	}
	if c.DSLEmails, err = notify.ParseEmails(*dslEmails); err != nil {
		return Config{}, &ConfigError{"dsl_emails", err.Error()}
	}
	if c.SMTP, err = parseSMTP(*smtpHost, *smtpPort, *smtpFrom, *smtpTLS, *smtpUser, *smtpUserFile, *smtpPass, *smtpPassFile); err != nil {
		return Config{}, err
	}
	c.StaffGrace = 5 * time.Minute
	if *grace != "" {
		d, err := time.ParseDuration(*grace)
		if err != nil || d < time.Second || d > time.Hour {
			return Config{}, &ConfigError{"staff_grace", fmt.Sprintf("%q is not a duration between 1s and 1h", *grace)}
		}
		c.StaffGrace = d
	}
	c.RejoinGrace = lobby.DefaultRejoinGrace
	if *rejoin != "" {
		d, err := time.ParseDuration(*rejoin)
		if err != nil || d < 10*time.Second || d > 30*time.Minute {
			return Config{}, &ConfigError{"rejoin_grace", fmt.Sprintf("%q is not a duration between 10s and 30m", *rejoin)}
		}
		c.RejoinGrace = d
	}
	if *mfaRoles != "" {
		c.MFARoles = []string{}
		names := list(*mfaRoles)
		for _, r := range names {
			switch r {
			case "none":
				if len(names) > 1 {
					return Config{}, &ConfigError{"mfa_roles", "none cannot be combined with roles"}
				}
			case "dsl", "head", "slt", "admin", "staff":
				c.MFARoles = append(c.MFARoles, r)
			default:
				return Config{}, &ConfigError{"mfa_roles", fmt.Sprintf("%q is not one of dsl, head, slt, admin, staff, none", r)}
			}
		}
	}
	c.MFAACR = list(*mfaACR)
	c.RecordingReauth = 15 * time.Minute
	if *reauth != "" {
		d, err := time.ParseDuration(*reauth)
		if err != nil || d < time.Minute || d > 12*time.Hour {
			return Config{}, &ConfigError{"recording_reauth", fmt.Sprintf("%q is not a duration between 1m and 12h", *reauth)}
		}
		c.RecordingReauth = d
	}
	for _, l := range []struct {
		key, v string
		dst    *int
		def    int
	}{{"signin_failures_per_minute", *signinFailures, &c.SigninFailures, 10}, {"signin_starts_per_minute", *signinStarts, &c.SigninStarts, 1000},
		{"room_connections_per_minute", *roomConns, &c.RoomConnsPerAddr, 2000}} {
		*l.dst = l.def
		if l.v == "" {
			continue
		}
		n, err := strconv.Atoi(l.v)
		if err != nil || n < 1 || n > 1000000 {
			return Config{}, &ConfigError{l.key, fmt.Sprintf("%q is not a number between 1 and 1000000", l.v)}
		}
		*l.dst = n
	}
	for _, p := range list(*trusted) {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			a, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return Config{}, &ConfigError{"trusted_proxies", fmt.Sprintf("%q is not an IP address or CIDR range", p)}
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		c.TrustedProxies = append(c.TrustedProxies, pfx.Masked())
	}
	return c, nil
}

// googleIssuer reports whether issuer is Google's.
func googleIssuer(issuer string) bool {
	return strings.TrimSuffix(issuer, "/") == "https://accounts.google.com"
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

func parseS3(endpoint, bucket, access, accessFile, secret, secretFile, region, tls, retention, mode string) (S3Config, error) {
	c := S3Config{Endpoint: endpoint, Bucket: bucket, AccessKey: access, SecretKey: secret, Region: orDefault(region, "us-east-1"), TLS: true, RetentionDays: 28}
	if c.Endpoint == "" {
		return c, &ConfigError{"s3_endpoint", "required: the S3-compatible storage for recordings (host:port)"}
	}
	if strings.Contains(c.Endpoint, "://") {
		return c, &ConfigError{"s3_endpoint", "give host:port without http:// (set s3_tls for TLS)"}
	}
	if c.Bucket == "" {
		return c, &ConfigError{"s3_bucket", "required: a bucket with Object Lock and versioning enabled"}
	}
	if err := readSecretFiles(secretFromFile{"s3_access_key_file", accessFile, &c.AccessKey}, secretFromFile{"s3_secret_key_file", secretFile, &c.SecretKey}); err != nil {
		return c, err
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		return c, &ConfigError{"s3_access_key", "required with s3_secret_key (or their _file variants)"}
	}
	if tls != "" {
		v, err := strconv.ParseBool(tls)
		if err != nil {
			return c, &ConfigError{"s3_tls", "must be true or false"}
		}
		c.TLS = v
	}
	if retention != "" {
		n, err := strconv.Atoi(retention)
		if err != nil {
			return c, &ConfigError{"retention_days", fmt.Sprintf("%q is not a number of days", retention)}
		}
		c.RetentionDays = n
	}
	if c.RetentionDays < 28 {
		return c, &ConfigError{"retention_days", fmt.Sprintf("%d is too short: recordings must stay immutable for at least 28 days", c.RetentionDays)}
	}
	if c.RetentionDays > 3650 {
		return c, &ConfigError{"retention_days", "at most 3650 days"}
	}
	switch c.LockMode = strings.ToUpper(orDefault(mode, "GOVERNANCE")); c.LockMode {
	case "GOVERNANCE", "COMPLIANCE":
	default:
		return c, &ConfigError{"lock_mode", fmt.Sprintf("%q is not GOVERNANCE or COMPLIANCE", mode)}
	}
	return c, nil
}

// parseSMTP reads the SMTP settings; without smtp_host there is no e-mail
// (and no other smtp_ key may be set).
func parseSMTP(host, port, from, mode, user, userFile, pass, passFile string) (*notify.SMTPConfig, error) {
	if host == "" {
		if from != "" || port != "" || mode != "" || user != "" || userFile != "" || pass != "" || passFile != "" {
			return nil, &ConfigError{"smtp_host", "required when other smtp_ settings are given"}
		}
		return nil, nil
	}
	c := &notify.SMTPConfig{Host: host, From: from, TLS: strings.ToLower(orDefault(mode, notify.TLSStartTLS)), Username: user, Password: pass}
	if err := readSecretFiles(secretFromFile{"smtp_username_file", userFile, &c.Username}, secretFromFile{"smtp_password_file", passFile, &c.Password}); err != nil {
		return nil, err
	}
	switch c.TLS {
	case notify.TLSStartTLS:
		c.Port = 587
	case notify.TLSImplicit:
		c.Port = 465
	case notify.TLSNone:
		c.Port = 25
		if c.Username != "" && host != "localhost" && !net.ParseIP(host).IsLoopback() {
			return nil, &ConfigError{"smtp_tls", "none would send the SMTP password unencrypted: use starttls or tls, or a relay on localhost"}
		}
	default:
		return nil, &ConfigError{"smtp_tls", fmt.Sprintf("%q is not none, starttls or tls", mode)}
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n <= 0 || n > 65535 {
			return nil, &ConfigError{"smtp_port", fmt.Sprintf("%q is not a port number", port)}
		}
		c.Port = n
	}
	if c.From == "" {
		return nil, &ConfigError{"smtp_from", "required with smtp_host: the sender address, e.g. chaperone@school.example"}
	}
	if (c.Username == "") != (c.Password == "") {
		return nil, &ConfigError{"smtp_password", "set smtp_username and smtp_password together (or their _file variants)"}
	}
	if err := c.Validate(); err != nil {
		key := "smtp_host"
		if strings.Contains(err.Error(), "from") {
			key = "smtp_from"
		}
		return nil, &ConfigError{key, strings.TrimPrefix(err.Error(), "notify: ")}
	}
	return c, nil
}

// secretFromFile is a *_file key: when file is set, dst is read from it.
type secretFromFile struct {
	key, file string
	dst       *string
}

// readSecretFiles reads each given file (trimmed) into its value; a file
// that cannot be read is a ConfigError naming its key.
func readSecretFiles(fs ...secretFromFile) error {
	for _, f := range fs {
		if f.file == "" {
			continue
		}
		b, err := os.ReadFile(f.file)
		if err != nil {
			return &ConfigError{f.key, err.Error()}
		}
		*f.dst = strings.TrimSpace(string(b))
	}
	return nil
}
