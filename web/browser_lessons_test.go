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

// TestBrowserRequestFormOnPhone: on a phone-sized screen the request
// form's radios are a finger's size and the time fields are styled like the
// other fields, with nothing off the side of the screen.
func TestBrowserRequestFormOnPhone(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher")
	teacher := signInBrowser(t, sc.gw, "teacher")
	step(t, teacher, "teacher: the request form on a phone", chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile),
		chromedp.Navigate(sc.gw.URL+"/sessions/new"), chromedp.WaitVisible(chromedp.CSS(`#start_time`)))
	type box struct{ W, H float64 }
	radio, err := chromedp.Run(teacher, chromedp.Evaluate[box](`(() => { const r = document.querySelector('input[name=kind]').getBoundingClientRect(); return {W: r.width, H: r.height}; })()`))
	require.NoError(t, err)
	require.GreaterOrEqual(t, radio.W, 24.0, "radio width")
	require.GreaterOrEqual(t, radio.H, 24.0, "radio height")
	tm, err := chromedp.Run(teacher, chromedp.Evaluate[box](`(() => { const r = document.querySelector('#start_time').getBoundingClientRect(); return {W: r.width, H: r.height}; })()`))
	require.NoError(t, err)
	require.GreaterOrEqual(t, tm.H, 40.0, "time field height")
	wide, err := chromedp.Run(teacher, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
	require.NoError(t, err)
	require.False(t, wide, "no sideways scrolling on a phone")
}
