package web_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/lobby"
)

// setOffline cuts (or restores) the page's network, WebRTC included, with
// Chromium's network emulation.
func setOffline(offline bool) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		if _, err := cdp.Call(ctx, t, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			MatchedNetworkConditions: []*network.Conditions{{Offline: offline, DownloadThroughput: -1, UploadThroughput: -1}}}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, network.OverrideNetworkState, network.OverrideNetworkStateParams{Offline: offline, DownloadThroughput: -1, UploadThroughput: -1})
		return err
	})
}

// TestBrowserRejoin (R16): an admitted pupil whose page reloads is back in
// the lesson within 5 s with no staff action; one whose network goes away
// for 10 s is shown to the teacher as reconnecting, and is back in the
// lesson, receiving media, once it returns.
func TestBrowserRejoin(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head")
	id := liveSession(t, sc, nil)
	teacher, roomURL := teacherOpensRoom(t, sc, id)
	waitEval(t, teacher, "the teacher is in the lesson", `document.getElementById('room').dataset.phase`, "admitted")
	teacherID := youID(t, teacher)
	pupils := map[string]context.Context{}
	ids := map[string]string{}
	for _, u := range []string{"pupil", "pupil2"} { // two pupils: a class lesson, not recorded
		ctx := signInBrowser(t, sc.gw, u)
		step(t, ctx, u+" opens the room", chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#banner`)))
		pupils[u], ids[u] = ctx, youID(t, ctx)
	}
	waitLobby(t, teacher, ids["pupil"], ids["pupil2"])
	for _, u := range []string{"pupil", "pupil2"} {
		click(t, teacher, `#lobby-list li[data-participant="`+ids[u]+`"] button.admit`)
	}
	amelia := pupils["pupil"]
	waitInbound(t, amelia, "Amelia", teacherID, ids["pupil2"])

	// A reload: straight back in, without the teacher doing anything.
	reloaded := time.Now()
	step(t, amelia, "Amelia's page reloads", chromedp.Reload())
	waitEval(t, amelia, "Amelia is back in the lesson", `document.getElementById('room').dataset.phase`, "admitted")
	t.Logf("back in the lesson %s after the reload", time.Since(reloaded).Round(time.Millisecond))
	require.Less(t, time.Since(reloaded), 5*time.Second, "back within 5 s")
	waitInbound(t, amelia, "Amelia after the reload", teacherID, ids["pupil2"])
	require.Equal(t, "", text(t, teacher, `#lobby-list`), "nobody waits in the lobby")

	// Ten seconds offline: the teacher sees "reconnecting", then she is back.
	step(t, amelia, "Amelia's network goes away", setOffline(true))
	waitEval(t, amelia, "Amelia's page is reconnecting", `document.getElementById('room').dataset.phase`, "reconnecting")
	// The gateway hears her close the connection, or notices its silence
	// within its idle timeout (30 s; more on a loaded machine).
	waitUntil(t, teacher, "the teacher sees Amelia reconnecting", 90*time.Second, func(c *assert.CollectT) {
		s, err := textE(teacher, `#people li[data-participant="`+ids["pupil"]+`"]`)
		assert.NoError(c, err)
		assert.Contains(c, s, "Reconnecting")
	})
	testkit.Screenshot(t, teacher, "reconnecting")
	_, metrics := get(t, testkit.CookieClient(t), sc.gw.MetricsURL)
	require.Contains(t, metrics, `chaperone_participants{state="reconnecting"} 1`)
	time.Sleep(10 * time.Second)
	step(t, amelia, "Amelia's network comes back", setOffline(false))
	waitEval(t, amelia, "Amelia is back in the lesson", `document.getElementById('room').dataset.phase`, "admitted")
	waitInbound(t, amelia, "Amelia after the network came back", teacherID, ids["pupil2"])
	waitUntil(t, teacher, "the teacher sees Amelia in the lesson again", 20*time.Second, func(c *assert.CollectT) {
		s, err := textE(teacher, `#people li[data-participant="`+ids["pupil"]+`"]`)
		assert.NoError(c, err)
		assert.NotContains(c, s, "Reconnecting")
	})
	for _, p := range roomState(t, sc, id).Participants {
		require.NotEqual(t, lobby.Waiting, p.State, "%s was never sent back to the lobby", p.Name)
	}
	require.Equal(t, 3, auditCount(t, sc.gw.Store, "room.admit"), "the teacher joined directly and admitted each pupil once")
	require.GreaterOrEqual(t, auditCount(t, sc.gw.Store, "room.rejoin"), 2, "both returns are on record")
}
