package web_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/lobby"
)

// activeJS describes the focused element: "<participant id> <first class>"
// inside a list entry, "#<id>" otherwise, "body" when nothing has focus.
const activeJS = `(() => {
  const a = document.activeElement;
  if (!a || a === document.body) return 'body';
  const li = a.closest('li[data-participant]');
  if (li) return li.dataset.participant + ' ' + (a.classList[0] || a.tagName.toLowerCase());
  return '#' + a.id;
})()`

// TestBrowserStaffAnnouncementsAndFocus: a teacher whose lobby is out of
// sight is told: pupils arriving and hands going up are said in the live
// region and counted in the tab's title. Keyboard focus stays on a sensible
// control after every action: after Admit on the next waiting pupil's
// Admit (then the lobby's heading), after Mute on that pupil's same
// button, after Remove on the next person in the list; an open Remove form
// and what was typed in it survive other people's changes.
func TestBrowserStaffAnnouncementsAndFocus(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head")
	id := liveSession(t, sc, nil) // a class lesson: nothing recorded
	teacher, roomURL := teacherOpensRoom(t, sc, id)
	waitEval(t, teacher, "the teacher is in the lesson", `document.getElementById('room').dataset.phase`, "admitted")
	baseTitle := evalString(t, teacher, `document.title`)

	pupils := map[string]context.Context{}
	ids := map[string]string{}
	for _, u := range []string{"pupil", "pupil2"} {
		ctx := signInBrowser(t, sc.gw, u)
		step(t, ctx, u+" opens the room", chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#banner`)))
		pupils[u], ids[u] = ctx, youID(t, ctx)
		waitLobby(t, teacher, ids[u])
	}
	waitUntil(t, teacher, "both arrivals announced", evalTimeout, func(c *assert.CollectT) {
		s, err := evalE(teacher, `(window.chaperoneRoom.announced || []).join(' | ')`)
		assert.NoError(c, err)
		assert.Contains(c, s, "Amelia Jones is waiting to join.")
		assert.Contains(c, s, "Zoë Lefèvre is waiting to join.")
	})
	require.Equal(t, "status", evalString(t, teacher, `document.getElementById('announce').getAttribute('role')`))
	waitEval(t, teacher, "the title counts the waiting", `document.title`, "(2 waiting) "+baseTitle)
	testkit.Axe(t, teacher, "teacher-two-waiting")

	// Admit by keyboard: focus moves to the next Admit, then the heading.
	amelia, zoe := ids["pupil"], ids["pupil2"]
	first := evalString(t, teacher, `document.querySelector('#lobby-list li').dataset.participant`)
	second := map[string]string{amelia: zoe, zoe: amelia}[first]
	evalString(t, teacher, `(() => { const b = document.querySelector('#lobby-list li[data-participant="`+first+`"] button.admit'); b.focus(); b.click(); return ''; })()`)
	waitEval(t, teacher, "focus on the next pupil's Admit", activeJS, second+" admit")
	evalString(t, teacher, `(() => { document.activeElement.click(); return ''; })()`)
	waitEval(t, teacher, "focus on the lobby's heading", activeJS, "#lobby-heading")
	waitEval(t, teacher, "the title clears", `document.title`, baseTitle)

	// A hand goes up: announced and counted.
	step(t, pupils["pupil"], "Amelia raises her hand", chromedp.Click(chromedp.CSS(`#raise-hand`)))
	waitUntil(t, teacher, "the hand announced", evalTimeout, func(c *assert.CollectT) {
		s, err := evalE(teacher, `document.getElementById('announce').textContent`)
		assert.NoError(c, err)
		assert.Equal(c, "Amelia Jones has raised a hand.", s)
	})
	waitEval(t, teacher, "the title counts the hand", `document.title`, "(1 hand up) "+baseTitle)

	// Mute by keyboard: focus stays on that pupil's (now "Allow") button.
	muteSel := `#people li[data-participant="` + amelia + `"] button.mute-audio`
	evalString(t, teacher, `(() => { const b = document.querySelector('`+muteSel+`'); b.focus(); b.click(); return ''; })()`)
	waitText(t, teacher, "the button says Allow", muteSel, "Allow microphone")
	waitEval(t, teacher, "focus kept on Amelia's microphone button", activeJS, amelia+" mute-audio")

	// An open Remove form survives a roster change.
	zoeRow := `#people li[data-participant="` + zoe + `"]`
	click(t, teacher, zoeRow+` button.remove`)
	step(t, teacher, "the teacher starts typing a reason", chromedp.SendKeys(chromedp.CSS(zoeRow+` input.remove-reason`), "Sharing"))
	waitText(t, pupils["pupil"], "Amelia's button offers to lower it", `#raise-hand`, "Lower hand")
	sc.clock.Advance(lobby.HandInterval) // hands go up and down at most so often
	click(t, pupils["pupil"], `#raise-hand`)
	waitEval(t, teacher, "the hand is down", `String((window.chaperoneRoom.hands || []).length)`, "0")
	require.Equal(t, "Sharing", evalString(t, teacher, `document.querySelector('`+zoeRow+` input.remove-reason').value`), "what was typed is kept")
	require.Equal(t, zoe+" remove-reason", evalString(t, teacher, activeJS), "and the focus with it")
	testkit.Axe(t, teacher, "teacher-remove-form")

	// Remove by keyboard: focus goes to the next person in the list.
	step(t, teacher, "the teacher finishes the reason", chromedp.SendKeys(chromedp.CSS(zoeRow+` input.remove-reason`), " rude pictures"))
	evalString(t, teacher, `(() => { const b = document.querySelector('`+zoeRow+` button.remove-confirm'); b.focus(); b.click(); return ''; })()`)
	waitUntil(t, teacher, "Zoë removed, focus on the next person's control", evalTimeout, func(c *assert.CollectT) {
		s, err := evalE(teacher, activeJS)
		assert.NoError(c, err)
		assert.NotContains(c, s, zoe)
		assert.NotEqual(c, "body", s)
		assert.True(c, s == "#people-heading" || strings.Contains(s, " "), "in the people list: %s", s)
	})
}

// TestBrowserNoWebRTC: a pupil whose browser cannot make video calls
// (RTCPeerConnection removed by an init script, as in an old or locked-down
// browser) is told so before joining, in words that name what works, and
// is not left trying again; the teacher sees it on the pupil's lobby entry.
func TestBrowserNoWebRTC(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head")
	id := liveSession(t, sc, nil)
	teacher, roomURL := teacherOpensRoom(t, sc, id)
	waitEval(t, teacher, "the teacher is in the lesson", `document.getElementById('room').dataset.phase`, "admitted")

	pupil := signInBrowser(t, sc.gw, "pupil")
	step(t, pupil, "the browser loses WebRTC", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument,
			page.AddScriptToEvaluateOnNewDocumentParams{Source: `delete window.RTCPeerConnection; delete window.webkitRTCPeerConnection;`})
		return err
	}))
	step(t, pupil, "the pupil opens the room", chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#notice`)))
	require.Equal(t, "undefined", evalString(t, pupil, `typeof RTCPeerConnection`))
	require.Equal(t, "This browser cannot join video lessons", text(t, pupil, `#notice-title`))
	notice := text(t, pupil, `#notice`)
	for _, want := range []string{"Chrome", "Edge", "Firefox", "Safari", "Ask an adult"} {
		require.Contains(t, notice, want)
	}
	require.NotContains(t, notice, "Something went wrong")
	require.Equal(t, "true", evalString(t, pupil, `String(document.getElementById('retry').hidden)`), "no retry that could never work")
	pupilID := youID(t, pupil)
	testkit.Axe(t, pupil, "pupil-browser-unsupported")
	waitLobby(t, teacher, pupilID)
	waitText(t, teacher, "the teacher sees why", `#lobby-list li[data-participant="`+pupilID+`"] .no-video`, "Their browser cannot join video lessons")
	testkit.Axe(t, teacher, "teacher-lobby-unsupported-browser")
}
