package web_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/sfu"
)

// Pupils on networks that block UDP (R18). These tests make a network
// namespace with a veth pair and nftables rules (root; they skip without).

// selectedPairJS describes the local candidate of the selected ICE pair
// of the connection named by %s ("up" or "down"): its protocol, type and,
// for a relayed one, the protocol to the relay, e.g. "tcp prflx " or
// "udp relay tcp" ("" before there is a pair).
const selectedPairJS = `(async () => {
  const pc = window.chaperoneRoom && window.chaperoneRoom.pcs[%s];
  if (!pc) return '';
  const stats = await pc.getStats();
  let pair;
  stats.forEach(r => { if (r.type === 'transport' && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId); });
  if (!pair) return '';
  const local = stats.get(pair.localCandidateId);
  return local ? local.protocol + ' ' + local.candidateType + ' ' + (local.relayProtocol || '') : '';
})()`

// signInBrowserAt signs username in on the browser of ctx.
func signInBrowserAt(t *testing.T, ctx context.Context, gw *testkit.Gateway, username string) {
	t.Helper()
	step(t, ctx, "sign in as "+username,
		chromedp.Navigate(gw.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), username),
		chromedp.SendKeys(chromedp.CSS(`#password`), testkit.DemoPassword),
		chromedp.SendKeys(chromedp.CSS(`#otp`), testkit.DemoOTP),
		chromedp.Submit(chromedp.CSS(`#password`)),
		chromedp.WaitVisible(chromedp.CSS(`p.signed-in`)),
	)
}

// urlPort is the port of a test server's URL.
func urlPort(t *testing.T, raw string) int {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	p, err := strconv.Atoi(u.Port())
	require.NoError(t, err)
	return p
}

// netLesson is a one-to-one lesson whose pupil's Chromium runs in a
// network namespace: the gateway's media server listens on the veth pair's
// address (its page and the IdP are relayed on the namespace's loopback).
type netLesson struct {
	ns                 *testkit.NetNS
	gw                 *testkit.Gateway
	teacher, pupil     context.Context
	teacherID, pupilID string
}

// netSteps run at points of startNetLesson, when set: beforeOpen after the
// pupil signed in and before their browser opens the room, beforeAdmit
// before the teacher admits them (e.g. to cut the pupil's network).
type netSteps struct {
	beforeOpen  func()
	beforeAdmit func(l *netLesson)
	pupilFlags  []chromedp.ExecAllocatorOption // extra switches for the pupil's Chromium
}

// startNetLesson opens the room; the teacher (outside the namespace) and
// the pupil (inside) open it, and the teacher admits the pupil, who
// acknowledges the recording notice.
func startNetLesson(t *testing.T, ns *testkit.NetNS, sfuCfg func(*sfu.Config), steps netSteps) *netLesson {
	t.Helper()
	s3 := testkit.StartS3(t)
	clock := testkit.NewClock(schoolDay)
	gw := testkit.StartGateway(t, testkit.GatewayOptions{Now: clock.Now, S3: s3, SFU: func(c *sfu.Config) {
		c.ListenIP, c.TCP, c.AllowPrivate = ns.HostIP.String(), true, true
		if sfuCfg != nil {
			sfuCfg(c)
		}
	}})
	ns.ForwardLoopback(urlPort(t, gw.URL), urlPort(t, gw.IdPURL))
	sc := &school{gw: gw, clock: clock, people: map[string]*testkit.APIClient{}}
	for _, u := range []string{"teacher", "head"} {
		sc.people[u] = testkit.APILogin(t, gw, u)
	}
	id := liveSession(t, sc, onePupil) // one pupil: recorded one-to-one (R5)
	roomURL := gw.URL + "/rooms/" + id
	l := &netLesson{ns: ns, gw: gw}
	l.teacher = signInBrowser(t, gw, "teacher")
	step(t, l.teacher, "teacher: #lobby", chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#lobby`)))
	l.pupil = testkit.BrowserIn(t, ns, steps.pupilFlags...)
	signInBrowserAt(t, l.pupil, gw, "pupil")
	if steps.beforeOpen != nil {
		steps.beforeOpen()
	}
	step(t, l.pupil, "pupil: #banner", chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#banner`)))
	l.pupilID = youID(t, l.pupil)
	if steps.beforeAdmit != nil {
		steps.beforeAdmit(l)
	}
	waitLobby(t, l.teacher, l.pupilID)
	click(t, l.teacher, `#lobby-list li[data-participant="`+l.pupilID+`"] button.admit`)
	step(t, l.pupil, "pupil: #ack-recording", chromedp.WaitVisible(chromedp.CSS(`#recording-notice`)), chromedp.Click(chromedp.CSS(`#ack-recording`)))
	l.teacherID = youID(t, l.teacher)
	return l
}

// TestBrowserICETCPWhenUDPBlocked: a pupil's Chromium in a namespace whose
// UDP is dropped (nftables) joins a one-to-one lesson with the teacher's
// Chromium; media flows both ways over the SFU's ICE-TCP candidate, and the
// SFU's own writer sends all of it (chaperone_forwarded_via_pion_total
// stays 0).
func TestBrowserICETCPWhenUDPBlocked(t *testing.T) {
	t.Parallel()
	ns := testkit.NewNetNS(t)
	ns.DropUDP()
	l := startNetLesson(t, ns, nil, netSteps{beforeAdmit: func(l *netLesson) {
		// The pupil's check in the lobby already says how media will go.
		waitEval(t, l.pupil, "the lobby check connects over TCP", `window.chaperoneRoom.check.network + ' ' + window.chaperoneRoom.check.transport`, "ok tcp")
		require.Contains(t, text(t, l.pupil, `#check-network`), "Your connection to the lesson works (a connection over TCP)")
	}})
	waitInbound(t, l.pupil, "pupil (UDP blocked)", l.teacherID)
	waitInbound(t, l.teacher, "teacher", l.pupilID)
	for _, pc := range []string{"up", "down"} {
		// Chromium's active TCP candidate is learned by the SFU, and
		// reported by Chromium, as peer-reflexive.
		require.Regexp(t, `^tcp (host|prflx) $`, evalAwait(t, l.pupil, fmt.Sprintf(selectedPairJS, jsString(pc))), "the pupil's %s connection is on TCP", pc)
	}
	require.Zero(t, l.gw.SFU.ViaPion(), "nothing forwarded through pion's SRTP writer")
}

// evalAwait evaluates a script that returns a promise of a string.
func evalAwait(t *testing.T, ctx context.Context, js string) string {
	t.Helper()
	ectx, cancel := context.WithTimeout(ctx, evalTimeout)
	defer cancel()
	s, err := chromedp.Run(ectx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		fail(t, ctx, "evaluate: %v", err)
	}
	return s
}

// TestBrowserNetworkCutICERestart: a pupil's Chromium in a namespace loses
// its network for 10 s mid-lesson (nftables drops all it sends; its page's
// WebSocket, relayed on the namespace's loopback, stays up). The page
// restarts ICE; the teacher sees the pupil reconnecting meanwhile; once the
// network is back media flows both ways again on the same connections (no
// new connections, no re-admission).
func TestBrowserNetworkCutICERestart(t *testing.T) {
	t.Parallel()
	ns := testkit.NewNetNS(t)
	l := startNetLesson(t, ns, nil, netSteps{})
	waitInbound(t, l.pupil, "pupil", l.teacherID)
	waitInbound(t, l.teacher, "teacher", l.pupilID)
	evalString(t, l.pupil, `(window.__pcsBefore = Object.assign({}, window.chaperoneRoom.pcs), 'ok')`)

	reconnectingJS := `String(!!document.querySelector('#people li[data-participant="` + l.pupilID + `"] .reconnecting'))`
	restore := ns.Cut()
	cutAt := time.Now()
	waitUntil(t, l.teacher, "the teacher sees the pupil reconnecting", 10*time.Second, func(c *assert.CollectT) {
		s, err := evalE(l.teacher, reconnectingJS)
		assert.NoError(c, err)
		assert.Equal(c, "true", s)
	})
	time.Sleep(time.Until(cutAt.Add(10 * time.Second)))
	restore()

	waitInbound(t, l.pupil, "pupil, after the cut", l.teacherID)
	waitInbound(t, l.teacher, "teacher, after the cut", l.pupilID)
	t.Logf("pupil's page after the cut: %s", evalString(t, l.pupil, `JSON.stringify({up: chaperoneRoom.pcs.up.connectionState, down: chaperoneRoom.pcs.down.connectionState, restarts: chaperoneRoom.iceRestarts, same: chaperoneRoom.pcs.down === window.__pcsBefore.down})`))
	waitUntil(t, l.teacher, "the teacher sees the pupil back", 10*time.Second, func(c *assert.CollectT) {
		s, err := evalE(l.teacher, reconnectingJS)
		assert.NoError(c, err)
		assert.Equal(c, "false", s)
	})
	require.Equal(t, "true", evalString(t, l.pupil, `String(window.chaperoneRoom.pcs.up === window.__pcsBefore.up && window.chaperoneRoom.pcs.down === window.__pcsBefore.down)`),
		"the same connections: ICE restarted, no full reconnect")
	require.Zero(t, l.gw.SFU.ViaPion())
}

// TestBrowserTURNOverTCPOnly: a pupil's Chromium in a namespace that lets
// through nothing but TCP to the gateway's TURN port joins through the
// embedded relay with the credentials its welcome carried; media flows both
// ways, the SFU's own writer sends it (to the relay), and the relay refused
// nothing.
func TestBrowserTURNOverTCPOnly(t *testing.T) {
	t.Parallel()
	ns := testkit.NewNetNS(t)
	l, err := net.ListenPacket("udp4", net.JoinHostPort(ns.HostIP.String(), "0"))
	require.NoError(t, err)
	turnPort := l.LocalAddr().(*net.UDPAddr).Port
	require.NoError(t, l.Close())
	ns.OnlyTCPTo(ns.HostIP, turnPort)
	lesson := startNetLesson(t, ns, func(c *sfu.Config) {
		c.TCP = false // the relay is the only way in
		c.TURN = &sfu.TURNConfig{Embedded: true, ListenIP: ns.HostIP.String(), Port: turnPort, RelayIP: ns.HostIP.String(), Secret: "browser-turn-test-secret"}
	}, netSteps{})
	waitInbound(t, lesson.pupil, "pupil (TURN over TCP only)", lesson.teacherID)
	waitInbound(t, lesson.teacher, "teacher", lesson.pupilID)
	require.Equal(t, "ok relay", evalString(t, lesson.pupil, `window.chaperoneRoom.check.network + ' ' + window.chaperoneRoom.check.transport`), "the check (the lobby's, or the lesson's connection if that came first) says the relay")
	waitText(t, lesson.pupil, "the pupil's page says it goes through the relay", `#connection-info`, "Connected: the school's relay.")
	for _, pc := range []string{"up", "down"} {
		require.Regexp(t, `^udp relay tcp$`, evalAwait(t, lesson.pupil, fmt.Sprintf(selectedPairJS, jsString(pc))), "the pupil's %s connection goes through the relay over TCP", pc)
	}
	require.Zero(t, lesson.gw.SFU.ViaPion(), "nothing forwarded through pion's SRTP writer")
	require.Zero(t, lesson.gw.SFU.TURNRefused(), "the relay refused nothing it was asked")
}

// TestBrowserNetworkBlockedMessage: a pupil whose network lets nothing
// through to the media server (all but its page's own connection dropped)
// is admitted; instead of black tiles the page says in plain words that
// the network is blocking video lessons. Once the network lets media
// through, the message goes and the lesson's media arrives.
func TestBrowserNetworkBlockedMessage(t *testing.T) {
	t.Parallel()
	ns := testkit.NewNetNS(t)
	var restore func()
	l := startNetLesson(t, ns, nil, netSteps{beforeAdmit: func(*netLesson) { restore = ns.Cut() }})
	step(t, l.pupil, "pupil: #network-message", chromedp.WaitVisible(chromedp.CSS(`#network-message`)))
	require.Contains(t, text(t, l.pupil, `#network-message`), "Your network is blocking video lessons. Ask an adult")
	testkit.Screenshot(t, l.pupil, "network-blocked")

	restore()
	waitInbound(t, l.pupil, "pupil, network back", l.teacherID)
	step(t, l.pupil, "pupil: #network-message goes", chromedp.WaitNotVisible(chromedp.CSS(`#network-message`)))
}

// TestBrowserLobbyCheckBlocked: a pupil whose network lets nothing through
// to the media server opens the room and, still waiting in the lobby, is
// told in plain words that the network is blocking video lessons (the
// page's connection check, before the teacher admits anyone). Once the
// network lets media through, the check passes by itself while the pupil
// waits and the message goes; admitted, the pupil's media flows.
func TestBrowserLobbyCheckBlocked(t *testing.T) {
	t.Parallel()
	ns := testkit.NewNetNS(t)
	var restore func()
	l := startNetLesson(t, ns, nil, netSteps{
		beforeOpen: func() { restore = ns.Cut() },
		beforeAdmit: func(l *netLesson) {
			step(t, l.pupil, "pupil in the lobby: #network-message", chromedp.WaitVisible(chromedp.CSS(`#network-message`)))
			require.Contains(t, text(t, l.pupil, `#network-message`), "Your network is blocking video lessons. Ask an adult")
			require.Equal(t, "waiting", evalString(t, l.pupil, `document.getElementById('room').dataset.phase`))
			require.Equal(t, "blocked", evalString(t, l.pupil, `document.getElementById('check-network').dataset.state`))
			testkit.Screenshot(t, l.pupil, "lobby-network-blocked")
			testkit.Axe(t, l.pupil, "pupil-lobby-network-blocked")
			restore()
			waitUntil(t, l.pupil, "the check passes once the network is back", 40*time.Second, func(c *assert.CollectT) {
				s, err := evalE(l.pupil, `window.chaperoneRoom.check.network`)
				assert.NoError(c, err)
				assert.Equal(c, "ok", s)
			})
			step(t, l.pupil, "pupil: #network-message goes", chromedp.WaitNotVisible(chromedp.CSS(`#network-message`)))
		},
	})
	waitInbound(t, l.pupil, "pupil", l.teacherID)
	waitInbound(t, l.teacher, "teacher", l.pupilID)
}

// TestBrowserTURNOverTLSOnly: a pupil's Chromium in a namespace that lets
// through nothing but TCP to the relay's TLS port (the only way out of
// many filtered networks is TLS to 443) joins through the embedded relay
// over TLS: its selected pairs are relayed over TLS, and media flows both
// ways. The relay's certificate is self-signed; the pupil's Chromium trusts
// exactly its key (ignore-certificate-errors-spki-list), as a school's
// devices trust the school's certificate.
func TestBrowserTURNOverTLSOnly(t *testing.T) {
	t.Parallel()
	ns := testkit.NewNetNS(t)
	cert, spki := testkit.SelfSignedCert(t, net.IP(ns.HostIP.AsSlice()))
	var ports []int
	for range 2 {
		l, err := net.Listen("tcp4", net.JoinHostPort(ns.HostIP.String(), "0"))
		require.NoError(t, err)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
		require.NoError(t, l.Close())
	}
	turnPort, tlsPort := ports[0], ports[1]
	ns.OnlyTCPTo(ns.HostIP, tlsPort)
	lesson := startNetLesson(t, ns, func(c *sfu.Config) {
		c.TCP = false // the relay is the only way in
		c.TURN = &sfu.TURNConfig{Embedded: true, ListenIP: ns.HostIP.String(), Port: turnPort, TLSPort: tlsPort, Cert: &cert,
			RelayIP: ns.HostIP.String(), Secret: "browser-turn-test-secret"}
	}, netSteps{pupilFlags: []chromedp.ExecAllocatorOption{chromedp.Flag("ignore-certificate-errors-spki-list", spki)}})
	waitInbound(t, lesson.pupil, "pupil (TURN over TLS only)", lesson.teacherID)
	waitInbound(t, lesson.teacher, "teacher", lesson.pupilID)
	for _, pc := range []string{"up", "down"} {
		require.Regexp(t, `^udp relay tls$`, evalAwait(t, lesson.pupil, fmt.Sprintf(selectedPairJS, jsString(pc))), "the pupil's %s connection goes through the relay over TLS", pc)
	}
	require.Zero(t, lesson.gw.SFU.TURNRefused(), "the relay refused nothing")
}
