# Bench suite targets, included from the Makefile.
BENCH_OUT ?= bench/results

.PHONY: bench
bench: build ## quick load-generator suite against Vireo alone (a few minutes)
	$(GO) build -o $(BIN)/xmppbench ./bench/cmd/xmppbench
	$(BIN)/xmppbench -vireo $(BIN)/vireo -vireoctl $(BIN)/vireoctl -suite quick -out $(BENCH_OUT)

.PHONY: bench-full
bench-full: build ## the full Vireo suite: 2,000/16,000 idle sessions, 3 login runs, rate search
	$(GO) build -o $(BIN)/xmppbench ./bench/cmd/xmppbench
	$(BIN)/xmppbench -vireo $(BIN)/vireo -vireoctl $(BIN)/vireoctl -suite full -out $(BENCH_OUT)

.PHONY: bench-compare
bench-compare: ## side-by-side with Prosody and ejabberd (not built yet: see bench/README.md)
	@echo "bench-compare: the Prosody/ejabberd harness is not built yet; run 'make bench-full' for Vireo and point xmppbench -addr/-pid at a peer by hand (bench/README.md)." >&2
	@exit 2
