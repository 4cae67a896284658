package web_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestBrowserPupilLessonsGoLive: a pupil's home page lists an approved
// lesson whose room is not open yet in words that agree with each other
// (nothing says "not approved"); when the teacher opens the room, the Join
// button appears on the open page without a reload.
func TestBrowserPupilLessonsGoLive(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head")
	id := sc.request(t, "teacher", nil)
	status, out := sc.people["head"].Call(http.MethodPost, "/api/sessions/"+id+"/approve", nil)
	require.Equal(t, http.StatusOK, status, "%v", out)
	sc.clock.Set(schoolDay.Add(2*time.Hour - 10*time.Minute))

	pupil := signInBrowser(t, sc.gw, "pupil")
	step(t, pupil, "pupil: home", chromedp.Navigate(sc.gw.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`li[data-session="`+id+`"]`)))
	before := text(t, pupil, `li[data-session="`+id+`"]`)
	require.Contains(t, before, "Your teacher has not opened the room yet")
	require.NotContains(t, before, "not been approved")
	_, err := chromedp.Run(pupil, chromedp.Evaluate[int](`window.__marker = 1`))
	require.NoError(t, err)

	status, out = sc.people["teacher"].Call(http.MethodPost, "/api/sessions/"+id+"/open", nil)
	require.Equal(t, http.StatusOK, status, "%v", out)
	step(t, pupil, "pupil: the Join button appears", chromedp.WaitVisible(chromedp.CSS(`li[data-session="`+id+`"] a.button[href="/rooms/`+id+`"]`)))
	marker, err := chromedp.Run(pupil, chromedp.Evaluate[int](`window.__marker || 0`))
	require.NoError(t, err)
	require.Equal(t, 1, marker, "the page was not reloaded")
}
