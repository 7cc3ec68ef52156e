#!/usr/bin/env bash
# Runs a scenario of xmppd-load (chat, or login: a storm of full logins)
# against xmppd, Debian's Prosody and Debian's ejabberd in one run, with settings as equal as the three allow:
# one c2s listener on loopback with STARTTLS required, an ECDSA P-256
# certificate (TLS 1.3 is what the generator and all three negotiate),
# SCRAM-SHA-1 over stored keys (4096 iterations), no rate limits, each
# server's default store (xmppd: SQLite; Prosody: its internal files;
# ejabberd: Mnesia), roster, disco, ping and carbons on, message archiving
# on or off. Each server runs on CPU 0 (taskset), the generator on CPU 1.
# Prints, per server, xmppd-load's line per step: latency p50/p99/max,
# loss, and the server process's CPU per message received.
#
#   scripts/bench/compare.sh [--scenario chat|login] [--servers xmppd,prosody,ejabberd]
#                            [--archive on|off] [--n SESSIONS] [--rates R1,R2,...]
#                            [--step DURATION]
#
# KEEP=1 leaves the servers' directories (data, logs) in /tmp.
# Defaults: chat, all three, archive off, 100 sessions (50 pairs; for
# login, 100 accounts), rates 500,1000,2000,4000,8000 (login:
# 50,100,200,400,800,1600 logins/s), 5s steps; each ramp stops after the
# first step with p99 >= 100 ms (login: 1 s) or a lost message or failed
# login. Needs root (the servers run as
# their own users) and the packages prosody, ejabberd and sqlite3 (CI
# installs them). Loopback only, bounded in time. See docs/PERFORMANCE.md.
set -euo pipefail

scenario=chat servers=xmppd,prosody,ejabberd archive=off n=100 rates= step=5s
while [ $# -gt 0 ]; do
	case $1 in
	--scenario) scenario=$2; shift 2 ;;
	--servers) servers=$2; shift 2 ;;
	--archive) archive=$2; shift 2 ;;
	--n) n=$2; shift 2 ;;
	--rates) rates=$2; shift 2 ;;
	--step) step=$2; shift 2 ;;
	*) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
case $archive in on|off) ;; *) echo "compare.sh: --archive is on or off" >&2; exit 2 ;; esac
case $scenario in
chat) rates=${rates:-500,1000,2000,4000,8000} ;;
login) rates=${rates:-50,100,200,400,800,1600} ;;
*) echo "compare.sh: --scenario is chat or login" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/xmppd-compare.XXXXXX)
chmod 755 "$work"
password=bench-password
port=15242
stop_server=:
cleanup() {
	$stop_server || true
	if [ -n "${KEEP:-}" ]; then echo "compare.sh: left $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

(cd "$root" && go build -o "$work/xmppd" ./cmd/xmppd && go build -o "$work/xmppd-load" ./cmd/xmppd-load)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
	-addext subjectAltName=DNS:localhost -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
cat "$work/cert.pem" "$work/key.pem" >"$work/both.pem"

# wait_port waits until the listener accepts connections, at most 30 s.
wait_port() {
	for _ in $(seq 300); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "compare.sh: $1 does not listen on $port" >&2
	return 1
}

# load runs the generator against the server whose process is $1.
load() {
	local extra=(-resource r -settle 3s)
	[ "$scenario" = login ] && extra=()
	taskset -c 1 "$work/xmppd-load" -addr "127.0.0.1:$port" -scenario "$scenario" -n "$n" -user 'load%d' "${extra[@]}" \
		-mech SCRAM-SHA-1 -password "$password" -insecure -rates "$rates" -step "$step" -server-pid "$1"
}

run_xmppd() {
	local d=$work/xmppd-run
	mkdir -p "$d"
	local modules="disco, ping, version, time, roster, offline, blocking, carbons, vcard, private, last, register, push"
	[ "$archive" = on ] && modules="$modules, mam"
	cat >"$d/xmppd.yaml" <<YAML
data_dir: $d/data
hosts:
  - domain: localhost
    cert: $work/cert.pem
    key: $work/key.pem
listeners:
  - type: c2s
    address: "127.0.0.1:$port"
modules: [$modules]
# No rate limits, as for the others: every login comes from 127.0.0.1.
limits:
  max_pending_per_ip: 100000
  max_sessions_per_user: 100000
log:
  level: warn
YAML
	echo "$password" | "$work/xmppd" --config "$d/xmppd.yaml" user add load0@localhost --password-stdin >/dev/null
	# The other accounts get load0's keys: deriving them per account takes
	# long and changes nothing that is measured (the same in each server).
	local copy="WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < $n - 1)"
	sqlite3 "$d/data/xmppd.db" "$copy INSERT INTO users SELECT u.domain, 'load' || seq.i, u.created_at FROM users u, seq WHERE u.local = 'load0';
$copy INSERT INTO credentials SELECT c.domain, 'load' || seq.i, c.mechanism, c.salt, c.iterations, c.stored_key, c.server_key FROM credentials c, seq WHERE c.local = 'load0';"
	taskset -c 0 "$work/xmppd" --config "$d/xmppd.yaml" serve 2>"$d/server.log" &
	local pid=$!
	stop_server="kill $pid"
	wait_port xmppd
	echo "xmppd $(git -C "$root" rev-parse --short HEAD) (SQLite), $scenario, archive=$archive n=$n"
	load "$pid"
	kill "$pid"; wait "$pid" 2>/dev/null || true
	stop_server=:
}

run_prosody() {
	local d=$work/prosody-run
	mkdir -p "$d/data"
	cp "$work/cert.pem" "$work/key.pem" "$d/"
	local mam="" ; [ "$archive" = on ] && mam='"mam";'
	cat >"$d/prosody.cfg.lua" <<LUA
pidfile = "$d/prosody.pid"
data_path = "$d/data"
log = { warn = "$d/prosody.log" }
daemonize = false
interfaces = { "127.0.0.1" }
c2s_ports = { $port }
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "carbons"; $mam }
modules_disabled = { "s2s"; "offline" }
authentication = "internal_hashed"
c2s_require_encryption = true
ssl = { certificate = "$d/cert.pem"; key = "$d/key.pem" }
limits = { c2s = { rate = "1000mb/s" } }
default_archive_policy = true
archive_expires_after = "never"
VirtualHost "localhost"
LUA
	chown -R prosody:prosody "$d"
	runuser -u prosody -- prosodyctl --config "$d/prosody.cfg.lua" register load0 localhost "$password" >/dev/null
	local acc=$d/data/localhost/accounts
	for i in $(seq 1 $((n - 1))); do cp -p "$acc/load0.dat" "$acc/load$i.dat"; done
	taskset -c 0 runuser -u prosody -- prosody --config "$d/prosody.cfg.lua" >"$d/stdout.log" 2>&1 &
	stop_server="pkill -u prosody -f $d/prosody.cfg.lua"
	wait_port prosody
	local pid
	pid=$(pgrep -u prosody -f "$d/prosody.cfg.lua" | head -n 1)
	echo "prosody $(dpkg-query -W -f '${Version}' prosody) (internal storage), $scenario, archive=$archive n=$n"
	load "$pid"
	$stop_server || true
	stop_server=:
	sleep 1
}

run_ejabberd() {
	local d=$work/ejabberd-run node=compare$$@localhost
	mkdir -p "$d/conf" "$d/logs" "$d/spool"
	cp "$work/both.pem" "$d/conf/"
	echo '{lookup, [file, native]}.' >"$d/conf/inetrc"
	local mam="" ; [ "$archive" = on ] && mam="  mod_mam: {default: always}"
	cat >"$d/conf/ejabberd.yml" <<YAML
hosts: [localhost]
loglevel: warning
certfiles: ["$d/conf/both.pem"]
auth_method: internal
auth_password_format: scram
auth_scram_hash: sha
listen:
  - port: $port
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls_required: true
    backlog: 1024
    max_stanza_size: 262144
acl:
  local:
    user_regexp: ""
access_rules:
  local: {allow: local}
  c2s: {allow: all}
shaper_rules: {}
modules:
  mod_roster: {}
  mod_disco: {}
  mod_ping: {}
  mod_carboncopy: {}
$mam
YAML
	chown -R ejabberd:ejabberd "$d"
	local ctl=(env ERL_DIST_PORT=$((port + 1)) ejabberdctl --config-dir "$d/conf" --logs "$d/logs" --spool "$d/spool" --node "$node")
	taskset -c 0 "${ctl[@]}" start
	stop_server="${ctl[*]} stop"
	"${ctl[@]}" started
	for i in $(seq 0 $((n - 1))); do
		"${ctl[@]}" register "load$i" localhost "$password" >/dev/null &
		[ $((i % 10)) = 9 ] && wait
	done
	wait
	wait_port ejabberd
	local pid
	pid=$(pgrep -f "beam.*$node" | head -n 1)
	echo "ejabberd $(dpkg-query -W -f '${Version}' ejabberd) (Mnesia), $scenario, archive=$archive n=$n"
	load "$pid"
	"${ctl[@]}" stop >/dev/null || true
	"${ctl[@]}" stopped >/dev/null 2>&1 || true
	stop_server=:
}

IFS=, read -r -a list <<<"$servers"
for s in "${list[@]}"; do
	case $s in
	xmppd) run_xmppd ;;
	prosody) run_prosody ;;
	ejabberd) run_ejabberd ;;
	*) echo "compare.sh: unknown server $s" >&2; exit 2 ;;
	esac
done
