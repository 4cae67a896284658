package web_test

import (
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
)

// BrowserSignIn drives the demo IdP's login form in Chromium and waits for
// the gateway's home page.
func browserSignIn(t *testing.T, gw *testkit.Gateway, username string) {
	t.Helper()
	ctx := testkit.Browser(t)
	err := chromedp.Do(ctx,
		chromedp.Navigate(gw.URL+"/"),
		chromedp.Click(chromedp.CSS(`a.button[href="/login"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), username),
		chromedp.SendKeys(chromedp.CSS(`#password`), testkit.DemoPassword),
		chromedp.Submit(chromedp.CSS(`#password`)),
		chromedp.WaitVisible(chromedp.CSS(`p.signed-in`)),
	)
	require.NoError(t, err)
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`p.signed-in`)))
	require.NoError(t, err)
	testkit.Screenshot(t, ctx, "home-"+username)
	require.Equal(t, "Signed in as Amelia Jones (pupil)", text)
}

func TestBrowserPupilSignsIn(t *testing.T) {
	t.Parallel()
	gw := testkit.StartGateway(t, testkit.GatewayOptions{})
	browserSignIn(t, gw, "pupil")
}
