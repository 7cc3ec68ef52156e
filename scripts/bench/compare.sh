#!/usr/bin/env bash
# Runs a scenario of xmppd-load (chat; login: a storm of full logins; muc:
# group chat fan-out in one room) against xmppd, Debian's Prosody and
# Debian's ejabberd in one run, with settings as equal as the three allow:
# one c2s listener on loopback with STARTTLS required, an ECDSA P-256
# certificate (TLS 1.3 is what the generator and all three negotiate),
# SCRAM-SHA-1 over stored keys (4096 iterations), no rate limits, each
# server's default store (xmppd: SQLite; Prosody: its internal files;
# ejabberd: Mnesia), roster, disco, ping and carbons on, message archiving
# on or off. Each server runs on CPU 0 (taskset), the generator on CPU 1.
# Prints, per server, xmppd-load's line per step: latency p50/p99/max,
# loss, and the server process's CPU per message received (muc: per copy
# delivered), with the machine's load average before and after each run.
#
#   scripts/bench/compare.sh [--scenario chat|login|muc] [--servers xmppd,prosody,ejabberd]
#                            [--archive on|off] [--n SESSIONS] [--rates R1,R2,...]
#                            [--step DURATION] [--occupants N1,N2,...] [--senders M]
#
# muc: for each room size of --occupants (default 100,1000), that many
# sessions enter a room of the server's MUC service (conference.localhost,
# a new room per size, created by the first as an instant room) and the
# first --senders (default 10) send groupchat messages at the total rates
# of --rates (default 5,20,50 messages/s; 10s steps); every occupant reads
# all the time and times its copy of each message. Each server's own
# per-occupant limits are set out of the way where their default would
# refuse or throttle the scenario: xmppd's muc message_rate and
# message_burst; ejabberd's mod_muc max_users (default 200 occupants);
# Prosody 0.12 has no MUC message limit. See docs/PERFORMANCE.md, "Group
# chat fan-out".
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

scenario=chat servers=xmppd,prosody,ejabberd archive=off n=100 rates= step= occupants=100,1000 senders=10
while [ $# -gt 0 ]; do
	case $1 in
	--scenario) scenario=$2; shift 2 ;;
	--servers) servers=$2; shift 2 ;;
	--archive) archive=$2; shift 2 ;;
	--n) n=$2; shift 2 ;;
	--rates) rates=$2; shift 2 ;;
	--step) step=$2; shift 2 ;;
	--occupants) occupants=$2; shift 2 ;;
	--senders) senders=$2; shift 2 ;;
	*) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
case $archive in on|off) ;; *) echo "compare.sh: --archive is on or off" >&2; exit 2 ;; esac
case $scenario in
chat) rates=${rates:-500,1000,2000,4000,8000} step=${step:-5s} ;;
login) rates=${rates:-50,100,200,400,800,1600} step=${step:-5s} ;;
muc)
	rates=${rates:-5,20,50} step=${step:-10s}
	# One account per occupant of the largest room.
	n=$(tr , '\n' <<<"$occupants" | sort -n | tail -n 1)
	;;
*) echo "compare.sh: --scenario is chat, login or muc" >&2; exit 2 ;;
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

# loadavg prints the machine's load average (1, 5, 15 minutes): the
# machine is shared, and every figure is read beside it.
loadavg() { echo "load average: $(cut -d ' ' -f 1-3 /proc/loadavg) ($1)"; }

# load runs the generator against the server whose process is $1: once,
# or for muc once per room size, each in a room of its own.
load() {
	if [ "$scenario" != muc ]; then
		local extra=(-resource r -settle 3s)
		[ "$scenario" = login ] && extra=()
		loadavg before
		taskset -c 1 "$work/xmppd-load" -addr "127.0.0.1:$port" -scenario "$scenario" -n "$n" -user 'load%d' "${extra[@]}" \
			-mech SCRAM-SHA-1 -password "$password" -insecure -rates "$rates" -step "$step" -server-pid "$1"
		loadavg after
		return
	fi
	local size
	IFS=, read -r -a sizes <<<"$occupants"
	for size in "${sizes[@]}"; do
		echo "room of $size occupants, $senders senders"
		loadavg before
		taskset -c 1 "$work/xmppd-load" -addr "127.0.0.1:$port" -scenario muc -n "$size" -user 'load%d' -resource r \
			-room "load$size@conference.localhost" -senders "$senders" -settle 3s -hold 15m \
			-mech SCRAM-SHA-1 -password "$password" -insecure -rates "$rates" -step "$step" -server-pid "$1"
		loadavg after
		# The sessions closed: let the server send the last exits.
		sleep 3
	done
}

run_xmppd() {
	local d=$work/xmppd-run
	mkdir -p "$d"
	local modules="disco, ping, version, time, roster, offline, blocking, carbons, vcard, private, last, register, push"
	[ "$archive" = on ] && modules="$modules, mam"
	local muc=""
	if [ "$scenario" = muc ]; then
		modules="$modules, muc"
		# The default (60 messages a minute per occupant, bursts of 10)
		# would refuse the senders' messages at the higher rates; and a
		# room holds 1000 occupants by default.
		muc="module_options:
  muc:
    message_rate: 100000000
    message_burst: 100000000
    max_occupants: $((n > 1000 ? n : 1000))"
	fi
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
$muc
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
	[ "$scenario" = muc ] && echo 'Component "conference.localhost" "muc"' >>"$d/prosody.cfg.lua"
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
	local muc=""
	# mod_muc's default max_users (200 occupants, for the service and a
	# new room) would refuse the larger rooms; it has no message limit
	# by default (min_message_interval: 0).
	[ "$scenario" = muc ] && muc="  mod_muc: {max_users: $n, default_room_options: {max_users: $n}}"
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
$muc
YAML
	# The accounts, imported in one command (XEP-0227): one ejabberdctl
	# call per account takes a second of CPU each.
	{
		echo "<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'>"
		for i in $(seq 0 $((n - 1))); do echo "<user name='load$i' password='$password'/>"; done
		echo "</host></server-data>"
	} >"$d/conf/accounts.xml"
	chown -R ejabberd:ejabberd "$d"
	local ctl=(env ERL_DIST_PORT=$((port + 1)) ejabberdctl --config-dir "$d/conf" --logs "$d/logs" --spool "$d/spool" --node "$node")
	taskset -c 0 "${ctl[@]}" start
	stop_server="${ctl[*]} stop"
	"${ctl[@]}" started
	"${ctl[@]}" import_piefxis "$d/conf/accounts.xml" >/dev/null
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
