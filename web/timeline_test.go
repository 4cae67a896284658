package web_test

import (
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
)

// TestBrowserDSLTimeline: a recorded one-to-one lesson in which the teacher
// removes the pupil. On the recording's page the DSL sees the lesson's
// events in plain words, with a seek bar, the length and a volume control;
// pressing the "removed" event moves every video that covers that moment
// to within a second of it.
func TestBrowserDSLTimeline(t *testing.T) {
	t.Parallel()
	s3 := testkit.StartS3(t)
	// The recording and the audit log are timed by one clock, which runs
	// from the lesson's opening.
	sc := newRecordingSchoolWith(t, testkit.GatewayOptions{S3: s3, RecorderOnClock: true}, "teacher", "head", "pupil", "dsl")
	id := liveSession(t, sc, onePupil)
	sc.clock.Run()
	tm, pupils := teacherAndPupils(t, sc, id, "pupil")
	pm := pupils[0]
	ackNotice(t, pm.rc)
	watchGate(t, sc, id, 30*time.Second)
	time.Sleep(3 * time.Second) // some lesson before the removal
	require.NoError(t, tm.rc.Send(map[string]any{"type": "remove", "id": participantID(pm.rc), "reason": "Shared something unkind."}))
	pm.rc.WaitState(map[string]any{"phase": "removed"})
	time.Sleep(2 * time.Second)
	require.NoError(t, tm.rc.Send(map[string]any{"type": "end"}))
	require.Eventually(t, func() bool { return len(indexedParts(t, sc, id)) == 2 }, 60*time.Second, 100*time.Millisecond, "recorded and indexed")

	status, page := get(t, sc.people["dsl"].HTTP, sc.gw.URL+"/recordings/"+id)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, page, "removed Amelia Jones: Shared something unkind.")

	ctx := signInBrowser(t, sc.gw, "dsl")
	step(t, ctx, "dsl: the timeline", chromedp.Navigate(sc.gw.URL+"/recordings/"+id), chromedp.WaitVisible(chromedp.CSS(`#timeline`)),
		chromedp.WaitVisible(chromedp.CSS(`#player-seek`)), chromedp.WaitVisible(chromedp.CSS(`#player-volume`)))
	require.Eventually(t, func() bool {
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#player video').length && Array.from(document.querySelectorAll('#player video')).every(v => v.readyState >= 1) ? 1 : 0`))
		return err == nil && n == 1
	}, 15*time.Second, 200*time.Millisecond, "the videos' metadata loads")
	require.NotEqual(t, "0:00", text(t, ctx, `#player-duration`), "the length is shown")
	removedAt, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#timeline li[data-kind="removed"] .tl-jump').dataset.t`))
	require.NoError(t, err)
	at, err := strconv.ParseFloat(removedAt, 64)
	require.NoError(t, err)
	require.Greater(t, at, 2.0, "the removal came a few seconds into the recording")
	click(t, ctx, `#timeline li[data-kind="removed"] .tl-jump`)
	type pos struct {
		Offset, Time, Duration float64
	}
	var covered int
	require.Eventually(t, func() bool {
		ps, err := chromedp.Run(ctx, chromedp.Evaluate[[]pos](`Array.from(document.querySelectorAll('#player video')).map(v => ({Offset: parseFloat(v.dataset.offset) || 0, Time: v.currentTime, Duration: isFinite(v.duration) ? v.duration : 1e9}))`))
		if err != nil {
			return false
		}
		covered = 0
		for _, p := range ps {
			if at < p.Offset || at-p.Offset >= p.Duration-0.5 {
				continue // this file does not cover the moment (the pupil's ends with her removal)
			}
			covered++
			if math.Abs(p.Offset+p.Time-at) > 1 {
				return false
			}
		}
		return covered > 0
	}, 10*time.Second, 200*time.Millisecond, "every video covering the moment is within a second of it")
	testkit.Screenshot(t, ctx, "dsl-timeline")

	// The audit log of the lesson, at a laptop's 1366 px: names, plain
	// words, a link to the session, and no sideways scrolling.
	step(t, ctx, "dsl: the lesson's audit log", chromedp.EmulateViewport(1366, 768), chromedp.Navigate(sc.gw.URL+"/audit?session="+id),
		chromedp.WaitVisible(chromedp.CSS(`table.audit`)))
	log := text(t, ctx, `table.audit`)
	require.Contains(t, log, "Sarah Whitfield removed Amelia Jones: Shared something unkind.")
	require.Contains(t, log, "Year 8 maths", "the session by its title")
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('table.audit a[href="/sessions/`+id+`"]').length`))
	require.NoError(t, err)
	require.Positive(t, n, "each row links to its session")
	wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
	require.NoError(t, err)
	require.False(t, wide, "no sideways scrolling at 1366 px")
}
