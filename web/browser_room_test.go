package web_test

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
)

// TestBrowserLiveRoom: three browsers with fake cameras. The teacher opens
// the room; two pupils sign in and wait; the teacher admits both and each
// browser receives audio and video from the other two; the teacher denies
// a third pupil, who sees the reason.
func TestBrowserLiveRoom(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head")
	id := liveSession(t, sc, nil)
	teacher, roomURL := teacherOpensRoom(t, sc, id)
	waitEval(t, teacher, "the teacher is in the lesson", `document.getElementById('room').dataset.phase`, "admitted")

	pupils := map[string]context.Context{}
	for _, u := range []string{"pupil", "pupil2", "pupil3"} {
		ctx := signInBrowser(t, sc.gw, u)
		step(t, ctx, u+" opens the room", chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#banner`)))
		pupils[u] = ctx
	}
	for u, ctx := range pupils {
		waitText(t, ctx, u+" is told to wait", `#banner`, "Waiting for your teacher")
	}
	ids := map[string]string{}
	for u, ctx := range pupils {
		ids[u] = youID(t, ctx)
	}
	waitLobby(t, teacher, ids["pupil"], ids["pupil2"], ids["pupil3"])
	lobbyText := text(t, teacher, `#lobby-list`)
	require.Contains(t, lobbyText, "Amelia Jones")
	require.Contains(t, lobbyText, "Zoë Lefèvre")
	require.Contains(t, lobbyText, "NOT on the class list") // Oliver is in Year 9
	testkit.Screenshot(t, teacher, "lobby")

	teacherID := youID(t, teacher)
	for _, u := range []string{"pupil", "pupil2"} {
		click(t, teacher, `#lobby-list li[data-participant="`+ids[u]+`"] button.admit`)
	}
	step(t, teacher, "the teacher denies Oliver with a reason",
		chromedp.Click(chromedp.CSS(`#lobby-list li[data-participant="`+ids["pupil3"]+`"] button.deny`)),
		chromedp.WaitVisible(chromedp.CSS(`#lobby-list li[data-participant="`+ids["pupil3"]+`"] input.deny-reason`)),
		chromedp.SendKeys(chromedp.CSS(`#lobby-list li[data-participant="`+ids["pupil3"]+`"] input.deny-reason`), "This lesson is for Year 8 only."),
		chromedp.Click(chromedp.CSS(`#lobby-list li[data-participant="`+ids["pupil3"]+`"] button.deny-confirm`)),
	)
	step(t, pupils["pupil3"], "Oliver sees the notice", chromedp.WaitVisible(chromedp.CSS(`#notice`)))
	require.Contains(t, text(t, pupils["pupil3"], `#notice`), "This lesson is for Year 8 only.")

	waitInbound(t, teacher, "teacher", ids["pupil"], ids["pupil2"])
	waitInbound(t, pupils["pupil"], "Amelia", teacherID, ids["pupil2"])
	waitInbound(t, pupils["pupil2"], "Zoë", teacherID, ids["pupil"])
	require.Empty(t, inbound(t, pupils["pupil3"]), "the denied pupil receives nothing")
	// Tiles are labelled with full names.
	require.Contains(t, text(t, pupils["pupil"], `#tiles`), "Sarah Whitfield")
	require.Contains(t, text(t, pupils["pupil"], `#tiles`), "Zoë Lefèvre")
	testkit.Screenshot(t, pupils["pupil"], "pupil-in-room")

	// Chat: a pupil's message shows as text (no HTML) for the teacher, with the pupil's verified name.
	step(t, pupils["pupil"], "Amelia writes in the chat",
		chromedp.SendKeys(chromedp.CSS(`#chat-text`), `<img src=x id=injected>Hello miss`),
		chromedp.Click(chromedp.CSS(`#chat-send`)),
	)
	waitText(t, teacher, "the teacher sees the message", `#chat-list`, "Hello miss")
	require.Contains(t, text(t, teacher, `#chat-list`), `Amelia Jones: <img src=x id=injected>Hello miss`)
	require.Equal(t, "0", evalString(t, teacher, `String(document.querySelectorAll('#chat-list img, #injected').length)`), "no HTML from a message")
}
