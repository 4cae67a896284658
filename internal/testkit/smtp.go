package testkit

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Mail is a message an SMTPServer accepted.
type Mail struct {
	From string
	To   []string
	Data string // headers and body as sent, dot-unstuffed, CRLF line ends
}

// SMTPServer is a small in-process SMTP server for tests: it speaks EHLO,
// HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT and (with a certificate)
// STARTTLS on loopback, no AUTH, and keeps what it accepted.
type SMTPServer struct {
	Host string
	Port int
	// Roots trusts the server's certificate (StartSMTPTLS only).
	Roots *x509.CertPool

	tls      *tls.Config // nil: plain only
	implicit bool        // TLS from the first byte

	ln       net.Listener
	mu       sync.Mutex
	mails    []Mail
	arrived  chan struct{}
	failRcpt atomic.Int32 // the next this many RCPTs get a temporary failure
}

// StartSMTP starts a plain SMTP server on loopback, stopped when the test
// ends.
func StartSMTP(t testing.TB) *SMTPServer { return startSMTP(t, nil, false) }

// StartSMTPTLS starts an SMTP server with a new self-signed certificate for
// 127.0.0.1 (trusted by Roots): TLS from the first byte when implicit, else
// plain with STARTTLS.
func StartSMTPTLS(t testing.TB, implicit bool) *SMTPServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("smtp key: %v", err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "testkit smtp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("smtp certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("smtp certificate: %v", err)
	}
	s := startSMTP(t, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, implicit)
	s.Roots = x509.NewCertPool()
	s.Roots.AddCert(cert)
	return s
}

func startSMTP(t testing.TB, tlsCfg *tls.Config, implicit bool) *SMTPServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtp listen: %v", err)
	}
	s := &SMTPServer{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, ln: ln, arrived: make(chan struct{}, 1), tls: tlsCfg, implicit: implicit}
	if implicit {
		ln = tls.NewListener(ln, tlsCfg)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); s.serve(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return s
}

// FailNextRcpt makes the next n RCPT commands fail with a temporary error.
func (s *SMTPServer) FailNextRcpt(n int) { s.failRcpt.Store(int32(n)) }

// Mails returns the messages accepted so far.
func (s *SMTPServer) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// WaitMails waits until at least n messages have arrived (or within has
// passed) and returns them.
func (s *SMTPServer) WaitMails(t testing.TB, n int, within time.Duration) []Mail {
	t.Helper()
	deadline := time.After(within)
	for {
		if ms := s.Mails(); len(ms) >= n {
			return ms
		}
		select {
		case <-s.arrived:
		case <-deadline:
			t.Fatalf("smtp: %d of %d messages arrived within %s", len(s.Mails()), n, within)
		}
	}
}

func (s *SMTPServer) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	reply := func(lines ...string) bool {
		for _, l := range lines {
			w.WriteString(l + "\r\n")
		}
		return w.Flush() == nil
	}
	if !reply("220 testkit ESMTP ready") {
		return
	}
	var cur Mail
	upgraded := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			if s.tls != nil && !s.implicit && !upgraded {
				reply("250-testkit greets "+arg, "250-STARTTLS", "250 8BITMIME")
			} else {
				reply("250-testkit greets "+arg, "250 8BITMIME")
			}
		case "STARTTLS":
			if s.tls == nil || s.implicit || upgraded {
				reply("502 5.5.2 no STARTTLS here")
				continue
			}
			reply("220 go ahead")
			tc := tls.Server(c, s.tls)
			if tc.Handshake() != nil {
				return
			}
			upgraded, r, w, cur = true, bufio.NewReader(tc), bufio.NewWriter(tc), Mail{}
		case "MAIL":
			if s.tls != nil && !s.implicit && !upgraded {
				reply("530 5.7.0 must issue STARTTLS first")
				continue
			}
			cur = Mail{From: addrOf(arg)}
			reply("250 OK")
		case "HELO":
			reply("250 testkit")
		case "RCPT":
			if s.failRcpt.Load() > 0 {
				s.failRcpt.Add(-1)
				reply("451 4.3.0 try again later")
				continue
			}
			cur.To = append(cur.To, addrOf(arg))
			reply("250 OK")
		case "DATA":
			if cur.From == "" || len(cur.To) == 0 {
				reply("503 5.5.1 MAIL and RCPT first")
				continue
			}
			reply("354 end with <CRLF>.<CRLF>")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, "."))
			}
			cur.Data = b.String()
			s.mu.Lock()
			s.mails = append(s.mails, cur)
			s.mu.Unlock()
			select {
			case s.arrived <- struct{}{}:
			default:
			}
			cur = Mail{}
			reply("250 OK queued as " + strconv.Itoa(len(s.Mails())))
		case "RSET":
			cur = Mail{}
			reply("250 OK")
		case "NOOP":
			reply("250 OK")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 5.5.2 command not implemented")
		}
	}
}

// addrOf reads the address of "FROM:<a@b> ..." or "TO:<a@b>".
func addrOf(arg string) string {
	i, j := strings.IndexByte(arg, '<'), strings.IndexByte(arg, '>')
	if i < 0 || j < i {
		return ""
	}
	return arg[i+1 : j]
}
