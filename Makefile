# Vireo — run `make` alone to list the targets.
GO      ?= go
BIN     ?= bin
CONFIG  ?= vireo.toml
PKGS    ?= ./...
FUZZTIME ?= 30s

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: build
build: ## build bin/vireo and bin/vireoctl
	$(GO) build -o $(BIN)/vireo .
	$(GO) build -o $(BIN)/vireoctl ./tools/vireoctl

.PHONY: run
run: build ## build and start the server in the foreground (writes vireo.toml, cert and data/ on first start)
	$(BIN)/vireo -config $(CONFIG)

.PHONY: test
test: ## the whole test suite (race detector, invariants, shuffled), as CI runs it
	$(GO) vet $(PKGS)
	$(GO) test -tags invariants -race -shuffle=on -timeout 12m $(PKGS)

.PHONY: test-noinv
test-noinv: ## tests without the race detector and invariants build tag
	$(GO) test -shuffle=on $(PKGS)

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME (default 30s)
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

.PHONY: gobench
gobench: ## Go micro-benchmarks with -benchmem
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

.PHONY: lint
lint: ## vet, gofmt, go mod tidy check
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l . | grep -v '^bench/results/')" || (gofmt -l .; exit 1)
	$(GO) mod tidy -diff

.PHONY: interop
interop: ## interop tests with slixmpp (needs python3-slixmpp)
	$(GO) test -tags interop -run 'Interop' $(PKGS)

.PHONY: clean
clean: ## remove build output
	rm -rf $(BIN)

-include bench/bench.mk
