package testkit

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserDisplayMedia: the test browser answers getDisplayMedia (after a
// click, as a page must ask) with a fake screen, without a picker.
func TestBrowserDisplayMedia(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><button id=b>share</button><pre id=out>none</pre><script>
document.getElementById('b').onclick = async () => {
  try {
    const s = await navigator.mediaDevices.getDisplayMedia({video: true});
    document.getElementById('out').textContent = 'ok ' + s.getVideoTracks()[0].getSettings().displaySurface;
  } catch (e) { document.getElementById('out').textContent = 'err ' + e.name + ' ' + e.message; }
};</script>`)
	}))
	defer srv.Close()
	ctx := Browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL), chromedp.Click(chromedp.CSS("#b"))); err != nil {
		t.Fatal(err)
	}
	var out string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#out")))
		if err != nil {
			t.Fatal(err)
		}
		if out = s; out != "none" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.HasPrefix(out, "ok monitor") {
		t.Fatalf("getDisplayMedia: %q, want a fake screen", out)
	}
}
