package testkit

import (
	"bufio"
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
// HELO, MAIL, RCPT, DATA, RSET, NOOP and QUIT on loopback (no TLS, no
// AUTH) and keeps what it accepted.
type SMTPServer struct {
	Host string
	Port int

	ln       net.Listener
	mu       sync.Mutex
	mails    []Mail
	arrived  chan struct{}
	failRcpt atomic.Int32 // the next this many RCPTs get a temporary failure
}

// StartSMTP starts an SMTP server on loopback, stopped when the test ends.
func StartSMTP(t testing.TB) *SMTPServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtp listen: %v", err)
	}
	s := &SMTPServer{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, ln: ln, arrived: make(chan struct{}, 1)}
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
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			reply("250-testkit greets "+arg, "250-8BITMIME", "250 SIZE 1048576")
		case "HELO":
			reply("250 testkit")
		case "MAIL":
			cur = Mail{From: addrOf(arg)}
			reply("250 OK")
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
