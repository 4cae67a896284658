package web

import (
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/chaperone-edu/chaperone/auth"
)

// Limits are the attempt limits per minute. Zero fields take the defaults.
// Behind a school's NAT every pupil shares one address, so the per-address
// limits on normal use are generous; failed sign-ins are not.
type Limits struct {
	SigninFailures int // failed sign-ins per address (default 10)
	SigninStarts   int // sign-ins started per address (default 1000)
	WSPerAddress   int // room connections per address (default 2000)
	WSPerAccount   int // room connections per account (default 30)
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.SigninFailures, 10)
	def(&l.SigninStarts, 1000)
	def(&l.WSPerAddress, 2000)
	def(&l.WSPerAccount, 30)
	return l
}

// throttles hold the per-minute counters of Limits.
type throttles struct {
	signinFail, signinStart, wsAddr, wsAcct *auth.Throttle
	concernMail                             *auth.Throttle // per concern, recipient and kind of e-mail
}

// concernMailWindow: each person is e-mailed each kind of message about a
// concern (raised in the room, raised, details added) at most once in it,
// however often the concern is raised or its form posted.
const concernMailWindow = 24 * time.Hour

func newThrottles(l Limits, now func() time.Time) throttles {
	l = l.withDefaults()
	return throttles{
		signinFail:  auth.NewThrottle(l.SigninFailures, time.Minute, now),
		signinStart: auth.NewThrottle(l.SigninStarts, time.Minute, now),
		wsAddr:      auth.NewThrottle(l.WSPerAddress, time.Minute, now),
		wsAcct:      auth.NewThrottle(l.WSPerAccount, time.Minute, now),
		concernMail: auth.NewThrottle(1, concernMailWindow, now),
	}
}

// tooMany answers 429 with a page (or JSON) saying when to try again.
func (s *Server) tooMany(w http.ResponseWriter, r *http.Request, msg string) {
	w.Header().Set("Retry-After", "60")
	s.fail(w, r, http.StatusTooManyRequests, "too_many_attempts", msg)
}

// allowWS applies the connection limits to a room connection attempt.
func (s *Server) allowWS(w http.ResponseWriter, r *http.Request, who auth.Identity) bool {
	if !s.limits.wsAddr.Allow(addrKey(auth.ClientIP(r))) || !s.limits.wsAcct.Allow(who.Issuer+"|"+who.Subject) {
		s.tooMany(w, r, "Too many attempts to join a live lesson. Wait a minute, then reload the page.")
		return false
	}
	return true
}

// reauthWindow is how recent a sign-in must be for recordings.
func (s *Server) reauthWindow() time.Duration {
	if s.cfg.RecordingReauth > 0 {
		return s.cfg.RecordingReauth
	}
	return 15 * time.Minute
}

// requireFresh lets a request through when the person signed in at the IdP
// within the re-authentication window. Otherwise it sends them through the
// IdP again (with max_age, so the IdP asks for the password) and back to
// where they were, and reports false. Nothing has been served by then.
func (s *Server) requireFresh(w http.ResponseWriter, r *http.Request, back string) bool {
	if s.isFresh(r) {
		return true
	}
	target := freshLogin(back)
	if wantsJSON(r) {
		w.Header().Set("Location", target)
		s.fail(w, r, http.StatusUnauthorized, "reauthentication_required",
			"Recordings need a recent sign-in. Sign in again, then try again.")
		return false
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
	return false
}

// isFresh reports whether the request's sign-in at the IdP is within the
// re-authentication window.
func (s *Server) isFresh(r *http.Request) bool {
	sess := sessionFrom(r.Context())
	return sess != nil && !sess.AuthTime.IsZero() && s.auth.Now().Sub(sess.AuthTime) <= s.reauthWindow()
}

// freshLogin is the sign-in that asks the IdP for a new authentication and
// comes back to back.
func freshLogin(back string) string {
	return "/login?fresh=1&next=" + url.QueryEscape(back)
}

// playbackGrants let the player of a recording page, opened with a fresh
// sign-in, keep fetching its media for as long as the recording lasts,
// although the sign-in ages past the window while it plays. A grant is for
// one browser session and one recorded session, and is never a download.
type playbackGrants struct {
	mu sync.Mutex
	m  map[string]time.Time // web session ID + "/" + session ID → until
}

func (g *playbackGrants) grant(webSession, sessionID string, now, until time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, u := range g.m {
		if now.After(u) {
			delete(g.m, k)
		}
	}
	g.m[webSession+"/"+sessionID] = until
}

func (g *playbackGrants) valid(webSession, sessionID string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	until, ok := g.m[webSession+"/"+sessionID]
	return ok && !now.After(until)
}

// addrKey is the key an address is limited under: the address itself for
// IPv4, its /64 for IPv6 (one household or school gets a whole /64).
func addrKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}
