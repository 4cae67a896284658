//go:build !linux

package sfu

import "net"

// listenUDP4 binds the SFU's UDP socket on ip:port: elsewhere than Linux, a
// plain net.UDPConn.
func listenUDP4(ip net.IP, port int) (net.PacketConn, error) { return listenNetUDP(ip, port) }
