# Bench suite targets, included from the Makefile.
BENCH_OUT ?= bench/results

.PHONY: bench-tool
bench-tool: build
	$(GO) build -o $(BIN)/xmppbench ./bench/cmd/xmppbench

.PHONY: bench
bench: bench-tool ## quick suite against Vireo alone (a few minutes; report in /tmp/vireo-bench)
	$(BIN)/xmppbench -compare vireo -suite quick -bin $(BIN) -out /tmp/vireo-bench -name vireo-quick

.PHONY: bench-full
bench-full: bench-tool ## the full suite against Vireo alone (3 runs of everything)
	$(BIN)/xmppbench -compare vireo -suite full -bin $(BIN) -out $(BENCH_OUT) -name vireo-full

.PHONY: bench-compare
bench-compare: bench-tool ## Vireo, Prosody and ejabberd side by side, every scenario of the full suite 3 times (installs the peers from Debian; well over an hour on 2 cores)
	$(BIN)/xmppbench -compare vireo,prosody,ejabberd -suite full -install -bin $(BIN) -out $(BENCH_OUT) -name compare

.PHONY: bench-aims
bench-aims: bench-tool ## the density-and-speed figures (idle bytes, login and message CPU, highest rate) of Vireo, Prosody and ejabberd, 3 runs each, every server offered the same TLS key exchange (~35 min; report in BENCH_OUT/aims.md)
	$(BIN)/xmppbench -compare vireo,prosody,ejabberd -suite full -reps 3 -only idle,login,msg -tls-classic -install -bin $(BIN) -out $(BENCH_OUT) -name aims

.PHONY: bench-mampep
bench-mampep: bench-tool ## archive queries on 1,000,000 messages of 10,000 users, then the PEP storm of 1,000 users (a run of its own: ejabberd's mesh is a shared roster of all accounts): Vireo, Prosody, ejabberd; long, the fill goes through the servers
	$(BIN)/xmppbench -compare vireo,prosody,ejabberd -suite full -only mam -install -bin $(BIN) -out $(BENCH_OUT)/mampep -name mam
	$(BIN)/xmppbench -compare vireo,prosody,ejabberd -suite full -only pep -bin $(BIN) -out $(BENCH_OUT)/mampep -name pep

SOAK_CYCLES ?= 20
SOAK_LOAD ?= 60s
SOAK_SERVERS ?= vireo
.PHONY: soak
soak: bench-tool ## the soak: SOAK_CYCLES (20) cycles of SOAK_LOAD (60s) mixed load — stream-management drops and resumes, login churn over TCP, TLS and WebSocket with roster writes and room visits, wrong passwords, malformed XML, offline delivery, archiving — with a quiet sample after each; fails on any loss, failed login or growth of open files, threads or goroutines (~25 min; report in /tmp/vireo-soak; SOAK_SERVERS=vireo,prosody,ejabberd to compare)
	$(BIN)/xmppbench -compare $(SOAK_SERVERS) -suite full -only soak -reps 1 -soak-cycles $(SOAK_CYCLES) -soak-load $(SOAK_LOAD) -bin $(BIN) -out /tmp/vireo-soak -name soak

.PHONY: bench-split
bench-split: bench-tool ## the split deployment (an edge in front of the core) against the all-in-one server: idle bytes, login and message CPU, latency (~10 min; report in bench/results/split)
	bash bench/split.sh

AB_PAIRS ?= 20
AB_WORKLOAD ?= login
AB_ARGS_login = -logins 6000
AB_ARGS_tls = -logins 2000 -tls-classic
AB_ARGS_fast = -logins 3000
AB_ARGS_fast-tls = -logins 1000 -tls-classic
AB_ARGS_msg = -rate 5000 -duration 6s
.PHONY: bench-ab
bench-ab: bench-tool ## two Vireo builds interleaved, A=dir B=dir (each holding vireo and vireoctl): B/A server CPU per op with a 95% interval over AB_PAIRS (20) pairs; AB_WORKLOAD login, tls, fast, fast-tls or msg (5,000 msg/s); report in /tmp/vireo-ab
	@test -n "$(A)" -a -n "$(B)" || { echo "usage: make bench-ab A=old/bin B=new/bin [AB_WORKLOAD=login|tls|fast|fast-tls|msg] [AB_PAIRS=20]"; exit 2; }
	$(BIN)/xmppbench -ab $(A),$(B) -ab-workload $(AB_WORKLOAD) -pairs $(AB_PAIRS) $(AB_ARGS_$(AB_WORKLOAD)) -out /tmp/vireo-ab -name ab-$(AB_WORKLOAD)

.PHONY: bench-floor
bench-floor: ## the floor under any server here: a relay that only reads a frame and writes it to its recipient (gnet with a loop per processor and with one loop, Go's net), server CPU per message at 5,000 and 60,000 msg/s; then a server that answers a login's six round trips with canned bytes (~3 min; bench/results/floor)
	$(GO) build -o $(BIN)/relayfloor ./bench/cmd/relayfloor
	@for r in 5000 60000; do for m in "-loops 0" "-loops 1" "-mode net"; do \
	  echo "== $$r msg/s $$m"; $(BIN)/relayfloor -rate $$r -duration 10s $$m || exit 1; done; done
	@for m in "-loops 0" "-loops 0 -enroll" "-loops 1" "-mode net"; do \
	  echo "== 6000 logins $$m"; $(BIN)/relayfloor -logins 6000 $$m || exit 1; done
