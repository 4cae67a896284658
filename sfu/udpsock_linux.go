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

	// Every system call holds mu shared; Close shuts the socket down (which
	// wakes a blocked read), then takes mu exclusively before it closes the
	// descriptor, so that no call can reach a number the process has since
	// reused.
	mu     sync.RWMutex
	closed atomic.Bool

	discard atomic.Bool // benchmarks only: sendBatch.flush drops what it would send
}

// listenUDP4 binds the SFU's UDP socket on ip:port (port 0: an ephemeral
// one).
func listenUDP4(ip net.IP, port int) (net.PacketConn, error) {
	return listenUDPSocket(ip, port)
}

// listenUDPSocket binds a UDP socket on ip:port.
func listenUDPSocket(ip net.IP, port int) (*udpSocket, error) {
	ip4 := ip.To4()
	if ip4 == nil {
		return nil, fmt.Errorf("sfu: listen udp %s: not an IPv4 address", ip)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("sfu: udp socket: %w", os.NewSyscallError("socket", err))
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
		var from unix.RawSockaddrInet4
		fromLen := uint32(unix.SizeofSockaddrInet4)
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
		case from.Family != unix.AF_INET:
			continue // not a datagram from an IPv4 peer; nothing else can reach this socket
		}
		pb := (*[2]byte)(unsafe.Pointer(&from.Port)) // network byte order
		return int(n), &net.UDPAddr{IP: net.IPv4(from.Addr[0], from.Addr[1], from.Addr[2], from.Addr[3]), Port: int(pb[0])<<8 | int(pb[1])}, nil
	}
}

// WriteTo sends one datagram to addr, an IPv4 *net.UDPAddr, without waiting
// for room in the send buffer (when it is full: EAGAIN, and the datagram is
// lost, as on the network).
func (s *udpSocket) WriteTo(b []byte, addr net.Addr) (int, error) {
	var sa unix.RawSockaddrInet4
	if !rawSockaddr(&sa, addr) {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: s.laddr, Addr: addr, Err: errors.New("not an IPv4 UDP address")}
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
			uintptr(unsafe.Pointer(&sa)), unix.SizeofSockaddrInet4)
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

// rawSockaddr fills sa from addr; false if addr is not an IPv4 UDP address.
func rawSockaddr(sa *unix.RawSockaddrInet4, addr net.Addr) bool {
	a, ok := addr.(*net.UDPAddr)
	if !ok || a == nil {
		return false
	}
	ip4 := a.IP.To4()
	if ip4 == nil || a.Port < 0 || a.Port > 65535 {
		return false
	}
	sa.Family = unix.AF_INET
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p[0], p[1] = byte(a.Port>>8), byte(a.Port)
	copy(sa.Addr[:], ip4)
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
