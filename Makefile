# Tributary's commands. `make test` is the one CI runs (.ci/run).
GO ?= go
PKGS := ./...

.PHONY: demo test deps lint unit race bench histories build

# Run apt-get directly as root, through sudo otherwise.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

## demo: start the embedded stack and run a join simulation (the README's first command)
demo:
	$(GO) run ./starter demo

## deps: what the tests need beyond Go modules: Debian's Chromium for the dashboard test,
## Debian's PostgreSQL server for the tests on PostgreSQL (internal/pgtest starts its own
## servers; no system service is used), and the clients users already have, kcat (Debian)
## and the Temporal CLI (built from its Go module into Go's bin directory)
TEMPORAL_CLI := github.com/temporalio/cli/cmd/temporal@v1.5.1
deps:
	@missing=""; command -v chromium >/dev/null || missing="chromium"; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v kcat >/dev/null || missing="$$missing kcat"; \
	if [ -n "$$missing" ]; then $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; fi
	@command -v temporal >/dev/null || [ -x "$$($(GO) env GOPATH)/bin/temporal" ] || { echo "building the Temporal CLI ($(TEMPORAL_CLI))"; $(GO) install $(TEMPORAL_CLI); }
	@chromium --version
	@ls -d /usr/lib/postgresql/*/bin/postgres
	@kcat -V | head -1
	@PATH="$$PATH:$$($(GO) env GOPATH)/bin" temporal --version

## test: formatting, vet, staticcheck, workflowcheck, then every test (the README's second command).
## The fault suite runs after the others, alone: it judges lateness by when the broker
## acknowledged each record, and runs a dozen processes of its own.
test: deps lint
	TRIBUTARY_SCREENSHOTS=$(CURDIR)/.artifacts/screenshots $(GO) test -count=1 -timeout 40m $$($(GO) list $(PKGS) | grep -v '/internal/chaos$$')
	$(GO) test -count=1 -timeout 20m ./internal/chaos/
	$(GO) test -count=1 -race -timeout 20m ./workflows/... ./bridge/... ./pipelines/... ./window/... ./travel/... ./schemas/... ./internal/joinsim/... ./internal/sensorsim/... ./internal/progress/... ./internal/config/... ./internal/query/...

## lint: the static checks alone
lint:
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)
	$(GO) tool workflowcheck $(PKGS)

## unit: the tests that need no embedded stack
unit:
	$(GO) test -count=1 ./workflows/... ./bridge/... ./pipelines/... ./window/... ./travel/... ./schemas/... ./internal/joinsim/... ./internal/sensorsim/... ./internal/progress/... ./internal/config/...

## bench: measure the pipelines on fresh embedded stacks
bench:
	$(GO) run ./starter bench all
	$(GO) run ./starter bench sensors

## histories: re-record the replay histories under workflows/testdata from real runs
histories:
	$(GO) test -count=1 -run TestRecordedHistoriesReplay ./internal/app -update-histories

build:
	$(GO) build -o bin/ ./starter ./workers
