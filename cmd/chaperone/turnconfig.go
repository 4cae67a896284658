package main

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/chaperone-edu/chaperone/sfu"
)

// TURNConfig is the TURN relay configuration (keys turn_*): an embedded
// relay (turn_port, and turn_tls_port with a certificate) and/or external
// TURN servers (turn_urls) whose shared secret (turn_secret) the gateway
// derives each participant's short-lived credentials from.
type TURNConfig struct {
	Port    int // embedded relay on UDP and TCP; 0 = none
	TLSPort int // embedded relay over TLS; 0 = none
	TLSCert string
	TLSKey  string
	RelayIP string   // the relay's address in relayed candidates
	URLs    []string // handed to clients; default: the embedded relay's
	Secret  string   // "" with an embedded relay only: a random one per start
	Host    string   // public_url's host, in the embedded relay's default URLs
}

// turnKeys are the raw values of the turn_* keys.
type turnKeys struct {
	port, tlsPort, cert, key, relayIP, urls, secret, secretFile string
}

// parseTURN checks the turn_* keys; nil when TURN is not configured.
func parseTURN(k turnKeys, publicIPs []string, publicURL, tlsCert, tlsKey string) (*TURNConfig, error) {
	var t TURNConfig
	if err := readSecretFiles(secretFromFile{"turn_secret_file", k.secretFile, &k.secret}); err != nil {
		return nil, err
	}
	port := func(key, v string) (int, error) {
		if v == "" || v == iceTCPOff {
			return 0, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			return 0, &ConfigError{key, fmt.Sprintf("%q is not a port number or off", v)}
		}
		return n, nil
	}
	var err error
	if t.Port, err = port("turn_port", k.port); err != nil {
		return nil, err
	}
	if t.TLSPort, err = port("turn_tls_port", k.tlsPort); err != nil {
		return nil, err
	}
	for _, u := range list(k.urls) {
		if !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
			return nil, &ConfigError{"turn_urls", fmt.Sprintf("%q is not a turn: or turns: URL", u)}
		}
		t.URLs = append(t.URLs, u)
	}
	if t.Port == 0 && t.TLSPort == 0 && len(t.URLs) == 0 {
		if k.secret != "" || k.relayIP != "" {
			return nil, &ConfigError{"turn_port", "turn_secret or turn_relay_ip is set but there is no relay: set turn_port (embedded) or turn_urls (external)"}
		}
		return nil, nil
	}
	t.Secret = k.secret
	if t.Port == 0 && t.TLSPort == 0 {
		if t.Secret == "" {
			return nil, &ConfigError{"turn_secret", "required with turn_urls: the TURN server's shared secret (coturn static-auth-secret)"}
		}
		return &t, nil
	}
	if t.Port == 0 {
		return nil, &ConfigError{"turn_port", "required with turn_tls_port: the embedded relay's UDP and TCP port (e.g. 3478)"}
	}
	if t.TLSPort != 0 {
		t.TLSCert, t.TLSKey = orDefault(k.cert, tlsCert), orDefault(k.key, tlsKey)
		if t.TLSCert == "" || t.TLSKey == "" {
			return nil, &ConfigError{"turn_tls_port", "needs a certificate: set turn_tls_cert and turn_tls_key (or tls_cert and tls_key)"}
		}
	}
	t.RelayIP = k.relayIP
	if t.RelayIP == "" && len(publicIPs) > 0 {
		t.RelayIP = publicIPs[0]
	}
	if ip := net.ParseIP(t.RelayIP); ip == nil || ip.To4() == nil {
		return nil, &ConfigError{"turn_relay_ip", fmt.Sprintf("%q: the IPv4 address clients reach the relay on is required (or ice_public_ip)", t.RelayIP)}
	}
	if u, err := url.Parse(publicURL); err == nil {
		t.Host = u.Hostname()
	}
	return &t, nil
}

// sfuTURN is the media server's TURN configuration.
func (t *TURNConfig) sfuTURN() (*sfu.TURNConfig, error) {
	if t == nil {
		return nil, nil
	}
	c := &sfu.TURNConfig{Embedded: t.Port != 0, Port: t.Port, TLSPort: t.TLSPort, RelayIP: t.RelayIP, URLs: t.URLs, Secret: t.Secret, Host: t.Host}
	if c.Embedded && c.Secret == "" {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("turn secret: %w", err)
		}
		c.Secret = hex.EncodeToString(b)
	}
	if t.TLSPort != 0 {
		cert, err := tls.LoadX509KeyPair(t.TLSCert, t.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("turn certificate (check turn_tls_cert, turn_tls_key): %w", err)
		}
		c.Cert = &cert
	}
	return c, nil
}
