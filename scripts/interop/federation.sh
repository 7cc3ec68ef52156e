#!/usr/bin/env bash
# Interop test: federation (s2s) between xmppd, Prosody and ejabberd.
#
#   scripts/interop/federation.sh            # as root; exit 0 = pass
#   PEERS_ONLY=1 scripts/interop/federation.sh   # Prosody <-> ejabberd only
#
# Debian's prosody (0.12) and ejabberd (23.01) are installed with apt-get if
# missing (a /usr/sbin/policy-rc.d that exits 101 keeps their post-install
# scripts from starting the system services; one is created for the install
# and removed afterwards if the machine has none). Each server runs on its own
# loopback address with its own domain, c2s on port 5222 and s2s on 5269:
#
#   prosody.test   127.0.0.2   Prosody, as user prosody, private config/data
#   ejabberd.test  127.0.0.3   ejabberd, as user ejabberd, private config/spool
#   xmppd.test     127.0.0.4   xmppd serve, built from this tree
#
# The names are added to /etc/hosts for the run (lines tagged with a marker,
# removed on exit; Prosody reads /etc/hosts through libunbound's hosts
# option, ejabberd through libc; xmppd is given s2s.routes). Certificates for
# the three domains (DNS:D and DNS:*.D) come from a throwaway CA made for the
# run; the clients always verify against it.
#
# Two rounds, each with fresh servers and data, prove both authentication
# methods of RFC 6120/XEP-0178 and XEP-0220:
#
#   dialback  no server trusts the CA (Prosody s2s_secure_auth=false and no
#             cafile, ejabberd without ca_file, xmppd without ca_file, with
#             auth: require_cert overridden by domain_auth: allow_dialback
#             for both peers): certificates cannot be validated, so every
#             link must authenticate with Server Dialback.
#   cert      every server trusts the CA and dialback is off (Prosody
#             s2s_secure_auth=true without mod_dialback, ejabberd without
#             mod_s2s_dialback, xmppd auth: require_cert): every link must
#             authenticate with SASL EXTERNAL.
#
# In each round, for each pair of servers (xmppd-prosody, xmppd-ejabberd and,
# as a control of the harness, prosody-ejabberd), federation.py logs a
# slixmpp user in on each server (STARTTLS, certificate verified against the
# CA, slixmpp's default SASL settings), exchanges a chat message both ways (exact bodies)
# and completes a mutual presence subscription (both rosters end with
# subscription 'both'; each receives the other's available presence). Then
# the servers' logs must show that the link between the pair, in both
# directions, was authenticated with the round's method (Prosody: a small
# plugin logs each s2s-authenticated event; ejabberd: its "Accepted
# inbound/outbound s2s <Mech> authentication" lines; xmppd: the lines named
# by XMPPD_S2S_IN_RE/XMPPD_S2S_OUT_RE below). Everything is stopped on exit,
# whatever happens (Prosody and xmppd by pid, ejabberd with ejabberdctl stop
# and then by the pid it wrote), /etc/hosts loses our lines; all logs are
# printed on failure, ejabberd's without its debug entries.
#
# Group chat (issue 12), once a round with all three servers: each runs
# its multi-user chat service with its defaults on conference.DOMAIN
# (Prosody: Component "conference.prosody.test" "muc"; ejabberd: mod_muc;
# xmppd: the muc module), the subdomains are in /etc/hosts and in xmppd's
# s2s.routes (and, in the dialback round, in its domain_auth: both are per
# domain, a subdomain is a domain of its own). federation_muc.py has
# Prosody's and ejabberd's users join a room on conference.xmppd.test over
# s2s, chat there with xmppd's user (exact bodies every way), lose voice
# (ejabberd's user) and get kicked (Prosody's user) by xmppd's owner and see
# it; xmppd's user joins a room on conference.prosody.test and one on
# conference.ejabberd.test and chats there. Then xmppd's log must show the
# streams between conference.xmppd.test and the peers' domains, and between
# xmppd.test and the peers' conference services, both ways, authenticated
# with the round's method.
#
# Needs root, and 127.0.0.2-4 ports 5222/5269 (5270 for xmppd) free: it stops
# at once if anything listens there. A lock file makes concurrent runs wait.
# Prosody runs via setpriv (so that $! is Prosody itself); ejabberd and
# ejabberdctl use ERL_DIST_PORT, so no epmd is started or asked.
#
# Environment:
#   PEERS_ONLY=1          only Prosody <-> ejabberd (no xmppd; checks the harness)
#   FED_PAIRS="a-b ..."   pairs to test (default: xmppd-prosody xmppd-ejabberd
#                         prosody-ejabberd; with PEERS_ONLY=1: prosody-ejabberd)
#   FED_ROUNDS="..."      rounds to run (default: dialback cert)
#   XMPPD_BIN=PATH        use this xmppd binary instead of building one
#   INTEROP_KEEP=1        keep the temporary directory (printed) afterwards
#   INTEROP_DEBUG=1       slixmpp debug log (the XML) into the client logs
#   FED_STEP_TIMEOUT=S    limit for each client step (default 20; a pair's client
#                         run is killed after 6 times that)
#   FED_DEADLINE=S        no new pair is started after S seconds (default 400)
#   FED_MUC=0             leave out the group chat run
#   FED_TOTAL_TIMEOUT=S   watchdog: SIGTERM to the run after S seconds (default 560)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INTEROP_NAME=federation.sh
# From lib.bash: REPO, POLICY, PY, TMP, BIN, CREATED_POLICY, FAILED, die,
# interop_rand, interop_build_xmppd, interop_remove_tmp. Its single-server
# part (interop_init, the servers' start and stop) is not used here.
# shellcheck source=lib.bash
. "$HERE/lib.bash"
unset DOMAIN # lib.bash's one test domain; here an array, one per server
# shellcheck source=federation_ca.bash
. "$HERE/federation_ca.bash"

HOSTS_FILE=/etc/hosts
HOSTS_MARK="# xmppd-interop-federation"
LOCK_FILE=/run/lock/xmppd-interop-federation.lock
STEP_TIMEOUT=${FED_STEP_TIMEOUT:-20}
DEADLINE=${FED_DEADLINE:-400}
T0=$(date +%s)

# Servers: domain, loopback address, ports, user, and a SASL mechanism to pin
# its users to (empty: slixmpp's defaults, as users run it).
declare -A DOMAIN=([prosody]=prosody.test [ejabberd]=ejabberd.test [xmppd]=xmppd.test)
declare -A ADDR=([prosody]=127.0.0.2 [ejabberd]=127.0.0.3 [xmppd]=127.0.0.4)
declare -A MECH=([prosody]= [ejabberd]= [xmppd]=) # empty: slixmpp chooses, with its default settings
# Each server's multi-user chat service (XEP-0045), on a subdomain of its own.
declare -A MUC=([prosody]=conference.prosody.test [ejabberd]=conference.ejabberd.test [xmppd]=conference.xmppd.test)
C2S_PORT=5222
S2S_PORT=5269
S2S_TLS_PORT=5270 # xmppd only: direct TLS (XEP-0368)

# ---------------------------------------------------------------------------
# xmppd's log lines for an authenticated s2s stream (s2s/in.go, s2s/out.go;
# log.format text). Change these if that wording changes:
#   inbound:  msg="s2s inbound stream authenticated" ... remote=D ... auth=dialback
#   outbound: msg="s2s stream ready" direction=out ... remote=D auth="SASL EXTERNAL"
XMPPD_S2S_IN_RE=${XMPPD_S2S_IN_RE:-'msg="s2s inbound stream authenticated"'}
XMPPD_S2S_OUT_RE=${XMPPD_S2S_OUT_RE:-'msg="s2s stream ready"'}
# ---------------------------------------------------------------------------

log() { printf '[%s %s +%ds] %s\n' "$INTEROP_NAME" "$(date +%H:%M:%S)" "$(($(date +%s) - T0))" "$*"; }

HOSTS_ADDED=""
PROSODY_PID=""
XMPPD_PID=""
EJ_PID=""
EJCTL=()
EPMD_BEFORE=""
RESULTS=()
FAILURES=()

fail_note() {
	FAILURES+=("$*")
	log "FAIL: $*"
}

# --- stopping and cleaning up ---------------------------------------------------
stop_pid() { # name pid [grace seconds]
	local name=$1 pid=$2 grace=${3:-10}
	[ -n "$pid" ] || return 0
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	local i
	for ((i = 0; i < grace * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$name (pid $pid) did not stop within ${grace}s of SIGTERM; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

stop_prosody() {
	[ -n "$PROSODY_PID" ] || return 0
	stop_pid prosody "$PROSODY_PID" 10
	PROSODY_PID=""
}

stop_xmppd() {
	[ -n "$XMPPD_PID" ] || return 0
	stop_pid xmppd "$XMPPD_PID" 10
	XMPPD_PID=""
}

stop_ejabberd() {
	[ "${#EJCTL[@]}" -gt 0 ] || return 0
	if [ -n "$EJ_PID" ] && kill -0 "$EJ_PID" 2>/dev/null; then
		timeout -k 5 30 "${EJCTL[@]}" stop >/dev/null 2>&1 || log "ejabberdctl stop failed"
		local i
		for ((i = 0; i < 150; i++)); do
			kill -0 "$EJ_PID" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$EJ_PID" 2>/dev/null; then
			log "ejabberd (beam pid $EJ_PID) still running 15 s after ejabberdctl stop; killing it"
			kill -KILL "$EJ_PID" 2>/dev/null || true
		fi
	fi
	EJ_PID=""
	EJCTL=()
	# ERL_DIST_PORT keeps ejabberd and ejabberdctl away from epmd. Should an
	# epmd of user ejabberd have appeared during the run anyway, say so (it
	# is not stopped here: it could belong to someone else's ejabberd).
	local p
	for p in $(pgrep -u ejabberd -x epmd || true); do
		case " $(echo $EPMD_BEFORE) " in *" $p "*) continue ;; esac
		log "warning: an epmd of user ejabberd (pid $p) appeared during the run"
	done
}

stop_all() {
	stop_xmppd
	stop_prosody
	stop_ejabberd
}

hosts_remove() {
	# Drop our tagged lines; written in place (/etc/hosts may be a bind mount).
	grep -q -F "$HOSTS_MARK" "$HOSTS_FILE" 2>/dev/null || return 0
	local tmp
	tmp=$(mktemp)
	grep -v -F "$HOSTS_MARK" "$HOSTS_FILE" >"$tmp" || true
	cat "$tmp" >"$HOSTS_FILE"
	rm -f "$tmp"
}

print_file() { # title path
	[ -s "$2" ] || return 0
	local n
	n=$(wc -l <"$2")
	echo "----- $1 ($2, $n lines) -----"
	if [ "$n" -gt 3000 ]; then
		head -n 1000 "$2"
		echo "[... $((n - 2000)) lines left out ...]"
		tail -n 1000 "$2"
	else
		cat "$2"
	fi
	echo "----- end of $1 -----"
}

# ejabberd's debug log is mostly hook traces and Erlang term dumps: keep the
# entries above debug (the XML traces are "notice"); the whole file stays in
# the temporary directory with INTEROP_KEEP=1.
ejabberd_log_filter() {
	awk '/^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] / { keep = ($0 !~ / \[debug\] /) } keep' "$1"
}

print_logs() {
	local f
	for f in "$TMP"/*/*/*.log "$TMP"/*/*/*.stdout "$TMP"/*/clients/*; do
		[ -f "$f" ] || continue
		print_file "${f#"$TMP"/}" "$f"
	done
	for f in "$TMP"/*/ejabberd/logs/*.log; do
		[ -f "$f" ] || continue
		ejabberd_log_filter "$f" >"$f.nodebug"
		print_file "${f#"$TMP"/} without its debug entries" "$f.nodebug"
	done
}

print_summary() {
	[ "${#RESULTS[@]}" -gt 0 ] || return 0
	log "summary:"
	printf '    %s\n' "${RESULTS[@]}"
	[ "${#FAILURES[@]}" = 0 ] || printf '    failure: %s\n' "${FAILURES[@]}"
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	[ -z "${WATCHDOG_PID:-}" ] || { pkill -P "$WATCHDOG_PID" sleep 2>/dev/null; kill "$WATCHDOG_PID" 2>/dev/null; wait "$WATCHDOG_PID" 2>/dev/null; }
	stop_all
	if [ -n "$HOSTS_ADDED" ]; then
		hosts_remove
		if [ -f "$TMP/hosts.orig" ] && ! cmp -s "$TMP/hosts.orig" "$HOSTS_FILE"; then
			log "note: $HOSTS_FILE differs from its copy taken at the start (changed by someone else meanwhile?)"
		fi
	fi
	[ -z "$CREATED_POLICY" ] || rm -f "$POLICY"
	if [ "$FAILED" = 1 ] || [ "$rc" != 0 ]; then
		[ -z "$TMP" ] || print_logs
		print_summary
		[ "$rc" != 0 ] || rc=1
		log "FAIL (exit $rc)"
	fi
	interop_remove_tmp
	exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# A watchdog: past FED_TOTAL_TIMEOUT the script and its children get SIGTERM,
# so that the EXIT trap stops the servers and prints the logs before a CI
# timeout kills everything.
TOTAL_TIMEOUT=${FED_TOTAL_TIMEOUT:-560}
MAIN_PID=$$
(
	trap - EXIT INT TERM
	sleep "$TOTAL_TIMEOUT"
	echo "[$INTEROP_NAME $(date +%H:%M:%S)] watchdog: ${TOTAL_TIMEOUT}s are over; stopping the run" >&2
	kill -TERM "$MAIN_PID" 2>/dev/null
	pkill -TERM -P "$MAIN_PID" 2>/dev/null
) </dev/null >&2 &
WATCHDOG_PID=$!

# --- 0. preconditions ------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "must run as root (apt-get, $HOSTS_FILE, starting servers as their own users)"
exec </dev/null

PAIRS=(${FED_PAIRS:-})
if [ "${#PAIRS[@]}" = 0 ]; then
	if [ "${PEERS_ONLY:-}" = 1 ]; then
		PAIRS=(prosody-ejabberd)
	else
		PAIRS=(xmppd-prosody xmppd-ejabberd prosody-ejabberd)
	fi
fi
ROUNDS=(${FED_ROUNDS:-dialback cert})
NEED_XMPPD=""
for p in "${PAIRS[@]}"; do
	case $p in
	xmppd-prosody | xmppd-ejabberd | prosody-ejabberd) ;;
	*) die "unknown pair $p in FED_PAIRS (know xmppd-prosody xmppd-ejabberd prosody-ejabberd)" ;;
	esac
	[[ $p != xmppd-* ]] || NEED_XMPPD=1
done
for r in "${ROUNDS[@]}"; do
	case $r in dialback | cert) ;; *) die "unknown round $r in FED_ROUNDS (know dialback cert)" ;; esac
done
log "rounds: ${ROUNDS[*]}; pairs: ${PAIRS[*]}"

# One run at a time: the addresses, ports and /etc/hosts lines are fixed.
mkdir -p "$(dirname "$LOCK_FILE")"
exec 9>"$LOCK_FILE"
if ! flock -n 9; then
	log "another federation.sh is running; waiting up to 120 s for it"
	flock -w 120 9 || die "another federation.sh still holds $LOCK_FILE after 120 s"
fi

# --- 1. packages -------------------------------------------------------------------
installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
ensure_packages() {
	local want=(prosody lua-unbound ejabberd python3-slixmpp) missing=() p
	for p in "${want[@]}"; do installed "$p" || missing+=("$p"); done
	if [ "${#missing[@]}" = 0 ]; then
		log "installed: prosody $(dpkg-query -W -f='${Version}' prosody), ejabberd $(dpkg-query -W -f='${Version}' ejabberd), python3-slixmpp $(dpkg-query -W -f='${Version}' python3-slixmpp)"
		return
	fi
	command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get"
	# Post-install scripts must not start the system services (ports 5222/5269).
	if [ ! -e "$POLICY" ]; then
		log "creating $POLICY (exit 101) for the install; removed afterwards"
		printf '#!/bin/sh\nexit 101\n' >"$POLICY"
		chmod 755 "$POLICY"
		CREATED_POLICY=1
	else
		local prc=0
		"$POLICY" ejabberd start >/dev/null 2>&1 || prc=$?
		[ "$prc" = 101 ] || log "warning: $POLICY exits $prc, not 101, for 'ejabberd start': the install may start system services"
	fi
	local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=120)
	if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
		log "apt-get update (${missing[*]} not in the package lists)"
		timeout 240 "${apt[@]}" update
	fi
	log "apt-get install ${missing[*]}"
	if ! timeout 300 "${apt[@]}" install -y --no-install-recommends "${missing[@]}"; then
		log "install failed; apt-get update and retry"
		timeout 240 "${apt[@]}" update
		timeout 300 "${apt[@]}" install -y --no-install-recommends "${missing[@]}"
	fi
	if [ -n "$CREATED_POLICY" ]; then
		rm -f "$POLICY"
		CREATED_POLICY=""
	fi
	for p in "${want[@]}"; do installed "$p" || die "package $p is still not installed"; done
	log "installed ${missing[*]}"
}
ensure_packages
for c in prosody prosodyctl ejabberdctl openssl setpriv ss flock; do
	command -v "$c" >/dev/null || die "$c not found"
done
"$PY" -c 'import slixmpp' 2>/dev/null || die "$PY cannot import slixmpp"

# Nothing may listen on our ports already (a system prosody/ejabberd, a
# leftover of an earlier run): it would take the connections meant for ours.
busy=$(ss -Hltn 2>/dev/null | awk -v a="${ADDR[prosody]} ${ADDR[ejabberd]} ${ADDR[xmppd]}" \
	-v p="$C2S_PORT $S2S_PORT $S2S_TLS_PORT" '
	BEGIN { na = split(a, A, " "); np = split(p, P, " ") }
	{ n = split($4, f, ":"); port = f[n]; host = substr($4, 1, length($4) - length(port) - 1)
	  for (j = 1; j <= np; j++) if (port == P[j]) {
	    if (host == "0.0.0.0" || host == "*" || host == "[::]") print $4
	    for (i = 1; i <= na; i++) if (host == A[i]) print $4 } }')
[ -z "$busy" ] || die "already listening (stop it first): $(echo $busy) — $(ss -Hltnp | grep -E ":($C2S_PORT|$S2S_PORT|$S2S_TLS_PORT) " | tr -s ' ' | head -5)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/xmppd-interop-federation.XXXXXX")
chmod 755 "$TMP" # the servers run as their own users and must reach their dirs

# --- 2. certificates -----------------------------------------------------------------
ca_make "$TMP/ca" "xmppd interop federation test CA $$" || die "cannot make the CA"
for s in prosody ejabberd xmppd; do
	ca_issue "$TMP/ca" "$TMP/certs" "${DOMAIN[$s]}" || die "cannot issue a certificate for ${DOMAIN[$s]}"
done
CA="$TMP/ca/ca.crt"
chmod 644 "$CA"
log "throwaway CA $CA issued certificates for ${DOMAIN[*]} (SAN DNS:D, DNS:*.D)"

# --- 3. names ----------------------------------------------------------------------------
for s in prosody ejabberd xmppd; do
	for name in "${DOMAIN[$s]}" "${MUC[$s]}"; do
		if grep -v -F "$HOSTS_MARK" "$HOSTS_FILE" | grep -v '^[[:space:]]*#' | grep -qw -F "$name"; then
			die "$HOSTS_FILE already maps $name (not our line): $(grep -w -F "$name" "$HOSTS_FILE" | head -1)"
		fi
	done
done
cp -p "$HOSTS_FILE" "$TMP/hosts.orig"
hosts_remove # a leftover of an interrupted run
HOSTS_ADDED=1
for s in prosody ejabberd xmppd; do
	printf '%s %s %s %s\n' "${ADDR[$s]}" "${DOMAIN[$s]}" "${MUC[$s]}" "$HOSTS_MARK" >>"$HOSTS_FILE"
done
for s in prosody ejabberd xmppd; do
	for name in "${DOMAIN[$s]}" "${MUC[$s]}"; do
		got=$(getent ahostsv4 "$name" | awk 'NR == 1 { print $1 }')
		[ "$got" = "${ADDR[$s]}" ] || die "$name resolves to '${got}' after adding it to $HOSTS_FILE, want ${ADDR[$s]}"
	done
done
log "$HOSTS_FILE: $(for s in prosody ejabberd xmppd; do printf '%s=%s ' "${DOMAIN[$s]}" "${ADDR[$s]}"; done)"

# --- 4. xmppd ------------------------------------------------------------------------------
[ -z "$NEED_XMPPD" ] || interop_build_xmppd

# --- helpers ----------------------------------------------------------------------------------
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

listening() { # addr port
	[ -n "$(ss -Hltn "src $1:$2" 2>/dev/null)" ]
}

wait_listening() { # name pid-var-value addr port... ; 30 s
	local name=$1 pid=$2 addr=$3
	shift 3
	local i p ok
	for ((i = 0; i < 300; i++)); do
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			log "$name exited during start-up"
			return 1
		fi
		ok=1
		for p in "$@"; do listening "$addr" "$p" || ok=""; done
		[ -z "$ok" ] || return 0
		sleep 0.1
	done
	log "$name is not listening on $addr:{$*} after 30 s"
	return 1
}

declare -A USER PASS JID
for s in prosody ejabberd xmppd; do
	USER[$s]="${s}_user"
	JID[$s]="${s}_user@${DOMAIN[$s]}"
done

# --- Prosody ---------------------------------------------------------------------------------
start_prosody() { # round dir
	local round=$1 dir=$2/prosody d=${DOMAIN[prosody]} a=${ADDR[prosody]}
	mkdir -p "$dir/data" "$dir/plugins" "$dir/certs"
	cp "$TMP/certs/$d.crt" "$TMP/certs/$d.key" "$dir/certs/"
	cp "$CA" "$dir/certs/ca.crt"
	# Logs the method of every authenticated s2s stream, for the checks.
	cat >"$dir/plugins/mod_interop_s2s_auth.lua" <<'EOF'
-- xmppd interop test: log how each s2s stream was authenticated.
module:hook("s2s-authenticated", function(event)
	local session = event.session;
	module:log("info", "interop-s2s-auth direction=%s local=%s remote=%s mechanism=%s",
		tostring(session.direction), module.host, tostring(event.host), tostring(event.mechanism));
end, 10);
EOF
	local secure cafile disabled
	if [ "$round" = cert ]; then
		secure=true
		cafile="cafile = \"$dir/certs/ca.crt\";"
		disabled='"dialback"'
	else
		secure=false
		cafile="-- no cafile: the test CA is not trusted, certificates cannot be validated"
		disabled=''
	fi
	cat >"$dir/prosody.cfg.lua" <<EOF
-- Prosody for the xmppd federation interop test, round $round.
pidfile = "$dir/prosody.pid"
data_path = "$dir/data"
plugin_paths = { "$dir/plugins" }
log = { { levels = { min = "debug" }, to = "file", filename = "$dir/prosody.log" } }
interfaces = { "$a" }
c2s_interfaces = { "$a" }
s2s_interfaces = { "$a" }
c2s_ports = { $C2S_PORT }
s2s_ports = { $S2S_PORT }
c2s_direct_tls_ports = { }
s2s_direct_tls_ports = { }
modules_enabled = { "roster", "saslauth", "tls", "dialback", "disco", "ping", "posix", "interop_s2s_auth" }
modules_disabled = { $disabled }
authentication = "internal_hashed"
storage = "internal"
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = $secure
-- Resolve the test domains from /etc/hosts (libunbound's hosts option);
-- .test SRV queries then end at once with NXDOMAIN: port 5269 of the A record.
unbound = { hoststxt = "$HOSTS_FILE" }
VirtualHost "$d"
	ssl = {
		certificate = "$dir/certs/$d.crt";
		key = "$dir/certs/$d.key";
		$cafile
	}
-- Multi-user chat with Prosody's defaults; the certificate (DNS:*.$d) is
-- the VirtualHost's.
Component "${MUC[prosody]}" "muc"
	ssl = {
		certificate = "$dir/certs/$d.crt";
		key = "$dir/certs/$d.key";
		$cafile
	}
EOF
	chown -R prosody:prosody "$dir"
	chmod 600 "$dir/certs/$d.key"
	local asp=(setpriv --reuid=prosody --regid=prosody --init-groups --)
	"${asp[@]}" env HOME="$dir" timeout 30 prosodyctl --config "$dir/prosody.cfg.lua" \
		register "${USER[prosody]}" "$d" "${PASS[prosody]}" >"$dir/prosodyctl.stdout" 2>&1 ||
		{ cat "$dir/prosodyctl.stdout"; return 1; }
	"${asp[@]}" env HOME="$dir" prosody -F --config "$dir/prosody.cfg.lua" >"$dir/prosody.stdout" 2>&1 9>&- &
	PROSODY_PID=$!
	wait_listening prosody "$PROSODY_PID" "$a" "$C2S_PORT" "$S2S_PORT" || return 1
	log "prosody $(dpkg-query -W -f='${Version}' prosody) up (pid $PROSODY_PID) on $a:$C2S_PORT/$S2S_PORT, user ${JID[prosody]}, s2s_secure_auth=$secure"
}

# --- ejabberd --------------------------------------------------------------------------------
start_ejabberd() { # round dir
	local round=$1 dir=$2/ejabberd d=${DOMAIN[ejabberd]} a=${ADDR[ejabberd]}
	mkdir -p "$dir/etc" "$dir/spool" "$dir/logs"
	cp "$TMP/certs/$d.pem" "$dir/etc/"
	cp "$CA" "$dir/etc/ca.crt"
	local node="fed$$${round}@localhost" dist_port
	dist_port=$(free_port)
	# ejabberdctl sources this file; ERL_DIST_PORT makes the node listen on
	# that port with no epmd (never started, never asked).
	cat >"$dir/etc/ejabberdctl.cfg" <<EOF
ERLANG_NODE=$node
ERL_DIST_PORT=$dist_port
INET_DIST_INTERFACE=127.0.0.1
ERL_OPTIONS="-setcookie interop$(interop_rand)"
EJABBERD_PID_PATH=$dir/spool/ejabberd.pid
EJABBERD_BYPASS_WARNINGS=true
EOF
	# Name resolution of the Erlang VM: SRV queries go to no name server (an
	# empty resolv.conf: NXDOMAIN at once, hermetic), addresses come from
	# /etc/hosts, then libc.
	: >"$dir/etc/resolv.conf"
	cat >"$dir/etc/inetrc" <<EOF
{resolv_conf, "$dir/etc/resolv.conf"}.
{hosts_file, "$HOSTS_FILE"}.
{lookup, [file, native]}.
EOF
	local ca_line dialback
	if [ "$round" = cert ]; then
		ca_line="ca_file: $dir/etc/ca.crt"
		dialback="# mod_s2s_dialback is off: SASL EXTERNAL is the only s2s authentication"
	else
		ca_line="# no ca_file: the test CA is not trusted, certificates cannot be validated"
		dialback="mod_s2s_dialback: {}"
	fi
	cat >"$dir/etc/ejabberd.yml" <<EOF
# ejabberd for the xmppd federation interop test, round $round.
hosts: [$d]
loglevel: debug
log_rotate_count: 0
hide_sensitive_log_data: false
certfiles: [$dir/etc/$d.pem]
$ca_line
listen:
  - {port: $C2S_PORT, ip: "$a", module: ejabberd_c2s, starttls_required: true, access: c2s}
  - {port: $S2S_PORT, ip: "$a", module: ejabberd_s2s_in}
s2s_use_starttls: required
s2s_access: s2s
s2s_dns_timeout: 3
s2s_dns_retries: 1
outgoing_s2s_families: [ipv4]
outgoing_s2s_timeout: 15
auth_method: internal
auth_password_format: scram
auth_scram_hash: sha256
acl:
  local: {user_regexp: ""}
access_rules:
  c2s: {allow: all}
  s2s: {allow: all}
  local: {allow: local}
modules:
  mod_roster: {}
  mod_disco: {}
  mod_ping: {}
  mod_muc: {host: ${MUC[ejabberd]}} # ejabberd's defaults otherwise
  $dialback
EOF
	chown -R ejabberd:ejabberd "$dir"
	EJCTL=(ejabberdctl --config-dir "$dir/etc" --logs "$dir/logs" --spool "$dir/spool" --node "$node")
	EPMD_BEFORE=$(pgrep -u ejabberd -x epmd || true)
	timeout -k 5 30 "${EJCTL[@]}" start >"$dir/ejabberdctl.stdout" 2>&1 9>&- || { cat "$dir/ejabberdctl.stdout"; return 1; }
	local i
	for ((i = 0; i < 300; i++)); do
		[ -n "$EJ_PID" ] || EJ_PID=$(cat "$dir/spool/ejabberd.pid" 2>/dev/null || true)
		if grep -q "is started in the node" "$dir/logs/ejabberd.log" 2>/dev/null &&
			listening "$a" "$C2S_PORT" && listening "$a" "$S2S_PORT"; then
			break
		fi
		sleep 0.1
	done
	[ -n "$EJ_PID" ] || { log "ejabberd wrote no pid file"; return 1; }
	listening "$a" "$S2S_PORT" || { log "ejabberd is not listening on $a:$C2S_PORT/$S2S_PORT after 30 s"; return 1; }
	timeout -k 5 30 "${EJCTL[@]}" register "${USER[ejabberd]}" "$d" "${PASS[ejabberd]}" >>"$dir/ejabberdctl.stdout" 2>&1 ||
		{ cat "$dir/ejabberdctl.stdout"; return 1; }
	log "ejabberd $(dpkg-query -W -f='${Version}' ejabberd) up (beam pid $EJ_PID, node $node, dist port $dist_port) on $a:$C2S_PORT/$S2S_PORT, user ${JID[ejabberd]}, $([ "$round" = cert ] && echo 'CA trusted, no dialback' || echo 'CA not trusted, dialback')"
}

# --- xmppd -------------------------------------------------------------------------------------
start_xmppd() { # round dir
	local round=$1 dir=$2/xmppd d=${DOMAIN[xmppd]} a=${ADDR[xmppd]}
	mkdir -p "$dir/data"
	local ca_file auth domain_auth
	if [ "$round" = cert ]; then
		ca_file="$CA"
		domain_auth="{}"
	else
		ca_file=""
		domain_auth="{${DOMAIN[prosody]}: allow_dialback, ${DOMAIN[ejabberd]}: allow_dialback, ${MUC[prosody]}: allow_dialback, ${MUC[ejabberd]}: allow_dialback}"
	fi
	cat >"$dir/xmppd.yaml" <<EOF
# xmppd for the federation interop test, round $round.
data_dir: $dir/data
hosts:
  - domain: $d
    cert: $TMP/certs/$d.crt
    key: $TMP/certs/$d.key
listeners:
  - {type: c2s, address: "$a:$C2S_PORT"}
  - {type: s2s, address: "$a:$S2S_PORT"}
  - {type: s2s_tls, address: "$a:$S2S_TLS_PORT"}
storage:
  sqlite: $dir/data/xmppd.db
modules: [disco, ping, version, time, roster, muc]
s2s:
  enabled: true
  routes:
    ${DOMAIN[prosody]}: "${ADDR[prosody]}:$S2S_PORT"
    ${DOMAIN[ejabberd]}: "${ADDR[ejabberd]}:$S2S_PORT"
    ${MUC[prosody]}: "${ADDR[prosody]}:$S2S_PORT"
    ${MUC[ejabberd]}: "${ADDR[ejabberd]}:$S2S_PORT"
  ca_file: "$ca_file"
  auth: require_cert
  domain_auth: $domain_auth
  dialback_secret: "$(interop_rand)"
  connect_timeout: 10s
log:
  level: debug
  format: text
EOF
	"$BIN" config check --config "$dir/xmppd.yaml" >"$dir/config-check.stdout" 2>&1 ||
		{ cat "$dir/config-check.stdout"; log "xmppd config check rejected $dir/xmppd.yaml"; return 1; }
	printf '%s\n' "${PASS[xmppd]}" | timeout 30 "$BIN" user add "${JID[xmppd]}" --password-stdin \
		--config "$dir/xmppd.yaml" >"$dir/useradd.stdout" 2>&1 ||
		{ cat "$dir/useradd.stdout"; log "xmppd user add failed"; return 1; }
	"$BIN" serve --config "$dir/xmppd.yaml" >"$dir/xmppd.stdout" 2>"$dir/xmppd.log" 9>&- &
	XMPPD_PID=$!
	wait_listening xmppd "$XMPPD_PID" "$a" "$C2S_PORT" "$S2S_PORT" || return 1
	log "xmppd up (pid $XMPPD_PID) on $a:$C2S_PORT/$S2S_PORT (+$S2S_TLS_PORT direct TLS), user ${JID[xmppd]}, s2s auth require_cert, domain_auth $domain_auth, ca_file '${ca_file}'"
}

# --- auth evidence in the logs ----------------------------------------------------------------
# prosody_auth LOG REMOTE DIRECTION -> mechanisms seen (space separated)
prosody_auth() {
	sed -n "s/.*interop-s2s-auth direction=$3 local=[^ ]* remote=${2//./\\.} mechanism=\([^ ]*\).*/\1/p" "$1" | sort -u | tr '\n' ' '
}

# ejabberd_auth LOG REMOTE DIRECTION -> mechanisms seen (space separated), from
#   "Accepted inbound s2s <Mech> authentication <remote> -> <local> (<ip>)"
#   "Accepted outbound s2s <Mech> authentication <local> -> <remote> (<ip>)"
ejabberd_auth() {
	local re d=${2//./\\.}
	if [ "$3" = incoming ]; then
		re="s/.*Accepted inbound s2s \(.*\) authentication $d -> [^ ]* .*/\1/p"
	else
		re="s/.*Accepted outbound s2s \(.*\) authentication [^ ]* -> $d .*/\1/p"
	fi
	sed -n "$re" "$1" | sort -u | tr '\n' ' '
}

# xmppd_auth LOG REMOTE DIRECTION -> mechanisms seen ("SASL EXTERNAL" -> EXTERNAL)
xmppd_auth() {
	local re=$XMPPD_S2S_IN_RE
	[ "$3" = incoming ] || re=$XMPPD_S2S_OUT_RE
	grep -F -- "$re" "$1" 2>/dev/null | grep -E " remote=${2//./\\.}( |\$)" | grep -E -- "$([ "$3" = incoming ] && echo ' direction=in ' || echo ' direction=out ')" |
		sed -n 's/.* auth=\("[^"]*"\|[^ ]*\).*/\1/p' | tr -d '"' | sed 's/^SASL EXTERNAL$/EXTERNAL/' |
		sort -u | tr '\n' ' '
}

check_auth() { # round a b dir -> 0 if the logs show the round's method on the a<->b link
	local round=$1 a=$2 b=$3 dir=$4 ok=0 s other got want direction od evidence
	[ "$round" = cert ] && want=EXTERNAL || want=dialback
	for s in "$a" "$b"; do
		[ "$s" = "$a" ] && other=$b || other=$a
		od=${DOMAIN[$other]}
		for direction in incoming outgoing; do
			case $s in
			prosody)
				got=$(prosody_auth "$dir/prosody/prosody.log" "$od" "$direction")
				evidence="prosody.log: interop-s2s-auth"
				;;
			ejabberd)
				got=$(ejabberd_auth "$dir/ejabberd/logs/ejabberd.log" "$od" "$direction")
				evidence="ejabberd.log"
				;;
			xmppd)
				got=$(xmppd_auth "$dir/xmppd/xmppd.log" "$od" "$direction")
				evidence="xmppd.log"
				;;
			esac
			if [ "$got" = "$want " ]; then
				log "  auth: $s $direction $od: $want ($evidence)"
			else
				fail_note "$round $a-$b: $s $direction s2s with $od authenticated by '${got% }', want '$want'"
				ok=1
			fi
		done
	done
	return $ok
}

# xmppd_link_auth LOG in|out LOCAL REMOTE -> how xmppd authenticated the
# stream between its LOCAL domain and REMOTE, in that direction
# ("SASL EXTERNAL" -> EXTERNAL; space separated if several).
xmppd_link_auth() {
	local log=$1 dir=$2 l=${3//./\\.} r=${4//./\\.}
	if [ "$dir" = in ]; then
		# Dialback authenticates a domain pair (domain= local=); SASL
		# EXTERNAL the peer's domain for the stream, whatever its 'to'.
		grep -F -- "$XMPPD_S2S_IN_RE" "$log" | grep -E " remote=$r " | grep -E " domain=$r local=$l auth=| remote=$r auth=\"SASL EXTERNAL\""
	else
		grep -F -- "$XMPPD_S2S_OUT_RE" "$log" | grep -E " direction=out local=$l remote=$r auth="
	fi | sed -n 's/.* auth=\("[^"]*"\|[^ ]*\).*/\1/p' | tr -d '"' | sed 's/^SASL EXTERNAL$/EXTERNAL/' | sort -u | tr '\n' ' '
}

# check_muc_links ROUND LOG: the streams of the group chat, between xmppd's
# conference service and the peers' domains and between xmppd's domain and
# the peers' conference services, both ways, authenticated with the round's
# method (xmppd's log).
check_muc_links() {
	local round=$1 log=$2 want ok=0 peer local remote dir got
	[ "$round" = cert ] && want=EXTERNAL || want=dialback
	for peer in prosody ejabberd; do
		for local in "${MUC[xmppd]}:${DOMAIN[$peer]}" "${DOMAIN[xmppd]}:${MUC[$peer]}"; do
			remote=${local#*:} local=${local%%:*}
			for dir in in out; do
				got=$(xmppd_link_auth "$log" "$dir" "$local" "$remote")
				if [ "$got" = "$want " ]; then
					log "  auth: xmppd $dir $local<->$remote: $want (xmppd.log)"
				else
					fail_note "$round muc: xmppd $dir stream $local<->$remote authenticated by '${got% }', want '$want'"
					ok=1
				fi
			done
		done
	done
	return $ok
}

# --- group chat ----------------------------------------------------------------------------
# run_muc ROUND DIR: federation_muc.py with a user of each server: xmppd's
# room with Prosody's and ejabberd's users, their rooms with xmppd's user.
run_muc() {
	local round=$1 dir=$2 rc
	if [ $(($(date +%s) - T0)) -gt "$DEADLINE" ]; then
		fail_note "$round muc: not run, past the ${DEADLINE}s deadline"
		RESULTS+=("FAIL  $round  muc  (not run: deadline)")
		return
	fi
	log "--- $round: group chat: ${MUC[xmppd]} with ${JID[prosody]} and ${JID[ejabberd]}; ${JID[xmppd]} in ${MUC[prosody]} and ${MUC[ejabberd]} ---"
	set +e
	XMPP_PASSWORD_X=${PASS[xmppd]} XMPP_PASSWORD_P=${PASS[prosody]} XMPP_PASSWORD_E=${PASS[ejabberd]} \
		timeout -k 5 $((STEP_TIMEOUT * 8)) "$PY" "$HERE/federation_muc.py" \
		--label "$round" --ca-file "$CA" --step-timeout "$STEP_TIMEOUT" \
		--timeout $((STEP_TIMEOUT * 8 - 10)) --port "$C2S_PORT" \
		--jid-x "${JID[xmppd]}/muc" --addr-x "${ADDR[xmppd]}" \
		--jid-p "${JID[prosody]}/muc" --addr-p "${ADDR[prosody]}" \
		--jid-e "${JID[ejabberd]}/muc" --addr-e "${ADDR[ejabberd]}" \
		"${debug[@]}" 2>"$dir/clients/muc.stderr"
	rc=$?
	set -e
	[ "$rc" != 124 ] && [ "$rc" != 137 ] || echo "FAIL [$round:muc]: federation_muc.py killed by timeout"
	if [ "$rc" = 0 ] && check_muc_links "$round" "$dir/xmppd/xmppd.log"; then
		RESULTS+=("ok    $round  muc")
	elif [ "$rc" = 0 ]; then
		RESULTS+=("FAIL  $round  muc  (stanzas ok; s2s auth of the conference links not as expected)")
	else
		fail_note "$round muc: client run failed (exit $rc)"
		RESULTS+=("FAIL  $round  muc  (clients: exit $rc)")
	fi
}

# --- 5. the rounds ------------------------------------------------------------------------------
debug=()
[ "${INTEROP_DEBUG:-}" = 1 ] && debug=(--debug)
for round in "${ROUNDS[@]}"; do
	RDIR="$TMP/$round"
	mkdir -p "$RDIR/clients"
	log "=== round $round ==="
	for s in prosody ejabberd xmppd; do PASS[$s]=$(interop_rand); done
	need_prosody="" need_ejabberd=""
	for p in "${PAIRS[@]}"; do
		[[ $p != *prosody* ]] || need_prosody=1
		[[ $p != *ejabberd* ]] || need_ejabberd=1
	done
	up=1
	if [ -n "$need_ejabberd" ]; then start_ejabberd "$round" "$RDIR" || { fail_note "$round: ejabberd did not start"; up=""; }; fi
	if [ -n "$up" ] && [ -n "$need_prosody" ]; then start_prosody "$round" "$RDIR" || { fail_note "$round: prosody did not start"; up=""; }; fi
	if [ -n "$up" ] && [ -n "$NEED_XMPPD" ]; then start_xmppd "$round" "$RDIR" || { fail_note "$round: xmppd did not start"; up=""; }; fi
	for p in "${PAIRS[@]}"; do
		a=${p%-*} b=${p#*-}
		if [ -z "$up" ]; then
			RESULTS+=("FAIL  $round  $p  (servers did not start)")
			continue
		fi
		if [ $(($(date +%s) - T0)) -gt "$DEADLINE" ]; then
			fail_note "$round $p: not run, past the ${DEADLINE}s deadline"
			RESULTS+=("FAIL  $round  $p  (not run: deadline)")
			continue
		fi
		log "--- $round: ${JID[$a]} (on $a) <-> ${JID[$b]} (on $b) ---"
		clog="$RDIR/clients/$p.stderr"
		set +e
		XMPP_PASSWORD_A=${PASS[$a]} XMPP_PASSWORD_B=${PASS[$b]} \
			timeout -k 5 $((STEP_TIMEOUT * 6)) "$PY" "$HERE/federation.py" \
			--label "$round:$p" --ca-file "$CA" --step-timeout "$STEP_TIMEOUT" \
			--timeout $((STEP_TIMEOUT * 6 - 10)) \
			--jid-a "${JID[$a]}/fed" --addr-a "${ADDR[$a]}" --port-a "$C2S_PORT" ${MECH[$a]:+--mech-a "${MECH[$a]}"} \
			--jid-b "${JID[$b]}/fed" --addr-b "${ADDR[$b]}" --port-b "$C2S_PORT" ${MECH[$b]:+--mech-b "${MECH[$b]}"} \
			"${debug[@]}" 2>"$clog"
		rc=$?
		set -e
		[ "$rc" != 124 ] && [ "$rc" != 137 ] || echo "FAIL [$round:$p]: federation.py killed by timeout"
		if [ "$rc" = 0 ] && check_auth "$round" "$a" "$b" "$RDIR"; then
			RESULTS+=("ok    $round  $p")
		elif [ "$rc" = 0 ]; then
			RESULTS+=("FAIL  $round  $p  (stanzas ok; s2s auth method not as expected)")
		else
			check_auth "$round" "$a" "$b" "$RDIR" || true
			fail_note "$round $p: client run failed (exit $rc)"
			RESULTS+=("FAIL  $round  $p  (clients: exit $rc)")
		fi
	done
	if [ "${FED_MUC:-1}" = 1 ] && [ -n "$up" ] && [ -n "$need_prosody" ] && [ -n "$need_ejabberd" ] && [ -n "$NEED_XMPPD" ]; then
		run_muc "$round" "$RDIR"
	fi
	stop_all
	log "round $round: servers stopped"
done

print_summary
[ "${#FAILURES[@]}" = 0 ] || exit 1
FAILED=0
log "PASS: federation (${ROUNDS[*]}) for ${PAIRS[*]} in $(($(date +%s) - T0))s"
