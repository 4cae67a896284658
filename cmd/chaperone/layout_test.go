package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The package layering of DESIGN.md ("Layout"): the imports that must not
// exist, read from `go list` as a reviewer would.
func TestPackageLayering(t *testing.T) {
	never := map[string][]string{
		"lobby":     {"web", "live", "safeguard", "sfu", "recording"},
		"sfu":       {"lobby", "web", "live", "safeguard", "recording", "store"},
		"recording": {"web", "lobby", "live", "safeguard", "sfu"},
		"auth":      {"lobby", "live", "safeguard", "web", "sfu", "recording"},
		"store":     {"web", "live", "safeguard", "lobby", "sfu", "recording", "auth"},
		"audit":     {"web", "live", "safeguard", "lobby", "sfu", "recording", "auth", "store"},
		"live":      {"web", "safeguard"},
		"safeguard": {"web", "live", "sfu"},
		"web":       {"sfu", "recording"},
		"roster":    {"web", "live", "safeguard", "lobby", "sfu", "recording", "auth"},
	}
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "github.com/chaperone-edu/chaperone/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "github.com/chaperone-edu/chaperone/"
	top := func(p string) string {
		p = strings.TrimPrefix(p, mod)
		first, _, _ := strings.Cut(p, "/")
		return first
	}
	checked := map[string]bool{}
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) == 0 || !strings.HasPrefix(fields[0], mod) {
			continue
		}
		from := top(fields[0])
		bad, ok := never[from]
		if !ok {
			continue
		}
		checked[from] = true
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			for _, b := range bad {
				if top(imp) == b {
					t.Errorf("%s imports %s: DESIGN.md's layering rules it out", fields[0], imp)
				}
			}
		}
	}
	for p := range never {
		if !checked[p] {
			t.Errorf("package %s not found by go list", p)
		}
	}
}
