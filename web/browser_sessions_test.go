package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
)

// signInBrowser signs username in, in a fresh browser, and returns its context.
func signInBrowser(t *testing.T, gw *testkit.Gateway, username string) context.Context {
	t.Helper()
	ctx := testkit.Browser(t)
	signInBrowserAt(t, ctx, gw, username)
	return ctx
}

// TestBrowserRequestApproveOpen: a teacher requests a session in the
// browser, the head approves it, the teacher sees "approved" and an
// open-room button inside the window, and opens the room.
func TestBrowserRequestApproveOpen(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock(schoolDay) // 08:00
	gw := testkit.StartGateway(t, testkit.GatewayOptions{Now: clock.Now})
	teacher := signInBrowser(t, gw, "teacher")
	require.NoError(t, chromedp.Do(teacher,
		chromedp.Navigate(gw.URL+"/"),
		chromedp.Click(chromedp.CSS(`a[href="/sessions/new"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#title`)),
		chromedp.SendKeys(chromedp.CSS(`#title`), "Year 8 reading group"),
		chromedp.SetValue(chromedp.CSS(`#date`), dayOf(0)),
		chromedp.SetValue(chromedp.CSS(`#start_time`), "08:10"),
		chromedp.SetValue(chromedp.CSS(`#end_time`), "09:00"),
		chromedp.SendKeys(chromedp.CSS(`#roster_group`), "year-8"),
		chromedp.Click(chromedp.CSS(`form.request button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#state`)),
	))
	require.Equal(t, "waiting for approval", text(t, teacher, `#state`))
	require.Contains(t, text(t, teacher, `#open-message`), "not been approved")
	sessionURL, err := chromedp.Run(teacher, chromedp.Location())
	require.NoError(t, err)

	head := signInBrowser(t, gw, "head")
	require.NoError(t, chromedp.Do(head,
		chromedp.Navigate(gw.URL+"/"),
		chromedp.Click(chromedp.CSS(`a[href="/approvals"]`)),
		chromedp.WaitVisible(chromedp.CSS(`table.approvals`)),
	))
	row := text(t, head, `table.approvals tbody tr`)
	require.Contains(t, row, "Year 8 reading group")
	require.Contains(t, row, "Sarah Whitfield")
	require.Contains(t, row, "year-8")
	require.Contains(t, row, "no other staff")
	testkit.Screenshot(t, head, "approvals")
	require.NoError(t, chromedp.Do(head,
		chromedp.Click(chromedp.CSS(`table.approvals form[action$="/approve"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`.notice.ok`)),
	))
	require.Contains(t, text(t, head, `.notice.ok`), "Approved")

	require.NoError(t, chromedp.Do(teacher, chromedp.Navigate(strings.SplitN(sessionURL, "?", 2)[0]), chromedp.WaitVisible(chromedp.CSS(`#state`))))
	require.Equal(t, "approved", text(t, teacher, `#state`))
	require.Contains(t, text(t, teacher, `dl.facts`), "Margaret Okafor")
	testkit.Screenshot(t, teacher, "approved")
	require.NoError(t, chromedp.Do(teacher,
		chromedp.Click(chromedp.CSS(`#open-room`)),
		chromedp.WaitVisible(chromedp.CSS(`#room-status`)),
	))
	require.Contains(t, text(t, teacher, `#room-status`), "The room is open")

	// Outside the window there is no open-room button, and the page says why.
	clock.Set(schoolDay.Add(time.Hour))
	require.NoError(t, chromedp.Do(teacher, chromedp.Navigate(gw.URL+"/sessions"), chromedp.WaitVisible(chromedp.CSS(`main h1`))))
	require.Contains(t, text(t, teacher, `main`), "ended")
}
