package testkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Accessibility checks with axe-core (the npm package, installed by `make
// test` into tools/axe; never a CDN). Axe runs the WCAG 2.2 A and AA rules
// (and those of 2.0 and 2.1) on the page as it is, so a test calls it at
// each page state a person sees.
const (
	// EnvAxe names axe.min.js, overriding tools/axe/node_modules/axe-core.
	EnvAxe = "CHAPERONE_AXE"
	// EnvRequireAxe, when "1", turns a missing axe-core into a test
	// failure (CI) rather than a logged note.
	EnvRequireAxe = "CHAPERONE_REQUIRE_AXE"
)

// axeTags are the rule sets Axe runs: WCAG 2.0, 2.1 and 2.2, levels A and AA.
var axeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"}

var axeSource = sync.OnceValues(func() (string, error) {
	path := os.Getenv(EnvAxe)
	if path == "" {
		root := repoRoot()
		if root == "" {
			return "", errors.New("axe-core: no go.mod above the working directory")
		}
		path = filepath.Join(root, "tools", "axe", "node_modules", "axe-core", "axe.min.js")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("axe-core: %w (run `make test`, or `cd tools/axe && npm ci`)", err)
	}
	return string(b), nil
})

// AxeViolation is one rule a page state breaks, with the elements that do.
type AxeViolation struct {
	ID      string   `json:"id"`
	Impact  string   `json:"impact"`
	Help    string   `json:"help"`
	Targets []string `json:"targets"`
}

// Axe checks the page of ctx as it is now against WCAG 2.2 A/AA and fails
// the test on any violation, naming the state, the rules and the elements.
func Axe(t testing.TB, ctx context.Context, state string) {
	t.Helper()
	src, err := axeSource()
	if err != nil {
		if os.Getenv(EnvRequireAxe) == "1" {
			t.Fatalf("testkit: %v; %s=1 so this is a failure", err, EnvRequireAxe)
		}
		t.Logf("testkit: accessibility not checked (%s): %v", state, err)
		return
	}
	vs, err := axeRun(ctx, src)
	if err != nil {
		t.Fatalf("testkit: axe on %s: %v", state, err)
	}
	if len(vs) == 0 {
		return
	}
	Screenshot(t, ctx, "axe-"+state)
	var b strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&b, "\n  %s (%s): %s\n    %s", v.ID, v.Impact, v.Help, strings.Join(v.Targets, "\n    "))
	}
	t.Errorf("accessibility (WCAG 2.2 AA) of %s: %d violation(s):%s", state, len(vs), b.String())
}

func axeRun(ctx context.Context, src string) ([]AxeViolation, error) {
	actx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	loaded, err := chromedp.Run(actx, chromedp.Evaluate[bool](`typeof window.axe === 'object'`))
	if err != nil {
		return nil, err
	}
	if !loaded {
		if _, err := chromedp.Run(actx, chromedp.Evaluate[bool](src+"\n;true")); err != nil {
			return nil, fmt.Errorf("load axe-core: %w", err)
		}
	}
	tags, _ := json.Marshal(axeTags)
	js := `(async () => {
  const r = await axe.run(document, { runOnly: { type: 'tag', values: ` + string(tags) + ` }, resultTypes: ['violations'] });
  return JSON.stringify(r.violations.map((v) => ({ id: v.id, impact: v.impact || '', help: v.help,
    targets: v.nodes.map((n) => n.target.join(' ') + ': ' + (n.failureSummary || '').replace(/\s+/g, ' ')) })));
})()`
	out, err := chromedp.Run(actx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		return nil, err
	}
	var vs []AxeViolation
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		return nil, fmt.Errorf("axe result: %w", err)
	}
	return vs, nil
}
