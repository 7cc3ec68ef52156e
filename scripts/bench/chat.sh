#!/usr/bin/env bash
# Runs the chat scenario of xmppd-load against the built xmppd: the server
# on CPU 0, the generator on CPU 1 (taskset), TLS 1.3 over loopback, pairs of
# accounts talking at rising open-loop rates. Prints xmppd-load's line per
# step (latency p50/p99/max, loss, xmppd's CPU per message) and, with
# PostgreSQL, the CPU the database's processes spent per message over the
# whole run, since with archiving on it does part of the work.
#
#   scripts/bench/chat.sh [--store sqlite|postgres] [--archive on|off]
#                         [--n SESSIONS] [--rates R1,R2,...] [--step DURATION]
#
# Defaults: sqlite, archive on, 100 sessions (50 pairs), rates
# 1000,2500,5000,10000,20000,40000, 10s steps. PostgreSQL is the local
# server on 127.0.0.1:5432 (trust auth); the script creates and drops a
# database of its own. Loopback only, bounded in time. See
# docs/PERFORMANCE.md.
set -euo pipefail

store=sqlite archive=on n=100 rates=1000,2500,5000,10000,20000,40000 step=10s
while [ $# -gt 0 ]; do
	case $1 in
	--store) store=$2; shift 2 ;;
	--archive) archive=$2; shift 2 ;;
	--n) n=$2; shift 2 ;;
	--rates) rates=$2; shift 2 ;;
	--step) step=$2; shift 2 ;;
	*) echo "chat.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
case $store in sqlite|postgres) ;; *) echo "chat.sh: --store is sqlite or postgres" >&2; exit 2 ;; esac
case $archive in on|off) ;; *) echo "chat.sh: --archive is on or off" >&2; exit 2 ;; esac

root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/xmppd-bench.XXXXXX)
db=xmppd_bench_$$
pids=()
cleanup() {
	status=$?
	[ "$status" = 0 ] || { echo "--- server log (last lines)" >&2; tail -n 20 "$work/server.log" >&2 || true; }
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	[ "$store" = postgres ] && psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

(cd "$root" && go build -o "$work/xmppd" ./cmd/xmppd && go build -o "$work/xmppd-load" ./cmd/xmppd-load)
modules="disco, ping, version, time, roster, offline, blocking, carbons, vcard, private, last, register, push"
[ "$archive" = on ] && modules="$modules, mam"
storage="sqlite: $work/data/xmppd.db"
if [ "$store" = postgres ]; then
	psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $db" >/dev/null
	storage="postgres: postgres://postgres@127.0.0.1:5432/$db?sslmode=disable"
fi
port=15232
cat >"$work/xmppd.yaml" <<YAML
data_dir: $work/data
hosts:
  - domain: localhost
listeners:
  - type: c2s
    address: "127.0.0.1:$port"
storage:
  $storage
modules: [$modules]
log:
  level: warn
YAML
password=bench-password
echo "$password" | "$work/xmppd" --config "$work/xmppd.yaml" user add load0@localhost --password-stdin >/dev/null
# The other accounts get load0's credentials: deriving a SCRAM key per
# account would take long and changes nothing that is measured.
copy="WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < $n - 1)"
sql="$copy INSERT INTO users SELECT u.domain, 'load' || seq.i, u.created_at FROM users u, seq WHERE u.local = 'load0';
$copy INSERT INTO credentials SELECT c.domain, 'load' || seq.i, c.mechanism, c.salt, c.iterations, c.stored_key, c.server_key FROM credentials c, seq WHERE c.local = 'load0';"
if [ "$store" = postgres ]; then
	psql -q -h 127.0.0.1 -U postgres -d "$db" -c "$sql" >/dev/null
else
	sqlite3 "$work/data/xmppd.db" "$sql"
fi

taskset -c 0 "$work/xmppd" --config "$work/xmppd.yaml" serve 2>"$work/server.log" &
spid=$!
pids+=("$spid")
for _ in $(seq 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
	sleep 0.1
done

# The CPU time of every PostgreSQL process, in clock ticks.
pgticks() { for f in /proc/[0-9]*/stat; do awk '$2 == "(postgres)" {print $14 + $15}' "$f" 2>/dev/null; done | awk '{s += $1} END {print s + 0}'; }
pg0=0
[ "$store" = postgres ] && pg0=$(pgticks)
echo "xmppd $(git -C "$root" rev-parse --short HEAD), store=$store archive=$archive sessions=$n"
taskset -c 1 "$work/xmppd-load" -addr "127.0.0.1:$port" -scenario chat -n "$n" -user 'load%d' -resource r \
	-password "$password" -insecure ${SETTLE:+-settle $SETTLE} -rates "$rates" -step "$step" -server-pid "$spid" | tee "$work/load.out"
if [ "$store" = postgres ]; then
	pg1=$(pgticks)
	got=$(awk '/^step/ {for (i = 1; i <= NF; i++) if ($i ~ /^got=/) {sub("got=", "", $i); s += $i}} END {print s + 0}' "$work/load.out")
	awk -v t=$((pg1 - pg0)) -v m="$got" 'BEGIN {if (m > 0) printf "postgres CPU over the run: %.1f µs per message received (%d messages)\n", t * 10000 / m, m}'
fi
