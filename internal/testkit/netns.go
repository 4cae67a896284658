package testkit

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/sys/unix"
)

// NetNS is a network namespace made for one test: a veth pair links it to
// the test's own namespace, HostIP on the test's side, NSIP inside; the
// namespace's loopback is up and its default route goes to HostIP. It is
// removed (with its veth pair and any nftables rules in it) at t.Cleanup.
// Traffic stays on the veth pair: nothing is routed beyond the test's host.
type NetNS struct {
	Name   string
	HostIP netip.Addr // the test's end of the veth pair
	NSIP   netip.Addr // the namespace's end
	// HostIP6 and NSIP6 are the pair's IPv6 (unique local) addresses.
	HostIP6, NSIP6 netip.Addr
	hostIf         string
	t              testing.TB
}

var netnsSeq atomic.Uint32

// EnvRequireNetNS, when "1", turns a missing root, ip or nft into a test
// failure instead of a skip. CI sets it (it runs as root).
const EnvRequireNetNS = "CHAPERONE_REQUIRE_NETNS"

// noNetNS skips t with why, or fails it when CHAPERONE_REQUIRE_NETNS=1.
func noNetNS(t testing.TB, why string) {
	t.Helper()
	if os.Getenv(EnvRequireNetNS) == "1" {
		t.Fatal(why + " (" + EnvRequireNetNS + "=1, so this is a failure)")
	}
	t.Skip(why)
}

// NewNetNS makes a network namespace linked to the test's by a veth pair.
// It needs root and the ip command; without them the test is skipped with
// the reason.
func NewNetNS(t testing.TB) *NetNS {
	t.Helper()
	if os.Geteuid() != 0 {
		noNetNS(t, "testkit: network namespace tests need root (ip netns, veth, nftables); CI runs them as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		noNetNS(t, "testkit: network namespace tests need the ip command (iproute2)")
	}
	// A random /30 in 10.213.0.0/16 and short unique names: several test
	// binaries may make namespaces at once.
	var b [2]byte
	_, _ = rand.Read(b[:])
	n := netnsSeq.Add(1)
	base := netip.AddrFrom4([4]byte{10, 213, b[0], b[1] &^ 3})
	ns := &NetNS{
		Name:   fmt.Sprintf("chp%d-%d", os.Getpid(), n),
		HostIP: base.Next(),
		NSIP:   base.Next().Next(),
		hostIf: fmt.Sprintf("chh%x%x", os.Getpid()&0xffff, n),
		t:      t,
	}
	ns.HostIP6 = netip.AddrFrom16([16]byte{0xfd, 0, 0x02, 0x13, b[0], b[1], 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	ns.NSIP6 = netip.AddrFrom16([16]byte{0xfd, 0, 0x02, 0x13, b[0], b[1], 0, 0, 0, 0, 0, 0, 0, 0, 0, 2})
	nsIf := "chn" + ns.hostIf[3:]
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", ns.Name).Run()
		_ = exec.Command("ip", "link", "del", ns.hostIf).Run()
	})
	for _, args := range [][]string{
		{"netns", "add", ns.Name},
		{"link", "add", ns.hostIf, "type", "veth", "peer", "name", nsIf},
		{"link", "set", nsIf, "netns", ns.Name},
		{"addr", "add", ns.HostIP.String() + "/30", "dev", ns.hostIf},
		{"link", "set", ns.hostIf, "up"},
		{"-n", ns.Name, "addr", "add", ns.NSIP.String() + "/30", "dev", nsIf},
		{"-n", ns.Name, "link", "set", nsIf, "up"},
		{"-n", ns.Name, "link", "set", "lo", "up"},
		{"-n", ns.Name, "route", "add", "default", "via", ns.HostIP.String()},
		{"-6", "addr", "add", ns.HostIP6.String() + "/64", "dev", ns.hostIf, "nodad"},
		{"-6", "-n", ns.Name, "addr", "add", ns.NSIP6.String() + "/64", "dev", nsIf, "nodad"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("testkit: ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// The kernel may not answer on a new address at once (DAD for v6,
	// the link coming up): wait until the namespace reaches HostIP.
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := net.Listen("tcp4", net.JoinHostPort(ns.HostIP.String(), "0"))
		if err == nil {
			var c net.Conn
			err = ns.Do(func() error {
				var derr error
				c, derr = net.DialTimeout("tcp4", l.Addr().String(), time.Second)
				return derr
			})
			if c != nil {
				_ = c.Close()
			}
			_ = l.Close()
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("testkit: namespace %s does not reach %s: %v", ns.Name, ns.HostIP, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return ns
}

// Do runs fn on an OS thread switched into the namespace: sockets fn makes
// belong to it (and keep working from any goroutine afterwards).
func (ns *NetNS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("testkit: own namespace: %w", err)
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + ns.Name)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("testkit: namespace %s: %w", ns.Name, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("testkit: enter namespace %s: %w", ns.Name, err)
			return
		}
		ferr := fn()
		// A thread that cannot go back stays locked: the runtime ends it
		// with this goroutine.
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}

// Exec runs a command inside the namespace (ip netns exec) and fails the
// test if it fails; stdin, when not "", is its input.
func (ns *NetNS) Exec(stdin string, name string, args ...string) {
	ns.t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		ns.t.Fatalf("testkit: in %s: %s %s: %v\n%s", ns.Name, name, strings.Join(args, " "), err, out)
	}
}

// Nft loads an nftables ruleset into the namespace (nft -f -). Rules in a
// namespace go with it.
func (ns *NetNS) Nft(ruleset string) {
	ns.t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		noNetNS(ns.t, "testkit: this test needs nft (nftables)")
	}
	ns.Exec(ruleset, "nft", "-f", "-")
}

// DropUDP makes the namespace drop every UDP packet it sends, but on its
// loopback: a network that blocks UDP.
func (ns *NetNS) DropUDP() {
	ns.t.Helper()
	ns.Nft(`table inet chaperone_test {
  chain output {
    type filter hook output priority 0; policy accept;
    oifname "lo" accept
    meta l4proto udp drop
  }
}
`)
}

// OnlyTCPTo makes the namespace drop everything it sends but on its
// loopback and TCP to ip:port: a network that lets through only TLS (or
// TCP) to one server's port.
func (ns *NetNS) OnlyTCPTo(ip netip.Addr, port int) {
	ns.t.Helper()
	ns.Nft(fmt.Sprintf(`table inet chaperone_test {
  chain output {
    type filter hook output priority 0; policy accept;
    oifname "lo" accept
    ip daddr %s tcp dport %d accept
    drop
  }
}
`, ip, port))
}

// Masquerade puts a private LAN address behind the namespace's veth
// address, as a home router does: the namespace's loopback also gets lan
// (e.g. 10.99.0.2/24), and what leaves by the veth pair from it is
// source-NATed (masquerade) to NSIP. It returns the LAN address.
func (ns *NetNS) Masquerade(lan string) netip.Addr {
	ns.t.Helper()
	pfx := netip.MustParsePrefix(lan)
	if out, err := exec.Command("ip", "-n", ns.Name, "addr", "add", lan, "dev", "lo").CombinedOutput(); err != nil {
		ns.t.Fatalf("testkit: ip -n %s addr add %s dev lo: %v\n%s", ns.Name, lan, err, out)
	}
	ns.Nft(fmt.Sprintf(`table ip chaperone_nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "%s" ip saddr %s masquerade
  }
}
`, "chn"+ns.hostIf[3:], pfx.Masked()))
	return pfx.Addr()
}

// Cut drops everything the namespace sends but on its loopback, as when
// its network goes away; the returned func brings it back.
func (ns *NetNS) Cut() (restore func()) {
	ns.t.Helper()
	ns.Nft(`table inet chaperone_cut {
  chain output {
    type filter hook output priority 0; policy accept;
    oifname "lo" accept
    drop
  }
}
`)
	return func() {
		ns.t.Helper()
		ns.Exec("", "nft", "delete", "table", "inet", "chaperone_cut")
	}
}

// ForwardLoopback makes 127.0.0.1:port inside the namespace reach
// 127.0.0.1:port of the test's namespace (plain TCP relays), so that a
// browser in the namespace opens the same URLs (gateway, IdP) as one
// outside. Relays stop at t.Cleanup.
func (ns *NetNS) ForwardLoopback(ports ...int) {
	ns.t.Helper()
	for _, port := range ports {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		var l net.Listener
		if err := ns.Do(func() error {
			var err error
			l, err = net.Listen("tcp4", addr)
			return err
		}); err != nil {
			ns.t.Fatalf("testkit: listen on %s in %s: %v", addr, ns.Name, err)
		}
		relay(ns.t, l, func() (net.Conn, error) { return net.DialTimeout("tcp4", addr, 5*time.Second) })
	}
}

// relay accepts on l and copies each connection to one from dial, both
// ways, until either side closes; l and every connection close at
// t.Cleanup.
func relay(t testing.TB, l net.Listener, dial func() (net.Conn, error)) {
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := dial()
			if err != nil {
				_ = in.Close()
				continue
			}
			mu.Lock()
			if ctx.Err() != nil {
				mu.Unlock()
				_ = in.Close()
				_ = out.Close()
				return
			}
			conns = append(conns, in, out)
			mu.Unlock()
			wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer wg.Done()
				_, _ = io.Copy(dst, src) // ends when either side closes
				_ = dst.Close()
				_ = src.Close()
			}
			go pipe(in, out)
			go pipe(out, in)
		}
	}()
}

// BrowserIn starts a headless Chromium inside the namespace (ip netns exec;
// chromedp talks to it over a pipe, so no port is needed) with the same
// switches as Browser, and extra ones.
func BrowserIn(t testing.TB, ns *NetNS, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	path := ChromiumPath()
	if path == "" {
		noBrowser(t)
		return nil
	}
	script := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n", ns.Name, path)
	f, err := os.CreateTemp("", "chaperone-chromium-netns-*.sh")
	if err != nil {
		t.Fatalf("testkit: chromium wrapper: %v", err)
	}
	t.Cleanup(func() { _ = os.Remove(f.Name()) })
	if _, err := f.WriteString(script); err != nil {
		t.Fatalf("testkit: chromium wrapper: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("testkit: chromium wrapper: %v", err)
	}
	if err := os.Chmod(f.Name(), 0o755); err != nil {
		t.Fatalf("testkit: chromium wrapper: %v", err)
	}
	return browserAt(t, f.Name(), extra...)
}
