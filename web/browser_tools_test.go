package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/sfu"
	"github.com/chaperone-edu/chaperone/sfu/sfutest"
)

// screenInboundJS sums the bytes the page's down connection received on
// screen-share video tracks (the SFU names them "<id>-screen-<n>").
const screenInboundJS = `(async () => {
  const pc = window.chaperoneRoom && window.chaperoneRoom.pcs.down;
  let n = 0;
  if (!pc) return n;
  (await pc.getStats()).forEach(r => {
    if (r.type === 'inbound-rtp' && r.kind === 'video' && (r.trackIdentifier || '').includes('-screen-')) n += r.bytesReceived || 0;
  });
  return n;
})()`

func screenInboundE(ctx context.Context) (float64, error) {
	ectx, cancel := context.WithTimeout(ctx, evalTimeout)
	defer cancel()
	n, err := chromedp.Run(ectx, chromedp.Evaluate[float64](screenInboundJS, chromedp.EvalAwaitPromise))
	if err != nil {
		return 0, fmt.Errorf("screen inbound stats: %w", err)
	}
	return n, nil
}

// layoutCheckJS lists the visible controls (buttons, inputs, links styled as
// buttons) and tile names of the room page, each clipped by any scrolling
// ancestor, and reports pairs that overlap, buttons smaller than a finger
// (44 CSS px), and the names shown on tiles.
const layoutCheckJS = `(() => {
  const clip = (e, r) => {
    let x1 = r.left, y1 = r.top, x2 = r.right, y2 = r.bottom;
    for (let a = e.parentElement; a; a = a.parentElement) {
      const cs = getComputedStyle(a);
      if (cs.overflowX !== 'visible' || cs.overflowY !== 'visible') {
        const b = a.getBoundingClientRect();
        x1 = Math.max(x1, b.left); y1 = Math.max(y1, b.top); x2 = Math.min(x2, b.right); y2 = Math.min(y2, b.bottom);
      }
    }
    return { x1, y1, x2, y2 };
  };
  const label = (e) => (e.id ? '#' + e.id : e.tagName.toLowerCase() + (e.className ? '.' + String(e.className).split(' ').join('.') : '')) +
    ' "' + (e.textContent || e.value || '').trim().slice(0, 40) + '"';
  const items = [];
  document.querySelectorAll('#room button, #room input, #room a.button, #room figcaption, header.top a, header.top button').forEach((e) => {
    if (e.closest('[hidden]')) return;
    const cs = getComputedStyle(e);
    if (cs.visibility === 'hidden' || cs.display === 'none') return;
    const r = clip(e, e.getBoundingClientRect());
    if (r.x2 - r.x1 <= 0 || r.y2 - r.y1 <= 0) return;
    items.push({ e, r });
  });
  const out = { controls: 0, overlaps: [], small: [], names: [] };
  for (let i = 0; i < items.length; i++) {
    const a = items[i];
    if (a.e.tagName === 'FIGCAPTION') out.names.push(a.e.textContent.trim()); else out.controls++;
    if (a.e.tagName === 'BUTTON' && !a.e.classList.contains('link') && (a.r.y2 - a.r.y1 < 44 || a.r.x2 - a.r.x1 < 44)) out.small.push(label(a.e));
    for (let j = i + 1; j < items.length; j++) {
      const b = items[j];
      if (a.e.contains(b.e) || b.e.contains(a.e)) continue;
      const w = Math.min(a.r.x2, b.r.x2) - Math.max(a.r.x1, b.r.x1);
      const h = Math.min(a.r.y2, b.r.y2) - Math.max(a.r.y1, b.r.y1);
      if (w > 0.5 && h > 0.5) out.overlaps.push(label(a.e) + ' overlaps ' + label(b.e));
    }
  }
  return JSON.stringify(out);
})()`

type layoutReport struct {
	Controls int      `json:"controls"`
	Overlaps []string `json:"overlaps"`
	Small    []string `json:"small"`
	Names    []string `json:"names"`
}

// checkLayout sets the page's viewport to w×h, saves a screenshot as a test
// artefact, and checks that no control overlaps another, that every button
// is big enough to tap, and that the given names are shown on tiles.
func checkLayout(t *testing.T, ctx context.Context, who string, w, h int64, names ...string) {
	t.Helper()
	size := who + "-" + itoa(int(w)) + "x" + itoa(int(h))
	step(t, ctx, size+": set the viewport", chromedp.EmulateViewport(w, h))
	var rep layoutReport
	waitUntil(t, ctx, size+": every name on a tile", 10*time.Second, func(c *assert.CollectT) {
		s, err := evalE(ctx, layoutCheckJS)
		if !assert.NoError(c, err) {
			return
		}
		var r layoutReport
		if !assert.NoError(c, json.Unmarshal([]byte(s), &r)) {
			return
		}
		for _, n := range names {
			assert.True(c, containsPrefix(r.Names, n), "no tile named %q; tiles: %q", n, r.Names)
		}
		rep = r
	})
	testkit.Screenshot(t, ctx, size)
	t.Logf("%s: %d controls, tile names %q", size, rep.Controls, rep.Names)
	require.Greater(t, rep.Controls, 5, size)
	require.Empty(t, rep.Overlaps, "%s: controls overlap", size)
	require.Empty(t, rep.Small, "%s: buttons too small to tap", size)
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// roomWithFour: the teacher and Amelia in browsers, Zoë and Oliver as pion
// clients. Amelia and Zoë are on the class list and come in with "Admit
// all"; Oliver is not, stays and is marked, and the teacher admits him.
func roomWithFour(t *testing.T) (sc *school, id string, teacher, amelia context.Context, zMedia *sfutest.Client, ids map[string]string) {
	t.Helper()
	sc = newSchool(t, "teacher", "head", "pupil2", "pupil3")
	id = liveSession(t, sc, nil)
	roomURL := sc.gw.URL + "/rooms/" + id
	teacher = signInBrowser(t, sc.gw, "teacher")
	step(t, teacher, "the teacher opens the room", chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#lobby`)))
	amelia = signInBrowser(t, sc.gw, "pupil")
	step(t, amelia, "Amelia opens the room", chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#banner`)))
	zoe, zMedia := joinRoom(t, sc, "pupil2", id)
	oliver, oMedia := joinRoom(t, sc, "pupil3", id)
	ids = map[string]string{"teacher": youID(t, teacher), "amelia": youID(t, amelia), "zoe": participantID(zoe), "oliver": participantID(oliver)}

	waitLobby(t, teacher, ids["amelia"], ids["zoe"], ids["oliver"])
	waitUntil(t, teacher, "Admit all offers the 2 pupils on the class list", 10*time.Second, func(c *assert.CollectT) {
		s, err := textE(teacher, `#admit-all`)
		assert.NoError(c, err)
		assert.Contains(c, s, "Admit all 2 pupils on the class list")
	})
	click(t, teacher, `#admit-all`)
	zoe.WaitState(map[string]any{"phase": "admitted"})
	require.NoError(t, zMedia.Start())
	waitUntil(t, teacher, "Oliver stays in the lobby, marked", 10*time.Second, func(c *assert.CollectT) {
		n, err := evalE(teacher, `String(document.querySelectorAll('#lobby-list li').length)`)
		assert.NoError(c, err)
		assert.Equal(c, "1", n)
		s, err := textE(teacher, `#lobby-list`)
		assert.NoError(c, err)
		assert.Contains(c, s, "NOT on the class list")
	})
	click(t, teacher, `#lobby-list li[data-participant="`+ids["oliver"]+`"] button.admit`)
	oliver.WaitState(map[string]any{"phase": "admitted"})
	require.NoError(t, oMedia.Start())
	waitInbound(t, amelia, "Amelia", ids["teacher"])
	waitInbound(t, teacher, "teacher", ids["amelia"])
	return sc, id, teacher, amelia, zMedia, ids
}

// waitLobby waits until the staff page ctx lists every one of ids in the lobby.
func waitLobby(t *testing.T, ctx context.Context, ids ...string) {
	t.Helper()
	waitUntil(t, ctx, "the lobby lists everyone waiting", 15*time.Second, func(c *assert.CollectT) {
		for _, id := range ids {
			n, err := evalE(ctx, `String(document.querySelectorAll('#lobby-list li[data-participant="`+id+`"] button.admit').length)`)
			assert.NoError(c, err)
			assert.Equal(c, "1", n, "%s in the lobby", id)
		}
	})
}

// mainCaption is the caption of the tile in the page's main view.
const mainCaption = `(document.querySelector('#main-view figcaption') || {}).textContent || ''`

// waitEval waits until js evaluates to want in ctx's page.
func waitEval(t *testing.T, ctx context.Context, what, js, want string) {
	t.Helper()
	waitUntil(t, ctx, what, 10*time.Second, func(c *assert.CollectT) {
		s, err := evalE(ctx, js)
		assert.NoError(c, err)
		assert.Equal(c, want, s)
	})
}

// TestBrowserScreenShare: in a room of four, the teacher shares a screen
// (getDisplayMedia, a fake screen in the test browser); the pupil's browser
// receives the screen track (getStats bytes rising) and shows it large,
// labelled "Sarah Whitfield — screen"; a pion pupil receives it too.
// Screenshots at 1024×768 and 1366×768 of both pages (and the pupil's at
// 810×1080, an upright iPad) are kept as test artefacts, with no control
// overlapping another, every button big enough to tap and every name on a
// tile. Staff put a participant in the spotlight for everyone.
// Stopping the share takes the screen away.
func TestBrowserScreenShare(t *testing.T) {
	t.Parallel()
	sc, id, teacher, amelia, zMedia, ids := roomWithFour(t)
	n, err := screenInboundE(amelia)
	require.NoError(t, err)
	require.Zero(t, n)

	step(t, teacher, "the teacher shares a screen", chromedp.WaitVisible(chromedp.CSS(`#share-screen`)), chromedp.Click(chromedp.CSS(`#share-screen`)))
	var first float64
	waitUntil(t, amelia, "the pupil's browser receives the screen", 20*time.Second, func(c *assert.CollectT) {
		n, err := screenInboundE(amelia)
		assert.NoError(c, err)
		assert.Positive(c, n)
		first = n
	})
	waitUntil(t, amelia, "screen bytes keep rising", 10*time.Second, func(c *assert.CollectT) {
		n, err := screenInboundE(amelia)
		assert.NoError(c, err)
		assert.Greater(c, n, first)
	})
	waitUntil(t, amelia, "a pion pupil receives the screen too", 10*time.Second, func(c *assert.CollectT) {
		assert.Positive(c, zMedia.Received(sfu.ScreenStreamID(ids["teacher"]), "video").Packets)
	})
	ts, _, _ := sc.gw.Rooms.MediaStats(id)
	require.Positive(t, trackIn(ts, ids["teacher"], "screen"), "the SFU receives the teacher's screen as a screen track")
	t.Logf("teacher's tracks at the SFU: camera %d, screen %d, screen audio %d packets", trackIn(ts, ids["teacher"], "video"),
		trackIn(ts, ids["teacher"], "screen"), trackIn(ts, ids["teacher"], "screen_audio"))
	waitEval(t, amelia, "the screen is the pupil's main view", mainCaption, "Sarah Whitfield — screen")
	waitEval(t, amelia, "the pupil's page plays the screen",
		`(() => { const v = document.querySelector('#main-view video'); return String(!!v && v.videoWidth > 0 && !v.paused && v.currentTime > 1); })()`, "true")

	// Layout with four participants and a shared screen.
	for _, size := range [][2]int64{{1024, 768}, {1366, 768}} {
		checkLayout(t, amelia, "pupil", size[0], size[1], "Sarah Whitfield — screen", "Sarah Whitfield", "Zoë Lefèvre", "Oliver Smith-Baker", "You (Amelia Jones)")
		checkLayout(t, teacher, "teacher", size[0], size[1], "Your screen", "Amelia Jones", "Zoë Lefèvre", "Oliver Smith-Baker", "You (Sarah Whitfield)")
	}
	// A 10.2-inch iPad held upright: the side panel goes under the video.
	checkLayout(t, amelia, "pupil", 810, 1080, "Sarah Whitfield — screen", "Sarah Whitfield", "Zoë Lefèvre", "Oliver Smith-Baker", "You (Amelia Jones)")

	// Spotlight: the teacher pins Zoë; she becomes everyone's main view,
	// over the shared screen, until the spotlight is removed. #people is
	// rebuilt on each roster message: click inside the page (click).
	zoeSpot := `#people li[data-participant="` + ids["zoe"] + `"] button.spotlight`
	click(t, teacher, zoeSpot)
	waitEval(t, amelia, "spotlight on Zoë", mainCaption, "Zoë Lefèvre")
	require.Equal(t, "true", evalString(t, amelia, `String(document.querySelector('#main-view .tile').classList.contains('spotlit'))`))
	waitEval(t, teacher, "the teacher's button offers to remove it", `(document.querySelector('`+zoeSpot+`') || {}).textContent || ''`, "Remove spotlight")
	click(t, teacher, zoeSpot)
	waitEval(t, amelia, "spotlight removed", mainCaption, "Sarah Whitfield — screen")

	// Stopping: the screen goes from the pupil's page.
	step(t, teacher, "the teacher stops sharing", chromedp.Click(chromedp.CSS(`#share-screen`)))
	waitEval(t, amelia, "the screen tile goes", `String(document.querySelectorAll('.tile.screen').length)`, "0")
}

// audioEnergyJS sums the audio energy (getStats totalAudioEnergy: sound,
// not just packets) the page's down connection received from PUBLISHER.
const audioEnergyJS = `(async () => {
  const pc = window.chaperoneRoom && window.chaperoneRoom.pcs.down;
  let e = 0;
  if (!pc) return e;
  (await pc.getStats()).forEach(r => {
    if (r.type === 'inbound-rtp' && r.kind === 'audio' && (r.trackIdentifier || '').split('-')[0] === 'PUBLISHER') e += r.totalAudioEnergy || 0;
  });
  return e;
})()`

func audioEnergyE(ctx context.Context, publisher string) (float64, error) {
	ectx, cancel := context.WithTimeout(ctx, evalTimeout)
	defer cancel()
	e, err := chromedp.Run(ectx, chromedp.Evaluate[float64](strings.ReplaceAll(audioEnergyJS, "PUBLISHER", publisher), chromedp.EvalAwaitPromise))
	if err != nil {
		return 0, fmt.Errorf("audio energy stats: %w", err)
	}
	return e, nil
}

// silentEnergy bounds the audio energy a disabled microphone's silence
// adds at the receiver in a few seconds (measured: about 1e-9; Chromium's
// fake microphone beeps and adds far more, about 1e-3 a second).
const silentEnergy = 1e-6

// micOnJS says whether the page sends an enabled microphone track.
const micOnJS = `String(!!window.chaperoneRoom.pcs.up && window.chaperoneRoom.pcs.up.getSenders().some(s => s.track && s.track.kind === 'audio' && s.track.enabled))`

// camOnJS says whether the page sends an enabled camera track.
const camOnJS = `String(!!window.chaperoneRoom.pcs.up && window.chaperoneRoom.pcs.up.getSenders().some(s => s.track && s.track.kind === 'video' && s.track.enabled))`

// mutedMessageJS is the text of the pupil's mute message, or "" while hidden.
const mutedMessageJS = `document.getElementById('muted-message').hidden ? '' : document.getElementById('muted-message').textContent`

// TestBrowserRaiseHand: the teacher switches "pupils may unmute themselves"
// off; the pupil is told "Your teacher has muted you" and her audio stops
// at the SFU (its forwarded-packet counter stands still); she raises her
// hand, the teacher sees it and presses "Let speak". Her microphone does
// not come on by itself: she is told she may talk now and the sound does
// not reach the teacher until she presses "Unmute microphone"; then it
// does (the teacher's getStats audio energy rises). Likewise her camera,
// stopped and then allowed by staff, stays off until she starts it.
func TestBrowserRaiseHand(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head", "pupil2")
	id := liveSession(t, sc, nil)
	roomURL := sc.gw.URL + "/rooms/" + id
	teacher := signInBrowser(t, sc.gw, "teacher")
	step(t, teacher, "the teacher opens the room", chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#lobby`)))
	amelia := signInBrowser(t, sc.gw, "pupil")
	step(t, amelia, "Amelia opens the room", chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#banner`)))
	zoe, zMedia := joinRoom(t, sc, "pupil2", id) // a second pupil: no one-to-one recording needed
	ameliaID := youID(t, amelia)
	waitLobby(t, teacher, ameliaID, participantID(zoe))
	click(t, teacher, `#admit-all`)
	zoe.WaitState(map[string]any{"phase": "admitted"})
	require.NoError(t, zMedia.Start())
	waitInbound(t, teacher, "teacher", ameliaID)

	forwarded := func() uint64 { // the SFU's count of Amelia's audio packets it forwarded
		_, es, _ := sc.gw.Rooms.MediaStats(id)
		return edgeFrom(es, ameliaID, "audio")
	}
	click(t, teacher, `#pupils-unmute`)
	waitUntil(t, amelia, "the pupil is told she is muted", 10*time.Second, func(c *assert.CollectT) {
		s, err := evalE(amelia, mutedMessageJS)
		assert.NoError(c, err)
		assert.Contains(c, s, "Your teacher has muted you")
	})
	require.Contains(t, text(t, teacher, `#pupils-unmute`), "off")
	waitUntil(t, amelia, "the SFU forwards none of the muted pupil's audio (counter still for 1 s)", 10*time.Second, func(c *assert.CollectT) {
		a0 := forwarded()
		time.Sleep(time.Second)
		assert.Equal(c, a0, forwarded())
	})
	require.Equal(t, "false", evalString(t, amelia, micOnJS), "the muted pupil's page sends no sound")

	step(t, amelia, "Amelia raises her hand", chromedp.Click(chromedp.CSS(`#raise-hand`)))
	hand := `#hands-list li[data-participant="` + ameliaID + `"]`
	step(t, teacher, "the teacher sees the hand", chromedp.WaitVisible(chromedp.CSS(hand)))
	require.Contains(t, text(t, teacher, hand), "Amelia Jones")
	waitUntil(t, teacher, "the teacher's list of people shows the hand", 10*time.Second, func(c *assert.CollectT) {
		s, err := textE(teacher, `#people li[data-participant="`+ameliaID+`"]`)
		assert.NoError(c, err)
		assert.Contains(c, s, "Hand up")
	})
	require.Equal(t, "Lower hand", text(t, amelia, `#raise-hand`))
	testkit.Screenshot(t, teacher, "hand-up")

	click(t, teacher, hand+` button.let-speak`)
	waitUntil(t, amelia, "the pupil is told she may talk, and the hand is lowered", 10*time.Second, func(c *assert.CollectT) {
		s, err := evalE(amelia, mutedMessageJS)
		assert.NoError(c, err)
		assert.Contains(c, s, "Your teacher says you can talk now. Press “Unmute microphone” to talk.")
		n, err := evalE(teacher, `String(document.querySelectorAll('#hands-list li').length)`)
		assert.NoError(c, err)
		assert.Equal(c, "0", n)
	})
	testkit.Screenshot(t, amelia, "may-talk")
	// Her microphone stays off: no sound reaches the teacher, though the
	// SFU would now forward it.
	e0, err := audioEnergyE(teacher, ameliaID)
	require.NoError(t, err)
	for range 4 {
		time.Sleep(500 * time.Millisecond)
		require.Equal(t, "false", evalString(t, amelia, micOnJS), "the pupil's microphone does not come on by itself")
	}
	e1, err := audioEnergyE(teacher, ameliaID)
	require.NoError(t, err)
	require.Less(t, e1-e0, silentEnergy, "no sound from the pupil reaches the teacher before she unmutes")
	require.Equal(t, "Unmute microphone", text(t, amelia, `#toggle-mic`))

	step(t, amelia, "Amelia presses Unmute microphone", chromedp.Click(chromedp.CSS(`#toggle-mic`)))
	require.Equal(t, "true", evalString(t, amelia, micOnJS), "her press switches the microphone on")
	waitUntil(t, teacher, "the pupil's sound reaches the teacher after she unmutes", 15*time.Second, func(c *assert.CollectT) {
		e, err := audioEnergyE(teacher, ameliaID)
		assert.NoError(c, err)
		assert.Greater(c, e-e1, 100*silentEnergy)
	})
	waitEval(t, amelia, "the message goes once she has unmuted", `String(document.getElementById('muted-message').hidden)`, "true")
	e2, err := audioEnergyE(teacher, ameliaID)
	require.NoError(t, err)
	t.Logf("audio energy from the pupil at the teacher: +%.2g in 2 s allowed but not unmuted, +%.2g once she unmuted", e1-e0, e2-e1)

	// The camera likewise: staff stop it, then allow it; it stays off
	// until she presses "Start camera" herself.
	camButton := `#people li[data-participant="` + ameliaID + `"] button.mute-video`
	click(t, teacher, camButton)
	waitEval(t, amelia, "staff stop her camera", camOnJS, "false")
	waitEval(t, teacher, "the teacher's button now allows it", `(document.querySelector('`+camButton+`') || {}).textContent || ''`, "Allow camera")
	click(t, teacher, camButton)
	waitUntil(t, amelia, "the pupil is told she may use her camera", 10*time.Second, func(c *assert.CollectT) {
		s, err := evalE(amelia, mutedMessageJS)
		assert.NoError(c, err)
		assert.Contains(c, s, "Your teacher says you can use your camera now. Press “Start camera” to turn it on.")
	})
	for range 4 {
		time.Sleep(500 * time.Millisecond)
		require.Equal(t, "false", evalString(t, amelia, camOnJS), "the pupil's camera does not come on by itself")
	}
	require.Equal(t, "Start camera", text(t, amelia, `#toggle-cam`))
	step(t, amelia, "Amelia presses Start camera", chromedp.Click(chromedp.CSS(`#toggle-cam`)))
	require.Equal(t, "true", evalString(t, amelia, camOnJS), "her press switches the camera on")

	// Chromium negotiated AES-GCM, so everything the teacher heard was
	// encrypted by the SFU's own writer, none by pion's.
	status, body := get(t, testkit.CookieClient(t), sc.gw.MetricsURL)
	require.Equal(t, 200, status)
	require.Contains(t, body, "chaperone_forwarded_via_pion_total 0\n")
	require.Regexp(t, `chaperone_forwarded_packets_total [1-9]`, body)
}

// TestBrowserStreamedPupilSendsNothing: in a streamed lesson the pupil's
// page never asks for the camera or microphone (so the camera light stays
// off), opens no up connection and sends no packet; the SFU has no track of
// hers; she is told "You can watch and listen. Others can't see or hear
// you." and receives the teacher.
func TestBrowserStreamedPupilSendsNothing(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head", "pupil2")
	id := liveSession(t, sc, map[string]any{"kind": "streamed"})
	roomURL := sc.gw.URL + "/rooms/" + id
	teacher := signInBrowser(t, sc.gw, "teacher")
	step(t, teacher, "the teacher opens the room", chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#lobby`)))
	amelia := signInBrowser(t, sc.gw, "pupil")
	step(t, amelia, "Amelia opens the room", chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#banner`)))
	zoe, zMedia := joinRoom(t, sc, "pupil2", id)
	ameliaID, teacherID := youID(t, amelia), youID(t, teacher)
	waitLobby(t, teacher, ameliaID, participantID(zoe))
	click(t, teacher, `#admit-all`)
	zoe.WaitState(map[string]any{"phase": "admitted"})
	require.NoError(t, zMedia.Start())
	waitUntil(t, amelia, "the pupil receives the teacher", 20*time.Second, func(c *assert.CollectT) {
		m, err := inboundE(amelia)
		assert.NoError(c, err)
		assert.Positive(c, m[teacherID+"/video"])
		assert.Positive(c, m[teacherID+"/audio"])
	})
	waitUntil(t, amelia, "the pupil is told she watches only", 10*time.Second, func(c *assert.CollectT) {
		s, err := textE(amelia, `#media-message`)
		assert.NoError(c, err)
		assert.Equal(c, "You can watch and listen. Others can't see or hear you.", s)
		b, err := textE(amelia, `#banner`)
		assert.NoError(c, err)
		assert.Contains(c, b, "Others can't see or hear you.")
	})
	testkit.Screenshot(t, amelia, "streamed-pupil")
	time.Sleep(time.Second) // were she sending, a second of it would show
	require.Equal(t, "0", evalString(t, amelia, `String(window.chaperoneRoom.mediaRequests || 0)`), "getUserMedia was never called")
	require.Equal(t, "true", evalString(t, amelia, `String(window.chaperoneRoom.pcs.up === null)`), "no up connection")
	out, err := chromedp.Run(amelia, chromedp.Evaluate[float64](`(async () => {
  let n = 0;
  for (const pc of [window.chaperoneRoom.pcs.up, window.chaperoneRoom.pcs.down]) {
    if (!pc) continue;
    (await pc.getStats()).forEach(r => { if (r.type === 'outbound-rtp') n += r.packetsSent || 0; });
  }
  return n;
})()`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	require.Zero(t, out, "no outbound RTP packet")
	ts, _, ok := sc.gw.Rooms.MediaStats(id)
	require.True(t, ok)
	for _, tr := range ts {
		require.NotEqual(t, ameliaID, tr.Publisher, "the SFU has no track of the pupil's: %+v", tr)
	}
	require.Equal(t, "true", evalString(t, amelia, `String(document.getElementById('toggle-mic').disabled && document.getElementById('toggle-cam').disabled)`))
}
