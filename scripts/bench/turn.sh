#!/usr/bin/env bash
# Runs BenchmarkRelay and BenchmarkAllocate (modules/turn/bench_test.go)
# against xmppd's built-in relay (`xmppd serve` with only the turn module)
# and Debian's coturn, one after the other in one run, with the same TURN
# REST credentials scheme and secret: each relay on CPU 0 (taskset), the
# benchmark on CPU 1, loopback only. Prints, per relay, the benchmark lines:
# relayed packets/s, Mbit/s, loss and the relay process's CPU per packet
# (1200-byte UDP packets through one allocation and through 50), and
# allocations/s with the relay's CPU per allocation. "Throughput per core"
# is 1 / (CPU per packet): on a shared machine the generator is the
# bottleneck for the rate, not the relay.
#
#   scripts/bench/turn.sh [--relays xmppd,coturn] [--packets N] [--allocations N]
#
# Defaults: both relays, 200000 packets per relay benchmark, 5000
# allocations. coturn runs with its defaults except what the test needs:
# the REST secret and realm, loopback listening and loopback peers, no
# TLS/DTLS/CLI. Needs the package coturn (installed if missing, as root).
# See docs/PERFORMANCE.md.
set -euo pipefail

relays=xmppd,coturn packets=200000 allocations=5000
while [ $# -gt 0 ]; do
	case $1 in
	--relays) relays=$2; shift 2 ;;
	--packets) packets=$2; shift 2 ;;
	--allocations) allocations=$2; shift 2 ;;
	*) echo "turn.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/xmppd-turn.XXXXXX)
secret=bench-turn-secret
realm=localhost
port=13478
pid=
cleanup() {
	[ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
	rm -rf "$work"
}
trap cleanup EXIT

if [[ $relays == *coturn* ]] && ! command -v turnserver >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q coturn >/dev/null
fi
(cd "$root" && go build -o "$work/xmppd" ./cmd/xmppd && go test -c -o "$work/turn.test" ./modules/turn)

wait_udp() { # until something listens on UDP $port
	for _ in $(seq 100); do
		ss -Hlun "sport = :$port" | grep -q . && return 0
		sleep 0.1
	done
	echo "turn.sh: nothing listens on udp $port" >&2
	return 1
}

run() { # name
	echo "== $1 ($(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg))"
	cd "$work"
	XMPPD_BENCH_TURN="127.0.0.1:$port" XMPPD_BENCH_TURN_SECRET=$secret XMPPD_BENCH_TURN_REALM=$realm \
		XMPPD_BENCH_TURN_PID=$pid taskset -c 1 ./turn.test -test.run '^$' -test.bench 'Relay' \
		-test.benchtime "${packets}x" | grep -Ev '^(goos|goarch|pkg|cpu|PASS)'
	XMPPD_BENCH_TURN="127.0.0.1:$port" XMPPD_BENCH_TURN_SECRET=$secret XMPPD_BENCH_TURN_REALM=$realm \
		XMPPD_BENCH_TURN_PID=$pid taskset -c 1 ./turn.test -test.run '^$' -test.bench 'Allocate' \
		-test.benchtime "${allocations}x" | grep -Ev '^(goos|goarch|pkg|cpu|PASS)'
	cd - >/dev/null
}

for relay in ${relays//,/ }; do
	case $relay in
	xmppd)
		cat >"$work/xmppd.yaml" <<YAML
data_dir: $work/data
hosts:
  - domain: $realm
listeners:
  - type: turn
    address: "127.0.0.1:$port"
modules: [turn]
module_options:
  turn:
    secret: $secret
    bandwidth: 0
log:
  level: warn
YAML
		taskset -c 0 "$work/xmppd" --config "$work/xmppd.yaml" serve 2>"$work/xmppd.log" &
		;;
	coturn)
		taskset -c 0 turnserver -n --listening-ip=127.0.0.1 --listening-port=$port --relay-ip=127.0.0.1 \
			--use-auth-secret --static-auth-secret=$secret --realm=$realm --allow-loopback-peers \
			--no-tls --no-dtls --no-cli --log-file="$work/coturn.log" --simple-log >/dev/null 2>&1 &
		;;
	*) echo "turn.sh: unknown relay $relay" >&2; exit 2 ;;
	esac
	pid=$!
	wait_udp
	run "$relay"
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	pid=
done
