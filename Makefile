# Tributary's commands. `make test` is the one CI runs (.ci/run).
GO ?= go
PKGS := ./...

.PHONY: demo test lint unit race bench histories build

## demo: start the embedded stack and run a join simulation (the README's first command)
demo:
	$(GO) run ./starter demo

## test: formatting, vet, staticcheck, workflowcheck, then every test (the README's second command)
test: lint
	$(GO) test -count=1 -timeout 40m $(PKGS)
	$(GO) test -count=1 -race -timeout 20m ./workflows/... ./internal/bridge/... ./internal/joinsim/... ./internal/progress/... ./internal/window/... ./internal/pipelines/... ./internal/travel/... ./schemas/...

## lint: the static checks alone
lint:
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)
	$(GO) tool workflowcheck $(PKGS)

## unit: the tests that need no embedded stack
unit:
	$(GO) test -count=1 ./workflows/... ./internal/joinsim/... ./internal/progress/... ./internal/window/... ./internal/pipelines/... ./internal/travel/... ./schemas/...

## bench: measure the join on a fresh embedded stack
bench:
	$(GO) run ./starter bench join

## histories: re-record the replay histories under workflows/testdata from real runs
histories:
	$(GO) test -count=1 -run TestRecordedHistoriesReplay ./internal/app -update-histories

build:
	$(GO) build -o bin/ ./starter ./workers
