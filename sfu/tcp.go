package sfu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
)

// ICE-TCP (RFC 6544): passive TCP host candidates on one TCP port, for
// clients whose network drops UDP. pion's ICE TCP mux accepts the
// connections and speaks RFC 4571 framing on them (a 16-bit length before
// each STUN, DTLS, RTP or RTCP packet). The SFU hands the mux a listener of
// its own (tcpListener) whose connections (tcpConn) queue every frame
// written to them, pion's and the SFU's own writer's alike, in one bounded
// ring that a goroutine per connection writes to the socket. So:
//   - frames never interleave on the stream: each is queued whole, under the
//     connection's lock, by whoever writes it;
//   - the forwarding goroutine never waits for a slow TCP peer: a frame that
//     does not fit is dropped, as a congested UDP path would lose it;
//   - the SFU's writer finds the connection of a selected pair by the
//     remote address (downout.go) and queues its SRTP packets with no
//     allocation.
//
// The SFU never dials out over TCP: remote TCP candidates are refused
// (candidate.go), so clients connect to the SFU, which learns their address
// as a peer-reflexive candidate.

const (
	// tcpFrameHeader is RFC 4571's length prefix.
	tcpFrameHeader = 2
	// tcpQueueSize bounds the bytes one ICE-TCP connection holds unsent:
	// about 0.8 s of a 2.5 Mbit/s lesson. Beyond it frames are dropped.
	tcpQueueSize = 256 << 10
	// maxTCPConns bounds the ICE-TCP connections open at once (a client
	// has at most two; pion closes one that sends no valid check in 30 s).
	maxTCPConns = 4096
)

// errTCPQueueFull: a frame did not fit in the connection's queue.
var errTCPQueueFull = errors.New("sfu: ice-tcp: send queue full; frame dropped")

// tcpListener is the ICE TCP mux's listener. It registers each accepted
// connection by its remote address.
type tcpListener struct {
	net.Listener
	log *slog.Logger

	mu    sync.Mutex
	conns map[netip.AddrPort]*tcpConn

	dropped atomic.Uint64 // frames dropped on full queues
	discard atomic.Bool   // benchmarks only: frames are copied into the queue, then dropped
}

// listenTCP binds the ICE-TCP port on ip (nil or unspecified: every
// address, both families with dualStack).
func listenTCP(ip net.IP, port int, dualStack bool, log *slog.Logger) (*tcpListener, error) {
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("sfu: ice tcp port %d out of range", port)
	}
	network := "tcp4"
	host := ""
	switch {
	case ip != nil && !ip.IsUnspecified():
		host = ip.String()
		if ip.To4() == nil {
			network = "tcp6"
		}
	case dualStack:
		network = "tcp"
	}
	l, err := net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("sfu: listen ice-tcp %s: %w", net.JoinHostPort(host, strconv.Itoa(port)), err)
	}
	return &tcpListener{Listener: l, log: log, conns: map[netip.AddrPort]*tcpConn{}}, nil
}

// Accept returns the next connection wrapped as a tcpConn. A connection
// over maxTCPConns is closed at once.
func (l *tcpListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err //nolint:wrapcheck // pion's mux only logs it
		}
		key := addrPortOf(c.RemoteAddr())
		l.mu.Lock()
		if len(l.conns) >= maxTCPConns || !key.IsValid() || l.conns[key] != nil {
			l.mu.Unlock()
			_ = c.Close()
			continue
		}
		tc := &tcpConn{Conn: c, l: l, key: key, wake: make(chan struct{}, 1), done: make(chan struct{})}
		l.conns[key] = tc
		l.mu.Unlock()
		go tc.writeLoop()
		return tc, nil
	}
}

// conn returns the connection from remote, or nil.
func (l *tcpListener) conn(remote netip.AddrPort) *tcpConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[remote]
}

func (l *tcpListener) forget(c *tcpConn) {
	l.mu.Lock()
	if l.conns[c.key] == c {
		delete(l.conns, c.key)
	}
	l.mu.Unlock()
}

// addrPortOf returns a TCP or UDP address as an unmapped netip.AddrPort.
func addrPortOf(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// tcpConn is one accepted ICE-TCP connection. Reads go straight to the
// socket (pion's mux reads frames); writes are queued whole in q and
// written by writeLoop.
type tcpConn struct {
	net.Conn
	l    *tcpListener
	key  netip.AddrPort
	wake chan struct{} // a frame was queued
	done chan struct{} // closed by Close

	mu     sync.Mutex
	q      []byte // ring of queued bytes, made on the first write
	head   int    // first unsent byte
	n      int    // bytes queued
	closed bool
	once   sync.Once
}

// Write queues one frame pion wrote (its mux writes a frame, length prefix
// included, in one call). A frame that does not fit is dropped.
func (c *tcpConn) Write(b []byte) (int, error) {
	if err := c.enqueue(b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// writeFrame queues frame, whose first tcpFrameHeader bytes are left for
// the length, which it fills in: the SFU's own writer's path, which does
// not allocate.
func (c *tcpConn) writeFrame(frame []byte) error {
	binary.BigEndian.PutUint16(frame, uint16(len(frame)-tcpFrameHeader))
	return c.enqueue(frame)
}

func (c *tcpConn) enqueue(b []byte) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	if c.q == nil {
		c.q = make([]byte, tcpQueueSize)
	}
	if len(b) > len(c.q)-c.n {
		c.mu.Unlock()
		c.l.dropped.Add(1)
		return errTCPQueueFull
	}
	tail := (c.head + c.n) % len(c.q)
	k := copy(c.q[tail:], b)
	copy(c.q, b[k:])
	if c.l.discard.Load() {
		c.mu.Unlock()
		return nil // benchmarks: everything but the write
	}
	c.n += len(b)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

// writeLoop writes what is queued until the connection closes. Producers
// only write into the free part of the ring, so the queued part is written
// to the socket outside the lock.
func (c *tcpConn) writeLoop() {
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		for {
			c.mu.Lock()
			if c.n == 0 || c.closed {
				c.mu.Unlock()
				break
			}
			end := min(c.head+c.n, len(c.q))
			seg := c.q[c.head:end]
			c.mu.Unlock()
			w, err := c.Conn.Write(seg)
			c.mu.Lock()
			c.head = (c.head + w) % len(c.q)
			c.n -= w
			c.mu.Unlock()
			if err != nil {
				c.l.log.Debug("ice-tcp write", slog.String("remote", c.key.String()), slog.Any("err", err))
				_ = c.Close()
				return
			}
		}
	}
}

// Close closes the connection and forgets it.
func (c *tcpConn) Close() error {
	var err error
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		close(c.done)
		c.l.forget(c)
		err = c.Conn.Close()
	})
	if err != nil {
		return fmt.Errorf("sfu: close ice-tcp connection: %w", err)
	}
	return nil
}
