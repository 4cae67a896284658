package testkit

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBrowserDataURL(t *testing.T) {
	ctx := Browser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(`data:text/html,<title>chaperone-data</title><p>hi</p>`)))
	title, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.title`))
	require.NoError(t, err)
	assert.Equal(t, "chaperone-data", title)
}

func TestBrowserTabsShareCookies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/set" {
			http.SetCookie(w, &http.Cookie{Name: "who", Value: "alex", Path: "/"})
		}
		who := "nobody"
		if c, err := r.Cookie("who"); err == nil {
			who = c.Value
		}
		io.WriteString(w, "<!doctype html><title>hello "+who+"</title><p>page</p>")
	}))
	t.Cleanup(srv.Close)

	ctx := Browser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/set")))
	title, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.title`))
	require.NoError(t, err)
	assert.Equal(t, "hello nobody", title, "the cookie is set by this response")

	tab := NewTab(t, ctx)
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate(srv.URL+"/read")))
	title, err = chromedp.Run(tab, chromedp.Evaluate[string](`document.title`))
	require.NoError(t, err)
	assert.Equal(t, "hello alex", title, "the second tab is in the same browser")

	// A second browser has its own profile, so no cookie.
	other := Browser(t)
	require.NoError(t, chromedp.Do(other, chromedp.Navigate(srv.URL+"/read")))
	title, err = chromedp.Run(other, chromedp.Evaluate[string](`document.title`))
	require.NoError(t, err)
	assert.Equal(t, "hello nobody", title)
}

func TestBrowserFakeMedia(t *testing.T) {
	// getUserMedia needs a secure context: http://127.0.0.1 is one, data: is not.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<!doctype html><title>media</title>")
	}))
	t.Cleanup(srv.Close)
	ctx := Browser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.URL)))
	tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	n, err := chromedp.Run(tctx, chromedp.Evaluate[int](
		`navigator.mediaDevices.getUserMedia({audio: true, video: true}).then(s => s.getTracks().length)`,
		chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	assert.Equal(t, 2, n, "fake camera and microphone, no permission prompt")
}

func TestScreenshot(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvArtifacts, dir)
	ctx := Browser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(`data:text/html,<title>shot</title><h1>shot</h1>`)))
	Screenshot(t, ctx, "page one")
	b, err := os.ReadFile(filepath.Join(dir, "TestScreenshot-page_one.png"))
	require.NoError(t, err)
	assert.Equal(t, "\x89PNG", string(b[:4]))
}

func TestFreePortAndCookieClient(t *testing.T) {
	port := FreePort(t)
	assert.Greater(t, port, 0)

	mux := http.NewServeMux()
	mux.HandleFunc("/a", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "c", Value: "1", Path: "/"})
		http.Redirect(w, r, "/b", http.StatusFound)
	})
	mux.HandleFunc("/b", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("c")
		if err != nil {
			http.Error(w, "no cookie", http.StatusBadRequest)
			return
		}
		io.WriteString(w, c.Value)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c := CookieClient(t)
	assert.Equal(t, 15*time.Second, c.Timeout)
	resp, err := c.Get(srv.URL + "/a")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "1", string(body))
}

// recordingTB records Skip and Fatal instead of stopping the goroutine.
type recordingTB struct {
	testing.TB
	skipped, fataled string
}

func (r *recordingTB) Helper()           {}
func (r *recordingTB) Skip(args ...any)  { r.skipped = fmt.Sprint(args...) }
func (r *recordingTB) Fatal(args ...any) { r.fataled = fmt.Sprint(args...) }

func TestNoBrowserSkipsOrFails(t *testing.T) {
	t.Setenv(EnvRequireBrowser, "")
	r := &recordingTB{TB: t}
	noBrowser(r)
	assert.Contains(t, r.skipped, "no Chromium found")
	assert.Empty(t, r.fataled)

	t.Setenv(EnvRequireBrowser, "1")
	r = &recordingTB{TB: t}
	noBrowser(r)
	assert.Contains(t, r.fataled, "CHAPERONE_REQUIRE_BROWSER=1")
	assert.Empty(t, r.skipped)
}

// TestBrowserAxeFindsViolations: the accessibility check finds what it
// must (an image without a text alternative, a button without a name, text
// too faint to read) and passes a page without them.
func TestBrowserAxeFindsViolations(t *testing.T) {
	src, err := axeSource()
	if err != nil {
		if os.Getenv(EnvRequireAxe) == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx := Browser(t)
	bad := `data:text/html,<!doctype html><html lang="en"><title>bad</title><main><img src="x.png"><button></button><p style="color:%23ccc;background:%23fff">faint</p></main></html>`
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(bad)))
	vs, err := axeRun(ctx, src)
	require.NoError(t, err)
	ids := map[string]bool{}
	for _, v := range vs {
		ids[v.ID] = true
	}
	for _, want := range []string{"image-alt", "button-name", "color-contrast"} {
		assert.True(t, ids[want], "axe finds %s: %v", want, vs)
	}
	good := `data:text/html,<!doctype html><html lang="en"><title>good</title><main><h1>Fine</h1><button>Go</button></main></html>`
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(good)))
	vs, err = axeRun(ctx, src)
	require.NoError(t, err)
	assert.Empty(t, vs)
}
