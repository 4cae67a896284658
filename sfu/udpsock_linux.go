package sfu

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpSocket is the SFU's UDP socket: a blocking socket that the Go
// runtime's network poller does not watch, read by the ICE mux's one reader
// goroutine and written with sendto and sendmmsg straight from the
// forwarding goroutines.
//
// Why not a net.UDPConn: the poller registers its sockets with epoll for
// writability too, edge-triggered, and the kernel signals writability each
// time it frees a sent datagram. While any goroutine waits to read (the ICE
// mux always does), an idle thread sleeps in epoll_wait, so every forwarded
// packet woke a thread: about 1.5 µs of kernel time per packet on the
// development VM, a quarter of the SFU's whole cost of sending one
// (BENCHMARKS.md). A reader blocked in recvfrom is not woken by
// writability.
type udpSocket struct {
	fd    int
	laddr *net.UDPAddr
	v6    bool // an AF_INET6 socket (IPV6_V6ONLY): IPv6 peers only

	// Every system call holds mu shared; Close shuts the socket down (which
	// wakes a blocked read), then takes mu exclusively before it closes the
	// descriptor, so that no call can reach a number the process has since
	// reused.
	mu     sync.RWMutex
	closed atomic.Bool

	discard atomic.Bool // benchmarks only: sendBatch.flush drops what it would send
}

// listenUDP4 binds the SFU's UDP socket on ip:port (port 0: an ephemeral
// one), IPv4 or IPv6.
func listenUDP4(ip net.IP, port int) (net.PacketConn, error) {
	return listenUDPSocket(ip, port)
}

// listenUDPSocket binds a UDP socket on ip:port: AF_INET for an IPv4
// address, AF_INET6 (IPv6 only) for an IPv6 one.
func listenUDPSocket(ip net.IP, port int) (*udpSocket, error) {
	ip4 := ip.To4()
	if ip4 == nil && ip.To16() == nil {
		return nil, fmt.Errorf("sfu: listen udp %s: not an IP address", ip)
	}
	family := unix.AF_INET
	if ip4 == nil {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("sfu: udp socket: %w", os.NewSyscallError("socket", err))
	}
	if ip4 == nil {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			_ = unix.Close(fd)
			return nil, fmt.Errorf("sfu: udp socket: %w", os.NewSyscallError("setsockopt", err))
		}
		return bindUDP6(fd, ip, port)
	}
	// A read wakes at least this often to see whether the socket was
	// closed, should shutdown not wake it.
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 1}); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("sfu: udp socket: %w", os.NewSyscallError("setsockopt", err))
	}
	sa := &unix.SockaddrInet4{Port: port}
	copy(sa.Addr[:], ip4)
	if err := unix.Bind(fd, sa); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("sfu: listen udp %s: %w", net.JoinHostPort(ip.String(), fmt.Sprint(port)), os.NewSyscallError("bind", err))
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("sfu: udp socket: %w", os.NewSyscallError("getsockname", err))
	}
	a, ok := got.(*unix.SockaddrInet4)
	if !ok {
		_ = unix.Close(fd)
		return nil, errors.New("sfu: udp socket: not bound to an IPv4 address")
	}
	return &udpSocket{fd: fd, laddr: &net.UDPAddr{IP: net.IPv4(a.Addr[0], a.Addr[1], a.Addr[2], a.Addr[3]), Port: a.Port}}, nil
}

// bindUDP6 binds the AF_INET6 socket fd on ip:port.
func bindUDP6(fd int, ip net.IP, port int) (*udpSocket, error) {
	sa := &unix.SockaddrInet6{Port: port}
	copy(sa.Addr[:], ip.To16())
	if err := unix.Bind(fd, sa); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("sfu: listen udp %s: %w", net.JoinHostPort(ip.String(), fmt.Sprint(port)), os.NewSyscallError("bind", err))
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 1}); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("sfu: udp socket: %w", os.NewSyscallError("setsockopt", err))
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("sfu: udp socket: %w", os.NewSyscallError("getsockname", err))
	}
	a, ok := got.(*unix.SockaddrInet6)
	if !ok {
		_ = unix.Close(fd)
		return nil, errors.New("sfu: udp socket: not bound to an IPv6 address")
	}
	return &udpSocket{fd: fd, v6: true, laddr: &net.UDPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}}, nil
}

// ReadFrom blocks until a datagram comes or the socket is closed.
func (s *udpSocket) ReadFrom(b []byte) (int, net.Addr, error) {
	if len(b) == 0 {
		return 0, nil, errors.New("sfu: udp read: empty buffer")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for {
		if s.closed.Load() {
			return 0, nil, net.ErrClosed
		}
		var from unix.RawSockaddrInet6 // large enough for either family
		fromLen := uint32(unix.SizeofSockaddrInet6)
		n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(s.fd),
			uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0,
			uintptr(unsafe.Pointer(&from)), uintptr(unsafe.Pointer(&fromLen)))
		switch {
		case errno == unix.EINTR || errno == unix.EAGAIN:
			continue
		case errno != 0:
			if s.closed.Load() {
				return 0, nil, net.ErrClosed
			}
			return 0, nil, &net.OpError{Op: "read", Net: "udp", Source: s.laddr, Err: os.NewSyscallError("recvfrom", errno)}
		case s.closed.Load():
			return 0, nil, net.ErrClosed // woken by Close's shutdown
		}
		if a := udpAddrOf(&from); a != nil {
			return int(n), a, nil
		}
		// Not from a peer of this socket's family; nothing else can reach it.
	}
}

// sockaddr is an IPv4 or IPv6 socket address as the kernel takes it.
type sockaddr struct {
	raw unix.RawSockaddrInet6 // or a RawSockaddrInet4 in its first bytes
	len uint32
}

// udpAddrOf decodes a raw IPv4 or IPv6 address; nil for another family.
func udpAddrOf(raw *unix.RawSockaddrInet6) *net.UDPAddr {
	pb := (*[2]byte)(unsafe.Pointer(&raw.Port)) // network byte order; at the same offset in both families
	port := int(pb[0])<<8 | int(pb[1])
	switch raw.Family {
	case unix.AF_INET:
		v4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(raw))
		return &net.UDPAddr{IP: net.IPv4(v4.Addr[0], v4.Addr[1], v4.Addr[2], v4.Addr[3]), Port: port}
	case unix.AF_INET6:
		ip := make(net.IP, net.IPv6len)
		copy(ip, raw.Addr[:])
		return &net.UDPAddr{IP: ip, Port: port}
	}
	return nil
}

// WriteTo sends one datagram to addr, an IPv4 *net.UDPAddr, without waiting
// for room in the send buffer (when it is full: EAGAIN, and the datagram is
// lost, as on the network).
func (s *udpSocket) WriteTo(b []byte, addr net.Addr) (int, error) {
	var sa sockaddr
	if !rawSockaddr(&sa, addr, s.v6) {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: s.laddr, Addr: addr, Err: errors.New("not a UDP address of the socket's family")}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return 0, net.ErrClosed
	}
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	for {
		_, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(p), uintptr(len(b)), unix.MSG_DONTWAIT,
			uintptr(unsafe.Pointer(&sa.raw)), uintptr(sa.len))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, &net.OpError{Op: "write", Net: "udp", Source: s.laddr, Addr: addr, Err: os.NewSyscallError("sendto", errno)}
		}
		return len(b), nil
	}
}

// sendBatch sends ms with one sendmmsg, without waiting for room in the
// socket's send buffer. It returns how many were sent: all, or those before
// the first the kernel refused, with that one's error (EAGAIN: the buffer
// is full).
func (s *udpSocket) sendBatch(ms []unix.Mmsghdr) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return 0, net.ErrClosed
	}
	for {
		n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&ms[0])), uintptr(len(ms)), unix.MSG_DONTWAIT, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, os.NewSyscallError("sendmmsg", errno)
		}
		return int(n), nil
	}
}

// rawSockaddr fills sa from addr, for a socket of the given family (v6:
// AF_INET6, IPv6 only); false if addr is not a UDP address of that family.
func rawSockaddr(sa *sockaddr, addr net.Addr, v6 bool) bool {
	a, ok := addr.(*net.UDPAddr)
	if !ok || a == nil || a.Port < 0 || a.Port > 65535 {
		return false
	}
	ip4 := a.IP.To4()
	switch {
	case !v6 && ip4 != nil:
		v4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa.raw))
		v4.Family = unix.AF_INET
		p := (*[2]byte)(unsafe.Pointer(&v4.Port))
		p[0], p[1] = byte(a.Port>>8), byte(a.Port)
		copy(v4.Addr[:], ip4)
		sa.len = unix.SizeofSockaddrInet4
	case v6 && ip4 == nil && len(a.IP) == net.IPv6len:
		sa.raw = unix.RawSockaddrInet6{Family: unix.AF_INET6}
		p := (*[2]byte)(unsafe.Pointer(&sa.raw.Port))
		p[0], p[1] = byte(a.Port>>8), byte(a.Port)
		copy(sa.raw.Addr[:], a.IP)
		sa.len = unix.SizeofSockaddrInet6
	default:
		return false
	}
	return true
}

// Close closes the socket; a blocked ReadFrom returns net.ErrClosed.
func (s *udpSocket) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return net.ErrClosed
	}
	// Wakes a reader blocked in recvfrom (unconnected UDP: ENOTCONN, but
	// the socket is shut down all the same).
	_ = unix.Shutdown(s.fd, unix.SHUT_RDWR)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := unix.Close(s.fd); err != nil {
		return fmt.Errorf("sfu: close udp socket: %w", os.NewSyscallError("close", err))
	}
	return nil
}

// LocalAddr returns the bound address.
func (s *udpSocket) LocalAddr() net.Addr { return s.laddr }

var errNoDeadlines = fmt.Errorf("sfu: udp socket: deadlines: %w", errors.ErrUnsupported)

// SetDeadline and its kin are not supported: nothing in pion's ICE mux uses
// them, and a blocking socket has none.
func (s *udpSocket) SetDeadline(time.Time) error      { return errNoDeadlines }
func (s *udpSocket) SetReadDeadline(time.Time) error  { return errNoDeadlines }
func (s *udpSocket) SetWriteDeadline(time.Time) error { return errNoDeadlines }
