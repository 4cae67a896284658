package notify_test

import (
	"crypto/tls"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/notify"
)

type outcome struct {
	attempt int
	err     error
	final   bool
}

type reports struct {
	mu  sync.Mutex
	got map[string][]outcome
}

func (r *reports) reportTo(to string) notify.Report {
	return func(attempt int, err error, final bool) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got[to] = append(r.got[to], outcome{attempt, err, final})
	}
}

func (r *reports) of(to string) []outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]outcome(nil), r.got[to]...)
}

// TestMailerDelivers: two messages reach a real (in-process) SMTP server,
// one after a temporary refusal; a message to a dead server is given up
// after the retries, and Send never waits for the network.
func TestMailerDelivers(t *testing.T) {
	t.Parallel()
	srv := testkit.StartSMTP(t)
	srv.FailNextRcpt(1)
	m, err := notify.NewMailer(notify.SMTPConfig{Host: srv.Host, Port: srv.Port, From: "chaperone@oakfield.example", TLS: notify.TLSNone,
		Retries: []time.Duration{50 * time.Millisecond, 50 * time.Millisecond}, Timeout: 5 * time.Second}, testkit.TestLogger(t))
	require.NoError(t, err)
	t.Cleanup(m.Close)
	rep := &reports{got: map[string][]outcome{}}
	for _, to := range []string{"h.murray@oakfield.example", "p.sharma@oakfield.example"} {
		require.NoError(t, m.Send(notify.Message{To: to, Subject: "Safeguarding concern", Body: "Line one\n.line starting with a dot\n"}, rep.reportTo(to)))
	}
	mails := srv.WaitMails(t, 2, 20*time.Second)
	var to []string
	for _, ml := range mails {
		require.Equal(t, "chaperone@oakfield.example", ml.From)
		require.Len(t, ml.To, 1)
		to = append(to, ml.To[0])
		require.Contains(t, ml.Data, "Subject: Safeguarding concern\r\n")
		require.Contains(t, ml.Data, "To: "+ml.To[0]+"\r\n")
		require.Contains(t, ml.Data, "\r\n\r\nLine one\r\n.line starting with a dot\r\n", "dot-stuffing undone, CRLF line ends")
	}
	require.ElementsMatch(t, []string{"h.murray@oakfield.example", "p.sharma@oakfield.example"}, to)
	require.Eventually(t, func() bool {
		first := rep.of("h.murray@oakfield.example")
		return len(first) == 2 && first[0].err != nil && !first[0].final && first[1].err == nil && first[1].final
	}, 10*time.Second, 20*time.Millisecond, "first attempt refused (451), second sent: %+v", rep.of("h.murray@oakfield.example"))

	// A server that is gone: Send returns at once, and the report says it gave up after 1 + 2 retries.
	ln := testkit.FreePort(t)
	dead, err := notify.NewMailer(notify.SMTPConfig{Host: "127.0.0.1", Port: ln, From: "chaperone@oakfield.example", TLS: notify.TLSNone,
		Retries: []time.Duration{20 * time.Millisecond, 20 * time.Millisecond}, Timeout: 2 * time.Second}, testkit.TestLogger(t))
	require.NoError(t, err)
	t.Cleanup(dead.Close)
	start := time.Now()
	require.NoError(t, dead.Send(notify.Message{To: "x@oakfield.example", Subject: "s", Body: "b"}, rep.reportTo("x@oakfield.example")))
	require.Less(t, time.Since(start), 100*time.Millisecond, "Send does not wait for the server")
	require.Eventually(t, func() bool {
		got := rep.of("x@oakfield.example")
		return len(got) == 3 && got[2].final && got[2].err != nil
	}, 15*time.Second, 20*time.Millisecond)

	// Bad messages are refused before they are queued.
	require.Error(t, m.Send(notify.Message{To: "a@b.example\r\nBcc: c@d.example", Subject: "s"}, nil))
	require.Error(t, m.Send(notify.Message{To: "a@b.example", Subject: "s\nBcc: c@d.example"}, nil))
	require.Error(t, m.Send(notify.Message{To: "Someone <a@b.example>", Subject: "s"}, nil))
}

func TestSMTPConfigValidate(t *testing.T) {
	t.Parallel()
	ok := notify.SMTPConfig{Host: "mail.oakfield.example", Port: 587, From: "chaperone@oakfield.example", TLS: notify.TLSStartTLS}
	require.NoError(t, ok.Validate())
	for name, mod := range map[string]func(*notify.SMTPConfig){
		"no host":       func(c *notify.SMTPConfig) { c.Host = "" },
		"host:port":     func(c *notify.SMTPConfig) { c.Host = "mail:25" },
		"port":          func(c *notify.SMTPConfig) { c.Port = 70000 },
		"tls mode":      func(c *notify.SMTPConfig) { c.TLS = "ssl" },
		"from":          func(c *notify.SMTPConfig) { c.From = "Chaperone <c@x.example>" },
		"user only":     func(c *notify.SMTPConfig) { c.Username = "u" },
		"password only": func(c *notify.SMTPConfig) { c.Password = "p" },
		// net/smtp refuses PLAIN auth without TLS except to localhost: every e-mail would fail.
		"auth without TLS": func(c *notify.SMTPConfig) { c.TLS, c.Username, c.Password = notify.TLSNone, "u", "p" },
	} {
		c := ok
		mod(&c)
		err := c.Validate()
		require.Error(t, err, name)
		require.False(t, errors.Is(err, notify.ErrQueueFull))
		require.True(t, strings.HasPrefix(err.Error(), "notify: "), name)
	}
	for _, host := range []string{"localhost", "127.0.0.1"} {
		c := ok
		c.Host, c.TLS, c.Username, c.Password = host, notify.TLSNone, "u", "p"
		require.NoError(t, c.Validate(), "a relay on %s may take a password without TLS", host)
	}
}

// TestMailerCloseReportsPending: Close tells the report of every message
// still waiting for a retry that it will not be sent (final, ErrClosed),
// before it returns; Send after Close is refused.
func TestMailerCloseReportsPending(t *testing.T) {
	t.Parallel()
	dead := testkit.FreePort(t)
	m, err := notify.NewMailer(notify.SMTPConfig{Host: "127.0.0.1", Port: dead, From: "chaperone@oakfield.example", TLS: notify.TLSNone,
		Retries: []time.Duration{time.Hour}, Timeout: 2 * time.Second}, testkit.TestLogger(t))
	require.NoError(t, err)
	rep := &reports{got: map[string][]outcome{}}
	to := []string{"h.murray@oakfield.example", "p.sharma@oakfield.example"}
	for _, addr := range to {
		require.NoError(t, m.Send(notify.Message{To: addr, Subject: "s", Body: "b"}, rep.reportTo(addr)))
	}
	require.Eventually(t, func() bool { return len(rep.of(to[0])) == 1 && len(rep.of(to[1])) == 1 }, 10*time.Second, 10*time.Millisecond,
		"first attempts failed; retries wait an hour")
	m.Close()
	for _, addr := range to {
		got := rep.of(addr)
		require.Len(t, got, 2, "reported again by the time Close returns: %+v", got)
		require.False(t, got[0].final)
		require.True(t, got[1].final)
		require.ErrorIs(t, got[1].err, notify.ErrClosed)
	}
	require.ErrorIs(t, m.Send(notify.Message{To: to[0], Subject: "s", Body: "b"}, nil), notify.ErrClosed)
}

// TestMailerTLS: implicit TLS and STARTTLS against servers with their own
// certificate; a server that does not offer STARTTLS is refused in
// starttls mode (the message is never sent in clear).
func TestMailerTLS(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode     string
		implicit bool
	}{{notify.TLSImplicit, true}, {notify.TLSStartTLS, false}} {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			srv := testkit.StartSMTPTLS(t, tc.implicit)
			m, err := notify.NewMailer(notify.SMTPConfig{Host: srv.Host, Port: srv.Port, From: "chaperone@oakfield.example", TLS: tc.mode,
				TLSConfig: &tls.Config{RootCAs: srv.Roots, ServerName: srv.Host}, Retries: []time.Duration{}}, testkit.TestLogger(t))
			require.NoError(t, err)
			t.Cleanup(m.Close)
			rep := &reports{got: map[string][]outcome{}}
			require.NoError(t, m.Send(notify.Message{To: "h.murray@oakfield.example", Subject: "s", Body: "b"}, rep.reportTo("h")))
			srv.WaitMails(t, 1, 10*time.Second)
			require.Eventually(t, func() bool { r := rep.of("h"); return len(r) == 1 && r[0].err == nil }, 5*time.Second, 10*time.Millisecond)
		})
	}
	t.Run("no STARTTLS offered", func(t *testing.T) {
		t.Parallel()
		srv := testkit.StartSMTP(t)
		m, err := notify.NewMailer(notify.SMTPConfig{Host: srv.Host, Port: srv.Port, From: "chaperone@oakfield.example", TLS: notify.TLSStartTLS,
			Retries: []time.Duration{}}, testkit.TestLogger(t))
		require.NoError(t, err)
		t.Cleanup(m.Close)
		rep := &reports{got: map[string][]outcome{}}
		require.NoError(t, m.Send(notify.Message{To: "h.murray@oakfield.example", Subject: "s", Body: "b"}, rep.reportTo("h")))
		require.Eventually(t, func() bool { r := rep.of("h"); return len(r) == 1 && r[0].final && r[0].err != nil }, 5*time.Second, 10*time.Millisecond)
		require.Contains(t, rep.of("h")[0].err.Error(), "does not offer STARTTLS")
		require.Empty(t, srv.Mails())
	})
}
