package web_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
)

// TestBrowserAccessiblePages: every page each person uses passes axe-core's
// WCAG 2.2 A/AA rules, at a laptop's size and at an upright iPad's
// (768×1024): the teacher's home, lessons, request form and session page;
// the head's approvals (one waiting) and delegations; the pupil's home
// and the "I'm worried" form; the DSL's home, recordings, a recording's
// player and timeline, and the audit log; the IT admin's class lists; a
// page refused for lack of a role.
func TestBrowserAccessiblePages(t *testing.T) {
	t.Parallel()
	sc := newRecordingSchool(t, testkit.StartS3(t), "teacher", "head", "pupil", "dsl")
	id, tm, _ := recordedLesson(t, sc)
	require.NoError(t, tm.rc.Send(map[string]any{"type": "end"}))
	require.Eventually(t, func() bool { return len(indexedParts(t, sc, id)) > 0 }, 30*time.Second, 100*time.Millisecond, "the recording is indexed")
	pending := sc.request(t, "teacher", nil) // waits for the head

	pages := map[string][]string{
		"teacher": {"/", "/sessions", "/sessions/new", "/sessions/" + pending, "/recordings"},
		"head":    {"/", "/approvals", "/delegations"},
		"pupil":   {"/", "/worried?session=" + id},
		"dsl":     {"/", "/recordings", "/recordings/" + id, "/audit"},
		"itadmin": {"/admin/roster"},
	}
	for who, paths := range pages {
		ctx := signInBrowser(t, sc.gw, who)
		for _, size := range [][2]int64{{1366, 768}, {768, 1024}} {
			step(t, ctx, "window size", chromedp.EmulateViewport(size[0], size[1]))
			for _, p := range paths {
				step(t, ctx, who+" opens "+p, chromedp.Navigate(sc.gw.URL+p), chromedp.WaitVisible(chromedp.CSS(`main`)))
				testkit.Axe(t, ctx, who+" "+p+" at "+itoa(int(size[0]))+"x"+itoa(int(size[1])))
			}
		}
	}
	status, _ := get(t, sc.people["teacher"].HTTP, sc.gw.URL+"/recordings")
	require.Equal(t, http.StatusForbidden, status, "the teacher's /recordings is the refusal page checked above")
}
