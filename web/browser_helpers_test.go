package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"

	"github.com/chaperone-edu/chaperone/internal/testkit"
)

// Helpers for the browser tests. Two kinds:
//   - step, evalString, text, inbound fail the test at once (with a
//     screenshot) and may only be called from the test's goroutine;
//   - evalE, textE, inboundE, clickE return errors instead, for the
//     conditions of waitUntil (assert.EventuallyWithT runs them on another
//     goroutine, where require would stop only that goroutine and log after
//     the test has finished).
// Every browser call has its own timeout, so a missing element fails fast
// with its selector named instead of waiting for the browser's overall one.

// stepTimeout bounds one group of chromedp steps.
const stepTimeout = 25 * time.Second

// evalTimeout bounds one evaluation or one read of the page.
const evalTimeout = 10 * time.Second

// fail saves a screenshot of ctx's page as a test artefact and fails t.
func fail(t *testing.T, ctx context.Context, format string, args ...any) {
	t.Helper()
	testkit.Screenshot(t, ctx, "failed")
	t.Fatalf(format, args...)
}

// step runs chromedp actions on ctx within stepTimeout; what names them in
// the failure.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		fail(t, ctx, "%s: %v", what, err)
	}
}

// waitUntil waits up to within for cond to make no failed assertion on its
// *assert.CollectT; what says what is awaited. On timeout the last round's
// failures are reported, a screenshot of ctx's page is saved and the test
// stops.
func waitUntil(t *testing.T, ctx context.Context, what string, within time.Duration, cond func(c *assert.CollectT)) {
	t.Helper()
	if !assert.EventuallyWithT(t, cond, within, 100*time.Millisecond, what) {
		fail(t, ctx, "gave up waiting: %s", what)
	}
}

func evalE(ctx context.Context, js string) (string, error) {
	ectx, cancel := context.WithTimeout(ctx, evalTimeout)
	defer cancel()
	s, err := chromedp.Run(ectx, chromedp.Evaluate[string](js))
	if err != nil {
		return "", fmt.Errorf("evaluate %.80q: %w", js, err)
	}
	return s, nil
}

func evalString(t *testing.T, ctx context.Context, js string) string {
	t.Helper()
	s, err := evalE(ctx, js)
	if err != nil {
		fail(t, ctx, "%v", err)
	}
	return s
}

func textE(ctx context.Context, sel string) (string, error) {
	ectx, cancel := context.WithTimeout(ctx, evalTimeout)
	defer cancel()
	s, err := chromedp.Run(ectx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		return "", fmt.Errorf("text of %s: %w", sel, err)
	}
	return strings.TrimSpace(s), nil
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := textE(ctx, sel)
	if err != nil {
		fail(t, ctx, "%v", err)
	}
	return s
}

// clickE clicks the element sel matches now, in the page's own script: it
// finds the element and clicks it in one go, so a list rebuilt meanwhile
// (#people is rebuilt on each roster message) cannot leave a detached node
// to click. It fails if there is no such element or it is disabled.
func clickE(ctx context.Context, sel string) error {
	js := `(() => { const e = document.querySelector(` + jsString(sel) + `); if (!e) return 'missing'; if (e.disabled) return 'disabled'; e.click(); return 'clicked'; })()`
	s, err := evalE(ctx, js)
	if err != nil {
		return err
	}
	if s != "clicked" {
		return fmt.Errorf("click %s: %s", sel, s)
	}
	return nil
}

// click clicks sel (see clickE), retrying until it is there and enabled.
func click(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	waitUntil(t, ctx, "click "+sel, 10*time.Second, func(c *assert.CollectT) { assert.NoError(c, clickE(ctx, sel)) })
}

func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// inboundJS sums the down connection's inbound bytes per publisher and kind;
// the SFU names each track "<participant id>-<kind>-<n>".
const inboundJS = `(async () => {
  const pc = window.chaperoneRoom && window.chaperoneRoom.pcs.down;
  const out = {};
  if (!pc) return out;
  const stats = await pc.getStats();
  stats.forEach(r => {
    if (r.type !== 'inbound-rtp' || !r.trackIdentifier) return;
    const key = r.trackIdentifier.split('-')[0] + '/' + r.kind;
    out[key] = (out[key] || 0) + (r.bytesReceived || 0);
  });
  return out;
})()`

func inboundE(ctx context.Context) (map[string]float64, error) {
	ectx, cancel := context.WithTimeout(ctx, evalTimeout)
	defer cancel()
	m, err := chromedp.Run(ectx, chromedp.Evaluate[map[string]float64](inboundJS, chromedp.EvalAwaitPromise))
	if err != nil {
		return nil, fmt.Errorf("inbound stats: %w", err)
	}
	return m, nil
}

func inbound(t *testing.T, ctx context.Context) map[string]float64 {
	t.Helper()
	m, err := inboundE(ctx)
	if err != nil {
		fail(t, ctx, "%v", err)
	}
	return m
}

// waitInbound waits until ctx receives audio and video bytes from every
// publisher in from, and the counts keep rising.
func waitInbound(t *testing.T, ctx context.Context, who string, from ...string) {
	t.Helper()
	var first map[string]float64
	waitUntil(t, ctx, who+" receives audio and video from "+strings.Join(from, ", "), 20*time.Second, func(c *assert.CollectT) {
		m, err := inboundE(ctx)
		if !assert.NoError(c, err) {
			return
		}
		for _, f := range from {
			assert.Positive(c, m[f+"/audio"], "audio from %s: %v", f, m)
			assert.Positive(c, m[f+"/video"], "video from %s: %v", f, m)
		}
		first = m
	})
	waitUntil(t, ctx, who+": inbound bytes keep increasing", 10*time.Second, func(c *assert.CollectT) {
		m, err := inboundE(ctx)
		if !assert.NoError(c, err) {
			return
		}
		for _, f := range from {
			assert.Greater(c, m[f+"/audio"], first[f+"/audio"], "audio from %s", f)
			assert.Greater(c, m[f+"/video"], first[f+"/video"], "video from %s", f)
		}
	})
}

// youID waits for the room page's welcome and returns the participant ID
// it gave.
func youID(t *testing.T, ctx context.Context) string {
	t.Helper()
	var id string
	waitUntil(t, ctx, "the welcome message (window.chaperoneRoom.you)", 15*time.Second, func(c *assert.CollectT) {
		s, err := evalE(ctx, `(window.chaperoneRoom && window.chaperoneRoom.you && window.chaperoneRoom.you.id) || ''`)
		assert.NoError(c, err)
		assert.NotEmpty(c, s)
		id = s
	})
	return id
}

// waitText waits until the text of sel in ctx's page contains want.
func waitText(t *testing.T, ctx context.Context, what, sel, want string) {
	t.Helper()
	waitUntil(t, ctx, what, 10*time.Second, func(c *assert.CollectT) {
		s, err := textE(ctx, sel)
		assert.NoError(c, err)
		assert.Contains(c, s, want)
	})
}

// teacherOpensRoom signs the teacher in and opens the room of session id in
// a browser, and returns the teacher's page and the room's URL.
func teacherOpensRoom(t *testing.T, sc *school, id string) (teacher context.Context, roomURL string) {
	t.Helper()
	roomURL = sc.gw.URL + "/rooms/" + id
	teacher = signInBrowser(t, sc.gw, "teacher")
	step(t, teacher, "the teacher opens the room", chromedp.Navigate(roomURL), chromedp.WaitVisible(chromedp.CSS(`#lobby`)))
	return teacher, roomURL
}
