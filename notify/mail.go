package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TLS modes of an SMTP connection.
const (
	TLSNone     = "none"     // plain SMTP (a relay on the same host or network)
	TLSStartTLS = "starttls" // plain connection upgraded with STARTTLS (port 587)
	TLSImplicit = "tls"      // TLS from the first byte (port 465)
)

// ErrQueueFull means the mailer's queue is full; the message was not taken.
var ErrQueueFull = errors.New("notify: e-mail queue is full")

// ErrClosed is reported (final) for a message still waiting to be sent
// when the mailer is closed, and returned by Send after Close.
var ErrClosed = errors.New("notify: mailer closed before the e-mail could be sent")

// SMTPConfig says how to reach the school's mail server.
type SMTPConfig struct {
	Host     string
	Port     int
	From     string // envelope and header sender, a bare address
	TLS      string // TLSNone, TLSStartTLS or TLSImplicit
	Username string // "" means no authentication
	Password string
	// TLSConfig overrides the TLS client settings (tests trust their own CA).
	TLSConfig *tls.Config
	// Timeout bounds one delivery attempt (default 30 s).
	Timeout time.Duration
	// Retries are the waits before each further attempt after a failure
	// (default 10 s, 30 s, 1 min, 5 min, 15 min).
	Retries []time.Duration
	// QueueLen bounds the messages waiting for a first attempt (default 256).
	QueueLen int
}

// Validate checks the configuration; each error names what is wrong.
func (c SMTPConfig) Validate() error {
	switch {
	case c.Host == "" || strings.ContainsAny(c.Host, " /:"):
		return fmt.Errorf("notify: SMTP host %q is not a host name", c.Host)
	case c.Port <= 0 || c.Port > 65535:
		return fmt.Errorf("notify: SMTP port %d is not a port number", c.Port)
	case c.TLS != TLSNone && c.TLS != TLSStartTLS && c.TLS != TLSImplicit:
		return fmt.Errorf("notify: SMTP TLS mode %q is not none, starttls or tls", c.TLS)
	case (c.Username == "") != (c.Password == ""):
		return errors.New("notify: set both the SMTP username and password, or neither")
	case c.Username != "" && c.TLS == TLSNone && !isLocalhost(c.Host):
		// net/smtp refuses PLAIN authentication without TLS except to
		// localhost: every e-mail would fail.
		return fmt.Errorf("notify: SMTP authentication needs TLS (starttls or tls) unless the server is on localhost; %q with TLS none would send the password in clear, and is refused", c.Host)
	}
	if a, err := mail.ParseAddress(c.From); err != nil || a.Address != c.From {
		return fmt.Errorf("notify: SMTP from %q is not a bare e-mail address", c.From)
	}
	return nil
}

// isLocalhost reports whether host is this machine (where net/smtp allows
// PLAIN authentication without TLS).
func isLocalhost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Message is one plain-text e-mail to one recipient.
type Message struct {
	To      string
	Subject string
	Body    string
}

// Report is told the outcome of each attempt to send a message: err is nil
// once it is sent; final is true when no further attempt will be made.
type Report func(attempt int, err error, final bool)

type job struct {
	msg     Message
	report  Report
	attempt int
}

// Mailer sends e-mail in the background: Send queues a message and returns
// at once; a worker delivers it, retrying failures after the configured
// waits. It is safe for concurrent use.
type Mailer struct {
	cfg   SMTPConfig
	log   *slog.Logger
	queue chan job

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	timers map[*time.Timer]job // pending retries
}

// NewMailer checks cfg and starts the mailer's worker.
func NewMailer(cfg SMTPConfig, log *slog.Logger) (*Mailer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Retries == nil {
		cfg.Retries = []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute, 15 * time.Minute}
	}
	if cfg.QueueLen == 0 {
		cfg.QueueLen = 256
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Mailer{cfg: cfg, log: log, queue: make(chan job, cfg.QueueLen), ctx: ctx, cancel: cancel, timers: map[*time.Timer]job{}}
	m.wg.Add(1)
	go m.work()
	return m, nil
}

// Send queues msg and returns at once. report (may be nil) is called from
// the mailer's goroutine after each attempt.
func (m *Mailer) Send(msg Message, report Report) error {
	if err := checkHeader(msg.To, msg.Subject); err != nil {
		return err
	}
	if a, err := mail.ParseAddress(msg.To); err != nil || a.Address != msg.To {
		return fmt.Errorf("notify: %q is not a bare e-mail address", msg.To)
	}
	if report == nil {
		report = func(int, error, bool) {}
	}
	// Under mu, so a message is either queued before Close (and then sent
	// or reported) or refused.
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx.Err() != nil {
		return ErrClosed
	}
	select {
	case m.queue <- job{msg: msg, report: report}:
		return nil
	default:
		return ErrQueueFull
	}
}

// Close stops the mailer: the attempt under way finishes; queued messages
// and pending retries are not sent, and their reports are told so (final,
// ErrClosed). Close returns once every report has been called.
func (m *Mailer) Close() {
	m.mu.Lock()
	m.cancel()
	var stopped []job
	for t, j := range m.timers {
		delete(m.timers, t)
		if t.Stop() {
			stopped = append(stopped, j)
		}
	}
	m.mu.Unlock()
	for _, j := range stopped { // reported outside mu: a report may call Send
		m.log.Warn("e-mail retry dropped at shutdown", slog.String("to", j.msg.To))
		j.report(j.attempt, ErrClosed, true)
		m.wg.Done()
	}
	m.wg.Wait()
	m.dropQueued() // a retry handed back while the worker was stopping
}

// dropQueued reports every queued message as not sent.
func (m *Mailer) dropQueued() {
	for {
		select {
		case j := <-m.queue:
			m.log.Warn("e-mail not sent: shutting down", slog.String("to", j.msg.To))
			j.report(j.attempt, ErrClosed, true)
		default:
			return
		}
	}
}

func (m *Mailer) work() {
	defer m.wg.Done()
	for {
		select {
		case <-m.ctx.Done():
			m.dropQueued()
			return
		case j := <-m.queue:
			m.attempt(j)
		}
	}
}

func (m *Mailer) attempt(j job) {
	j.attempt++
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.Timeout)
	err := m.deliver(ctx, j.msg)
	cancel()
	if err == nil {
		m.log.Info("e-mail sent", slog.String("to", j.msg.To), slog.Int("attempt", j.attempt))
		j.report(j.attempt, nil, true)
		return
	}
	final := j.attempt > len(m.cfg.Retries) || m.ctx.Err() != nil
	m.log.Warn("e-mail not sent", slog.String("to", j.msg.To), slog.Int("attempt", j.attempt), slog.Bool("giving_up", final), slog.Any("err", err))
	j.report(j.attempt, err, final)
	if final {
		return
	}
	// The retry waits on a timer, not in the worker: one unreachable
	// recipient does not hold up the others.
	m.mu.Lock()
	if m.ctx.Err() != nil {
		m.mu.Unlock()
		j.report(j.attempt, ErrClosed, true)
		return
	}
	defer m.mu.Unlock()
	// The timer's callback counts as work in progress until it has handed
	// the job back to the queue (or reported it dropped): Close waits for it.
	m.wg.Add(1)
	var t *time.Timer
	t = time.AfterFunc(m.cfg.Retries[j.attempt-1], func() {
		defer m.wg.Done()
		m.mu.Lock()
		delete(m.timers, t)
		closed := m.ctx.Err() != nil
		m.mu.Unlock()
		if closed {
			j.report(j.attempt, ErrClosed, true)
			return
		}
		select {
		case m.queue <- j:
		case <-m.ctx.Done():
			m.log.Warn("e-mail retry dropped at shutdown", slog.String("to", j.msg.To))
			j.report(j.attempt, ErrClosed, true)
		}
	})
	m.timers[t] = j
}

// deliver makes one SMTP transaction for msg.
func (m *Mailer) deliver(ctx context.Context, msg Message) error {
	addr := net.JoinHostPort(m.cfg.Host, strconv.Itoa(m.cfg.Port))
	tlsCfg := m.cfg.TLSConfig
	if tlsCfg == nil {
		tlsCfg = &tls.Config{ServerName: m.cfg.Host, MinVersion: tls.VersionTLS12}
	}
	d := &net.Dialer{}
	var conn net.Conn
	var err error
	if m.cfg.TLS == TLSImplicit {
		conn, err = (&tls.Dialer{NetDialer: d, Config: tlsCfg}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	c, err := smtp.NewClient(conn, m.cfg.Host)
	if err != nil {
		return fmt.Errorf("SMTP greeting from %s: %w", addr, err)
	}
	defer c.Close()
	if m.cfg.TLS == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("SMTP server %s does not offer STARTTLS (set smtp_tls to match the server)", addr)
		}
		if err := c.StartTLS(tlsCfg); err != nil {
			return fmt.Errorf("STARTTLS with %s: %w", addr, err)
		}
	}
	if m.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", m.cfg.Username, m.cfg.Password, m.cfg.Host)); err != nil {
			return fmt.Errorf("SMTP authentication at %s: %w", addr, err)
		}
	}
	if err := c.Mail(m.cfg.From); err != nil {
		return fmt.Errorf("SMTP MAIL FROM: %w", err)
	}
	if err := c.Rcpt(msg.To); err != nil {
		return fmt.Errorf("SMTP RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("SMTP DATA: %w", err)
	}
	if _, err := w.Write(m.compose(msg)); err != nil {
		return fmt.Errorf("SMTP message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("SMTP message not accepted: %w", err)
	}
	if err := c.Quit(); err != nil {
		m.log.Debug("SMTP QUIT", slog.Any("err", err)) // the message was accepted
	}
	return nil
}

// compose renders msg with its headers, lines ending in CRLF.
func (m *Mailer) compose(msg Message) []byte {
	var b bytes.Buffer
	domain := m.cfg.From[strings.LastIndexByte(m.cfg.From, '@')+1:]
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	hdr := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	hdr("From", m.cfg.From)
	hdr("To", msg.To)
	hdr("Subject", mime.QEncoding.Encode("utf-8", msg.Subject))
	hdr("Date", time.Now().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+hex.EncodeToString(id)+"@"+domain+">")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "8bit")
	hdr("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	body := strings.ReplaceAll(strings.ReplaceAll(msg.Body, "\r\n", "\n"), "\n", "\r\n")
	b.WriteString(body)
	if !strings.HasSuffix(body, "\r\n") {
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// checkHeader refuses header values that would inject headers.
func checkHeader(values ...string) error {
	for _, v := range values {
		if strings.ContainsAny(v, "\r\n") {
			return fmt.Errorf("notify: %q: a header cannot contain a line break", v)
		}
	}
	return nil
}
