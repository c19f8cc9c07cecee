#!/usr/bin/env bash
# Runs the Vireo bench scenarios against Prosody (Debian package) on loopback and writes
# JSON results to bench/results/. Usage: bench/peers/run-prosody.sh [bin/xmppbench]
set -euo pipefail
cd "$(dirname "$0")/../.."
XB=${1:-bin/xmppbench}
W=/tmp/vireo-bench-prosody
command -v prosody >/dev/null || { apt-get update -qq && apt-get install -y -qq prosody; }
service prosody stop >/dev/null 2>&1 || true
mkdir -p $W/data/localhost/accounts
[ -f $W/localhost.crt ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout $W/localhost.key -out $W/localhost.crt -days 30 -subj /CN=localhost -addext subjectAltName=DNS:localhost 2>/dev/null
go run ./bench/peers/prosodyaccounts $W/data/localhost/accounts 16000
chmod -R a+rwX $W
start() { prosody --config "$PWD/bench/peers/prosody.cfg.lua" > $W/prosody.log 2>&1 & sleep 3; PID=$(pgrep -f "prosody --config" | head -1); }
stop() { kill $PID; sleep 2; }
out=bench/results
start
$XB -addr 127.0.0.1:25222 -tls plain -pid $PID -scenario idle -sizes 2000,16000 > $out/prosody-idle-plain.json
stop; start
$XB -addr 127.0.0.1:25223 -tls direct -pid $PID -scenario idle -sizes 2000,16000 > $out/prosody-idle-tls.json
stop; start
for i in 1 2 3; do $XB -addr 127.0.0.1:25222 -tls plain -pid $PID -scenario login -logins 5000 > $out/prosody-login-plain-$i.json; done
for i in 1 2 3; do $XB -addr 127.0.0.1:25223 -tls direct -pid $PID -scenario login -logins 2000 > $out/prosody-login-tls-$i.json; done
$XB -addr 127.0.0.1:25222 -tls plain -pid $PID -scenario search -users 1000 -rate 250 -step 250 -max-rate 10000 -duration 5s > $out/prosody-search.json
stop
dpkg -s prosody | grep Version > $out/prosody-version.txt
