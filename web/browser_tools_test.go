package web_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
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

func screenInbound(t *testing.T, ctx context.Context) float64 {
	t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[float64](screenInboundJS, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	return n
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
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(w, h)))
	var rep layoutReport
	require.Eventually(t, func() bool {
		s := evalString(t, ctx, layoutCheckJS)
		require.NoError(t, json.Unmarshal([]byte(s), &rep))
		for _, n := range names {
			if !containsPrefix(rep.Names, n) {
				return false
			}
		}
		return true
	}, 10*time.Second, 200*time.Millisecond, "%s %dx%d: names on tiles %v, want %v", who, w, h, rep.Names, names)
	size := who + "-" + itoa(int(w)) + "x" + itoa(int(h))
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
	require.NoError(t, chromedp.Do(teacher, chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#lobby`))))
	amelia = signInBrowser(t, sc.gw, "pupil")
	require.NoError(t, chromedp.Do(amelia, chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#banner`))))
	zoe, zMedia := joinRoom(t, sc, "pupil2", id)
	oliver, oMedia := joinRoom(t, sc, "pupil3", id)
	ids = map[string]string{"teacher": evalString(t, teacher, `window.chaperoneRoom.you.id`), "amelia": evalString(t, amelia, `window.chaperoneRoom.you.id`),
		"zoe": participantID(zoe), "oliver": participantID(oliver)}

	require.NoError(t, chromedp.Do(teacher, chromedp.WaitVisible(chromedp.CSS(`#admit-all`))))
	require.Contains(t, text(t, teacher, `#admit-all`), "Admit all 2 pupils on the class list")
	require.NoError(t, chromedp.Do(teacher, chromedp.Click(chromedp.CSS(`#admit-all`))))
	zoe.WaitState(map[string]any{"phase": "admitted"})
	require.NoError(t, zMedia.Start())
	require.Eventually(t, func() bool {
		return evalString(t, teacher, `String(document.querySelectorAll('#lobby-list li').length)`) == "1"
	}, 10*time.Second, 100*time.Millisecond, "Oliver stays in the lobby")
	require.Contains(t, text(t, teacher, `#lobby-list`), "NOT on the class list")
	require.NoError(t, chromedp.Do(teacher, chromedp.Click(chromedp.CSS(`#lobby-list li[data-participant="`+ids["oliver"]+`"] button.admit`))))
	oliver.WaitState(map[string]any{"phase": "admitted"})
	require.NoError(t, oMedia.Start())
	waitInbound(t, amelia, "Amelia", ids["teacher"])
	waitInbound(t, teacher, "teacher", ids["amelia"])
	return sc, id, teacher, amelia, zMedia, ids
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
	require.Zero(t, screenInbound(t, amelia))

	require.NoError(t, chromedp.Do(teacher, chromedp.WaitVisible(chromedp.CSS(`#share-screen`)), chromedp.Click(chromedp.CSS(`#share-screen`))))
	var first float64
	require.Eventually(t, func() bool { first = screenInbound(t, amelia); return first > 0 }, 20*time.Second, 200*time.Millisecond,
		"the pupil's browser receives the screen")
	require.Eventually(t, func() bool { return screenInbound(t, amelia) > first }, 10*time.Second, 200*time.Millisecond, "screen bytes keep rising")
	require.Eventually(t, func() bool { return zMedia.Received(sfu.ScreenStreamID(ids["teacher"]), "video").Packets > 0 }, 10*time.Second, 100*time.Millisecond,
		"a pion pupil receives the screen too")
	ts, _, _ := sc.gw.Web.MediaStats(id)
	require.Positive(t, trackIn(ts, ids["teacher"], "screen"), "the SFU receives the teacher's screen as a screen track")
	t.Logf("teacher's tracks at the SFU: camera %d, screen %d, screen audio %d packets", trackIn(ts, ids["teacher"], "video"),
		trackIn(ts, ids["teacher"], "screen"), trackIn(ts, ids["teacher"], "screen_audio"))
	require.Eventually(t, func() bool {
		return strings.Contains(evalString(t, amelia, `(document.querySelector('#main-view figcaption') || {}).textContent || ''`), "Sarah Whitfield — screen")
	}, 10*time.Second, 100*time.Millisecond, "the screen is the pupil's main view")

	require.Eventually(t, func() bool {
		return evalString(t, amelia, `(() => { const v = document.querySelector('#main-view video'); return String(!!v && v.videoWidth > 0 && !v.paused && v.currentTime > 1); })()`) == "true"
	}, 10*time.Second, 100*time.Millisecond, "the pupil's page plays the screen")
	// Layout with four participants and a shared screen.
	for _, size := range [][2]int64{{1024, 768}, {1366, 768}} {
		checkLayout(t, amelia, "pupil", size[0], size[1], "Sarah Whitfield — screen", "Sarah Whitfield", "Zoë Lefèvre", "Oliver Smith-Baker", "You (Amelia Jones)")
		checkLayout(t, teacher, "teacher", size[0], size[1], "Your screen", "Amelia Jones", "Zoë Lefèvre", "Oliver Smith-Baker", "You (Sarah Whitfield)")
	}
	// A 10.2-inch iPad held upright: the side panel goes under the video.
	checkLayout(t, amelia, "pupil", 810, 1080, "Sarah Whitfield — screen", "Sarah Whitfield", "Zoë Lefèvre", "Oliver Smith-Baker", "You (Amelia Jones)")

	// Spotlight: the teacher pins Zoë; she becomes everyone's main view,
	// over the shared screen, until the spotlight is removed.
	mainCaption := `(document.querySelector('#main-view figcaption') || {}).textContent || ''`
	zoeRow := `#people li[data-participant="` + ids["zoe"] + `"] `
	require.NoError(t, chromedp.Do(teacher, chromedp.Click(chromedp.CSS(zoeRow+`button.spotlight`))))
	require.Eventually(t, func() bool { return evalString(t, amelia, mainCaption) == "Zoë Lefèvre" }, 10*time.Second, 100*time.Millisecond, "spotlight on Zoë")
	require.Equal(t, "true", evalString(t, amelia, `String(document.querySelector('#main-view .tile').classList.contains('spotlit'))`))
	require.NoError(t, chromedp.Do(teacher, chromedp.WaitVisible(chromedp.CSS(zoeRow+`button.spotlight`)), chromedp.Click(chromedp.CSS(zoeRow+`button.spotlight`))))
	require.Eventually(t, func() bool { return evalString(t, amelia, mainCaption) == "Sarah Whitfield — screen" }, 10*time.Second, 100*time.Millisecond, "spotlight removed")

	// Stopping: the screen goes from the pupil's page.
	require.NoError(t, chromedp.Do(teacher, chromedp.Click(chromedp.CSS(`#share-screen`))))
	require.Eventually(t, func() bool {
		return evalString(t, amelia, `String(document.querySelectorAll('.tile.screen').length)`) == "0"
	}, 10*time.Second, 100*time.Millisecond, "the screen tile goes")
}

// TestBrowserRaiseHand: the teacher switches "pupils may unmute themselves"
// off; the pupil is told "Your teacher has muted you" and her audio stops
// reaching the teacher; she raises her hand, the teacher sees it and presses
// "Let speak", and her audio reaches the teacher again.
func TestBrowserRaiseHand(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head", "pupil2")
	id := liveSession(t, sc, nil)
	roomURL := sc.gw.URL + "/rooms/" + id
	teacher := signInBrowser(t, sc.gw, "teacher")
	require.NoError(t, chromedp.Do(teacher, chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#lobby`))))
	amelia := signInBrowser(t, sc.gw, "pupil")
	require.NoError(t, chromedp.Do(amelia, chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#banner`))))
	zoe, zMedia := joinRoom(t, sc, "pupil2", id) // a second pupil: no one-to-one recording needed
	ameliaID := evalString(t, amelia, `window.chaperoneRoom.you.id`)
	require.NoError(t, chromedp.Do(teacher, chromedp.WaitVisible(chromedp.CSS(`#admit-all`)), chromedp.Click(chromedp.CSS(`#admit-all`))))
	zoe.WaitState(map[string]any{"phase": "admitted"})
	require.NoError(t, zMedia.Start())
	waitInbound(t, teacher, "teacher", ameliaID)

	require.NoError(t, chromedp.Do(teacher, chromedp.Click(chromedp.CSS(`#pupils-unmute`))))
	require.Eventually(t, func() bool {
		return strings.Contains(evalString(t, amelia, `document.getElementById('muted-message').hidden ? '' : document.getElementById('muted-message').textContent`), "Your teacher has muted you")
	}, 10*time.Second, 100*time.Millisecond, "the pupil is told")
	require.Contains(t, text(t, teacher, `#pupils-unmute`), "off")
	time.Sleep(500 * time.Millisecond)
	a0 := inbound(t, teacher)[ameliaID+"/audio"]
	time.Sleep(time.Second)
	a1 := inbound(t, teacher)[ameliaID+"/audio"]
	require.Equal(t, a0, a1, "the muted pupil's audio does not reach the teacher")

	require.NoError(t, chromedp.Do(amelia, chromedp.Click(chromedp.CSS(`#raise-hand`))))
	hand := `#hands-list li[data-participant="` + ameliaID + `"]`
	require.NoError(t, chromedp.Do(teacher, chromedp.WaitVisible(chromedp.CSS(hand))))
	require.Contains(t, text(t, teacher, hand), "Amelia Jones")
	require.Contains(t, text(t, teacher, `#people li[data-participant="`+ameliaID+`"]`), "Hand up")
	require.Equal(t, "Lower hand", text(t, amelia, `#raise-hand`))
	testkit.Screenshot(t, teacher, "hand-up")

	require.NoError(t, chromedp.Do(teacher, chromedp.Click(chromedp.CSS(hand+` button.let-speak`))))
	var last float64
	require.Eventually(t, func() bool {
		last = inbound(t, teacher)[ameliaID+"/audio"]
		return last > a1
	}, 5*time.Second, 100*time.Millisecond, "the pupil's audio reaches the teacher after 'Let speak'")
	require.Eventually(t, func() bool { return inbound(t, teacher)[ameliaID+"/audio"] > last }, 5*time.Second, 100*time.Millisecond, "and keeps coming")
	require.Eventually(t, func() bool {
		return evalString(t, amelia, `String(document.getElementById('muted-message').hidden)`) == "true" &&
			evalString(t, teacher, `String(document.querySelectorAll('#hands-list li').length)`) == "0"
	}, 5*time.Second, 100*time.Millisecond, "the hand is lowered and the pupil no longer told she is muted")
	require.Equal(t, "true", evalString(t, amelia, `String(window.chaperoneRoom.pcs.up.getSenders().some(s => s.track && s.track.kind === 'audio' && s.track.enabled))`),
		"the pupil's microphone is on again")
}
