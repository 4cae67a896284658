# chaperone — routine actions. `make run` and `make test` are all a new user needs.
GO       ?= go
BIN      := bin
PKGS     := ./...
export CGO_ENABLED ?= 0

.PHONY: run build test test-clock test-race test-short test-postgres bench lint fmt e2e fuzz clean tools loadgen

VERSITYGW_VERSION := v1.8.0

build:
	$(GO) build -o $(BIN)/chaperone ./cmd/chaperone

## bin/versitygw: the local S3 server (Object Lock, versioning) for `make run` and the tests
$(BIN)/versitygw:
	GOBIN=$(CURDIR)/$(BIN) $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

## run: the gateway on embedded defaults (demo IdP, local S3, SQLite in ./data) at http://localhost:8080
run: build $(BIN)/versitygw
	./$(BIN)/chaperone dev

## tools/axe: axe-core from the npm registry (pinned in package-lock.json) for the browser tests'
## accessibility checks (internal/testkit/axe.go)
AXE := tools/axe/node_modules/axe-core/axe.min.js
$(AXE): tools/axe/package.json tools/axe/package-lock.json
	cd tools/axe && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## test: every test: unit, integration (demo IdP over HTTP), browser (headless Chromium, with axe-core)
test: $(BIN)/versitygw $(AXE)
	$(GO) test -count=1 -timeout 10m $(PKGS)

## test-clock: the tests again with the tests' clocks 400 days ahead (testkit.ClockOffsetEnv), so a
## test that mixes a fixed calendar date with the real clock fails today, not on some later day. The
## offset acts through internal/testkit only, so this runs the packages whose tests use it (the others
## run on injected clocks or none: the same run twice). The browser tests are skipped
## (CLOCK_SKIP): they book and open lessons through the same API the other tests drive with the moved
## clock, and add ~2 minutes of waiting on Chromium. CLOCK_SKIP= runs them too.
CLOCK_PKGS = $(shell $(GO) list -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' $(PKGS) | awk '/chaperone\/internal\/testkit( |$$)/ {print $$1}')
CLOCK_SKIP ?= ^TestBrowser
test-clock: $(BIN)/versitygw
	CHAPERONE_TEST_CLOCK_OFFSET=400d $(GO) test -count=1 -timeout 10m $(if $(CLOCK_SKIP),-skip '$(CLOCK_SKIP)') $(CLOCK_PKGS)

## test-race: the concurrent packages under the race detector (needs cgo: a C compiler). The browser
## tests are skipped by default: under -race they add ~140 s of waiting on Chromium to web's ~60 s, and
## their Go side (signalling, pion, the rooms) is what the other web tests drive too. RACE_SKIP= runs all.
RACE_PKGS ?= ./lobby/ ./sfu/ ./auth/ ./web/
RACE_SKIP ?= ^TestBrowser
test-race: $(BIN)/versitygw
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 15m $(if $(RACE_SKIP),-skip '$(RACE_SKIP)') $(RACE_PKGS)

## test-postgres: the store's tests on a throwaway Postgres (scripts/pg-test.sh: Debian's postgresql,
## run as the user postgres in a temporary directory on a loopback port), failing rather than skipping
test-postgres:
	./scripts/pg-test.sh run $(GO) test -count=1 ./store/

test-short:
	$(GO) test -short -count=1 $(PKGS)

## e2e: only the browser tests
e2e: $(BIN)/versitygw $(AXE)
	$(GO) test -count=1 -run 'Browser' $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

## loadgen: 1 publisher → 200 subscribers for 30 s against a fresh `chaperone dev` (BENCHMARKS.md);
## other runs: make loadgen LOADGEN_FLAGS="-publishers 2 -subscribers 50 -duration 10s"
loadgen: build $(BIN)/versitygw
	$(GO) build -o $(BIN)/loadgen ./cmd/loadgen
	./scripts/loadgen.sh $(LOADGEN_FLAGS)

## fuzz: a short run (FUZZTIME, default 10s) of every fuzz target, found with `go test -list`
FUZZTIME ?= 10s
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck
$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint: $(STATICCHECK)
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet $(PKGS)
	$(STATICCHECK) $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)
