package web_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestBrowserRemovePupil: the teacher removes a pupil with the room page's
// control; the pupil sees why, their media stops reaching the teacher,
// and reloading does not bring them back.
func TestBrowserRemovePupil(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head")
	id := liveSession(t, sc, nil)
	roomURL := sc.gw.URL + "/rooms/" + id
	teacher := signInBrowser(t, sc.gw, "teacher")
	require.NoError(t, chromedp.Do(teacher, chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#lobby`))))
	amelia := signInBrowser(t, sc.gw, "pupil")
	zoe := signInBrowser(t, sc.gw, "pupil2")
	require.NoError(t, chromedp.Do(amelia, chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#banner`))))
	require.NoError(t, chromedp.Do(zoe, chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#banner`))))
	require.Eventually(t, func() bool {
		return evalString(t, teacher, `String(document.querySelectorAll('#lobby-list li').length)`) == "2"
	}, 10*time.Second, 100*time.Millisecond)
	zoeID := evalString(t, zoe, `window.chaperoneRoom.you.id`)
	ameliaID := evalString(t, amelia, `window.chaperoneRoom.you.id`)
	require.NoError(t, chromedp.Do(teacher,
		chromedp.Click(chromedp.CSS(`#lobby-list li[data-participant="`+ameliaID+`"] button.admit`)),
		chromedp.Click(chromedp.CSS(`#lobby-list li[data-participant="`+zoeID+`"] button.admit`)),
	))
	waitInbound(t, teacher, "teacher", zoeID, ameliaID)

	sel := `#people li[data-participant="` + zoeID + `"] `
	require.NoError(t, chromedp.Do(teacher,
		chromedp.Click(chromedp.CSS(sel+`button.remove`)),
		chromedp.WaitVisible(chromedp.CSS(sel+`input.remove-reason`)),
		chromedp.SendKeys(chromedp.CSS(sel+`input.remove-reason`), "Sharing the lesson link with others."),
		chromedp.Click(chromedp.CSS(sel+`button.remove-confirm`)),
	))
	removedAt := time.Now()
	require.NoError(t, chromedp.Do(zoe, chromedp.WaitVisible(chromedp.CSS(`#notice`))))
	require.Contains(t, text(t, zoe, `#notice`), "Sharing the lesson link with others.")
	// Within a second the teacher stops receiving Zoë's media.
	time.Sleep(time.Second - time.Since(removedAt))
	first := inbound(t, teacher)
	time.Sleep(time.Second)
	last := inbound(t, teacher)
	require.Equal(t, first[zoeID+"/video"], last[zoeID+"/video"], "the removed pupil's video no longer reaches the teacher")
	require.Equal(t, first[zoeID+"/audio"], last[zoeID+"/audio"])
	// Reloading does not get them back in.
	require.NoError(t, chromedp.Do(zoe, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#notice`))))
	require.Contains(t, text(t, zoe, `#notice`), "cannot rejoin")
}
