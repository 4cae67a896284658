package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
)

// TestBrowserRemovePupil: the teacher removes a pupil with the room page's
// control; the pupil sees why, their media stops reaching the teacher,
// and reloading does not bring them back.
func TestBrowserRemovePupil(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head")
	id := liveSession(t, sc, nil)
	teacher, roomURL := teacherOpensRoom(t, sc, id)
	amelia := signInBrowser(t, sc.gw, "pupil")
	zoe := signInBrowser(t, sc.gw, "pupil2")
	step(t, amelia, "Amelia opens the room", chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#banner`)))
	step(t, zoe, "Zoë opens the room", chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#banner`)))
	zoeID, ameliaID := youID(t, zoe), youID(t, amelia)
	waitLobby(t, teacher, zoeID, ameliaID)
	click(t, teacher, `#lobby-list li[data-participant="`+ameliaID+`"] button.admit`)
	click(t, teacher, `#lobby-list li[data-participant="`+zoeID+`"] button.admit`)
	waitInbound(t, teacher, "teacher", zoeID, ameliaID)

	sel := `#people li[data-participant="` + zoeID + `"] `
	click(t, teacher, sel+`button.remove`)
	step(t, teacher, "the teacher removes Zoë with a reason",
		chromedp.WaitVisible(chromedp.CSS(sel+`input.remove-reason`)),
		chromedp.SendKeys(chromedp.CSS(sel+`input.remove-reason`), "Sharing the lesson link with others."),
		chromedp.Click(chromedp.CSS(sel+`button.remove-confirm`)),
	)
	removedAt := time.Now()
	step(t, zoe, "Zoë sees the notice", chromedp.WaitVisible(chromedp.CSS(`#notice`)))
	notice := text(t, zoe, `#notice`)
	require.Contains(t, notice, "Your teacher has taken you out of this lesson.")
	require.Equal(t, 1, strings.Count(notice, "Sharing the lesson link with others."), "the reason is said once: %q", notice)
	require.Contains(t, notice, `Your teacher said: “Sharing the lesson link with others.”`)
	testkit.Axe(t, zoe, "pupil-removed")
	// Within a second the teacher stops receiving Zoë's media.
	time.Sleep(time.Second - time.Since(removedAt))
	first := inbound(t, teacher)
	time.Sleep(time.Second)
	last := inbound(t, teacher)
	require.Equal(t, first[zoeID+"/video"], last[zoeID+"/video"], "the removed pupil's video no longer reaches the teacher")
	require.Equal(t, first[zoeID+"/audio"], last[zoeID+"/audio"])
	// Reloading does not get them back in.
	step(t, zoe, "Zoë reloads", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#notice`)))
	require.Contains(t, text(t, zoe, `#notice`), "You cannot join this lesson again.")
}
