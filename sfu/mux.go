package sfu

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"

	"github.com/pion/ice/v2"
	"github.com/pion/logging"
)

// listenMux binds the single ICE UDP port. With a specific ListenIP (IPv4
// or IPv6) it is one socket; with "" it is one socket per local IPv4 and
// global IPv6 address (dual stack where the host has IPv6), with 0.0.0.0 per
// IPv4 address only, all on the same port, so that host candidates carry real addresses (a socket on
// 0.0.0.0 cannot tell pion which address a packet came to). It returns the
// mux, its sockets (as the mux writes to them) and the address for logs.
func listenMux(cfg Config, log logging.LeveledLogger) (ice.UDPMux, []sfuSock, string, error) {
	if cfg.UDPPort < 0 || cfg.UDPPort > 65535 {
		return nil, nil, "", fmt.Errorf("sfu: udp port %d out of range", cfg.UDPPort)
	}
	if cfg.ListenIP != "" {
		ip := net.ParseIP(cfg.ListenIP)
		if ip == nil {
			return nil, nil, "", fmt.Errorf("sfu: listen IP %q is not an IP address", cfg.ListenIP)
		}
		if !ip.IsUnspecified() {
			conn, err := cfg.listen(ip, cfg.UDPPort)
			if err != nil {
				return nil, nil, "", err
			}
			sock := sfuSock{conn: cfg.wrap(conn), own: ownSocket(conn)}
			mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: sock.conn, Logger: log})
			return mux, []sfuSock{sock}, conn.LocalAddr().String(), nil
		}
	}

	ips, err := localIPs(cfg.Loopback, cfg.ListenIP == "")
	if err != nil {
		return nil, nil, "", err
	}
	// With an ephemeral port the first socket picks it and the others must
	// get the same one; if another process holds it there, try again.
	for attempt := 0; ; attempt++ {
		conns, port, err := listenAll(cfg, ips, cfg.UDPPort)
		if err != nil {
			if cfg.UDPPort == 0 && attempt < 5 && errors.Is(err, syscall.EADDRINUSE) {
				continue
			}
			return nil, nil, "", err
		}
		muxes := make([]ice.UDPMux, len(conns))
		socks := make([]sfuSock, len(conns))
		for i, c := range conns {
			socks[i] = sfuSock{conn: cfg.wrap(c), own: ownSocket(c)}
			muxes[i] = ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: socks[i].conn, Logger: log})
		}
		return ice.NewMultiUDPMuxDefault(muxes...), socks, net.JoinHostPort("0.0.0.0", strconv.Itoa(port)), nil
	}
}

func listenAll(cfg Config, ips []net.IP, port int) ([]net.PacketConn, int, error) {
	conns := make([]net.PacketConn, 0, len(ips))
	for _, ip := range ips {
		c, err := cfg.listen(ip, port)
		if err != nil && ip.To4() == nil && !errors.Is(err, syscall.EADDRINUSE) {
			continue // an IPv6 address not yet usable (duplicate address detection): IPv4 still serves
		}
		if err != nil {
			for _, c := range conns {
				_ = c.Close()
			}
			return nil, 0, err
		}
		if port == 0 {
			port = c.LocalAddr().(*net.UDPAddr).Port
		}
		conns = append(conns, c)
	}
	if len(conns) == 0 {
		return nil, 0, errors.New("sfu: no usable address to listen on")
	}
	return conns, port, nil
}

// localIPs lists the IPv4 (and with v6, global or unique-local IPv6)
// addresses of the interfaces that are up, loopback only when asked,
// link-local never.
func localIPs(loopback, v6 bool) ([]net.IP, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("sfu: list interfaces: %w", err)
	}
	var ips []net.IP
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip := n.IP.To4()
			if ip == nil {
				if !v6 || n.IP.To16() == nil {
					continue
				}
				ip = n.IP.To16()
			}
			if ip.IsLinkLocalUnicast() || ip.IsMulticast() || (ip.IsLoopback() && !loopback) {
				continue
			}
			ips = append(ips, ip)
		}
	}
	if len(ips) == 0 {
		return nil, errors.New("sfu: no usable IPv4 address to listen on (set ListenIP, or Loopback for a loopback-only host)")
	}
	return ips, nil
}

func (cfg Config) wrap(c net.PacketConn) net.PacketConn {
	if cfg.wrapConn != nil {
		return cfg.wrapConn(c)
	}
	return c
}

// listen binds one of the SFU's UDP sockets: its own (udpsock_linux.go), or
// for the benchmark's stock pion a net.UDPConn.
func (cfg Config) listen(ip net.IP, port int) (net.PacketConn, error) {
	if cfg.stock {
		return listenNetUDP(ip, port)
	}
	return listenUDP4(ip, port)
}

// listenNetUDP binds a net.UDPConn on ip:port.
func listenNetUDP(ip net.IP, port int) (net.PacketConn, error) {
	network := "udp4"
	if ip.To4() == nil {
		network = "udp6"
	}
	c, err := net.ListenUDP(network, &net.UDPAddr{IP: ip, Port: port})
	if err != nil {
		return nil, fmt.Errorf("sfu: listen udp %s: %w", net.JoinHostPort(ip.String(), strconv.Itoa(port)), err)
	}
	return c, nil
}
