#!/usr/bin/env bash
# bench/split.sh: the split deployment measured against the all-in-one server on the same
# machine. It starts a core (with its own client listeners) and an edge linked to it, then
# runs the same xmppbench scenarios direct to the core and through the edge, counting the
# edge's memory and CPU with the core's (-also-pids). Reports go to $OUT (JSON per run and
# summary.md). Everything runs on loopback and stops by itself.
#
#   make bench-split            # or: bash bench/split.sh
#   REPS=3 OUT=/tmp/split bash bench/split.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/split}
REPS=${REPS:-2}
USERS=${USERS:-1000}
WORK=$(mktemp -d /tmp/vireo-split.XXXXXX)
mkdir -p "$OUT"
trap 'kill $(jobs -p) 2>/dev/null || true; sleep 1; rm -rf "$WORK"' EXIT

cat > "$WORK/core.toml" <<EOF
domains = ["localhost"]
data_dir = "$WORK/core"
log_level = "warn"
[c2s]
listen = ["127.0.0.1:25222"]
tls_listen = ["127.0.0.1:25223"]
require_tls = false
auth_failures_per_minute = 1000000
max_unauth_per_address = 100000
[web]
listen = []
tls_listen = []
[component]
listen = []
[link]
listen = ["127.0.0.1:25290"]
secret = "the bench's link secret, long enough"
[tls]
cert = "$WORK/cert.pem"
key = "$WORK/key.pem"
[modules]
disabled = ["mam"]
[modules.upload]
listen = "127.0.0.1:0"
[modules.proxy65]
listen = "127.0.0.1:0"
EOF
cat > "$WORK/edge.toml" <<EOF
domains = ["localhost"]
data_dir = "$WORK/edge"
log_level = "warn"
[c2s]
listen = ["127.0.0.1:25322"]
tls_listen = ["127.0.0.1:25323"]
[web]
listen = []
tls_listen = []
[edge]
core = "127.0.0.1:25290"
secret = "the bench's link secret, long enough"
ca_file = "$WORK/cert.pem"
server_name = "localhost"
[tls]
cert = "$WORK/cert.pem"
key = "$WORK/key.pem"
EOF

wait_log() { # file, text
	for _ in $(seq 1 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	echo "split bench: no '$2' in $1" >&2; cat "$1" >&2; exit 1
}
CORE=0 EDGE=0
start() {
	[ "$CORE" != 0 ] && { kill "$CORE" "$EDGE" 2>/dev/null || true; while kill -0 "$CORE" 2>/dev/null || kill -0 "$EDGE" 2>/dev/null; do sleep 0.2; done; }
	bin/vireo -config "$WORK/core.toml" -log-level info >"$WORK/core.log" 2>&1 &
	CORE=$!
	wait_log "$WORK/core.log" "vireo is serving"
	bin/vireo -config "$WORK/edge.toml" -log-level info >"$WORK/edge.log" 2>&1 &
	EDGE=$!
	wait_log "$WORK/edge.log" "vireo edge is serving"
	wait_log "$WORK/core.log" "edge linked"
}
start
bin/vireoctl -config "$WORK/core.toml" bulkadd -prefix user -count 20000 -password password >/dev/null

bench() { # name, addr, extra flags...
	local name=$1 addr=$2; shift 2
	local also=()
	[ "${addr##*:}" -ge 25322 ] && also=(-also-pids "$EDGE")
	bin/xmppbench -addr "$addr" -domain localhost -pid "$CORE" "${also[@]}" "$@" >"$OUT/$name.json" 2>"$WORK/$name.err" ||
		{ echo "split bench: $name failed" >&2; cat "$WORK/$name.err" >&2; exit 1; }
}
field() { grep -o "\"$2\": *[-0-9.e+]*" "$OUT/$1.json" | head -1 | sed 's/.*: *//'; }

for r in $(seq 1 "$REPS"); do
	for via in direct edge; do
		p=25222; [ $via = edge ] && p=25322
		# Fresh processes for each idle run: the slope is of a server that held nothing
		# before (memory freed by an earlier run would be reused and hide the cost).
		start
		bench "idle-$via-$r" "127.0.0.1:$p" -scenario idle -sizes 2000,16000
		start
		bench "idle-tls-$via-$r" "127.0.0.1:$((p + 1))" -tls direct -scenario idle -sizes 2000,16000
		bench "login-$via-$r" "127.0.0.1:$p" -scenario login -logins 5000
		for rate in 5000 20000; do
			bench "msg$rate-$via-$r" "127.0.0.1:$p" -scenario msg -rate $rate -users "$USERS" -duration 10s
		done
	done
done

{
	echo "# Split deployment: direct to the core vs through an edge ($(date -u +%Y-%m-%d), $(git rev-parse --short HEAD))"
	echo
	echo "Server figures through the edge are the core plus the edge (memory and CPU summed)."
	echo "Both processes and the generator share this machine's $(nproc) cores."
	echo
	echo "| run | path | idle plain B/session | idle TLS B/session | login µs CPU | msg 5k/s µs CPU | p50 / p99 ms | msg 20k/s µs CPU | p50 / p99 ms |"
	echo "|---|---|---|---|---|---|---|---|---|"
	for r in $(seq 1 "$REPS"); do
		for via in direct edge; do
			printf '| %s | %s | %.0f | %.0f | %s | %.1f | %s / %s | %.1f | %s / %s |\n' "$r" "$via" \
				"$(field idle-$via-$r rss_bytes_per_session)" "$(field idle-tls-$via-$r rss_bytes_per_session)" \
				"$(field login-$via-$r server_cpu_us_per_login)" \
				"$(field msg5000-$via-$r server_cpu_us_per_message)" "$(field msg5000-$via-$r p50_ms)" "$(field msg5000-$via-$r p99_ms)" \
				"$(field msg20000-$via-$r server_cpu_us_per_message)" "$(field msg20000-$via-$r p50_ms)" "$(field msg20000-$via-$r p99_ms)"
		done
	done
} >"$OUT/summary.md"
cat "$OUT/summary.md"
