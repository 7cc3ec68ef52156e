# shellcheck shell=bash
# Shared code of the scripts/interop/*.sh scripts: sourced, never run. The
# name does not end in .sh on purpose: .ci/run runs every scripts/interop/*.sh.
#
#   INTEROP_NAME=my-test.sh          # log prefix and temporary directory name
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
#   interop_init                     # traps, python3-slixmpp, temp dir, xmppd binary
#   interop_write_config "disco, ping"   # the modules list (optional: more listeners, more YAML)
#   interop_config_check || die "..."
#   interop_start_server             # sets SERVER_PID, PORT (c2s/STARTTLS), CERT
#   interop_add_user alice "$PW"     # or interop_add_alice_bob (PW_A, PW_B)
#   ... run clients, with stderr to "$TMP/client.stderr" ...
#   interop_run_clients my_clients.py --timeout 50   # alice and bob (needs CLIENT_TIMEOUT)
#   interop_stop_server              # clean SIGTERM shutdown, or die
#   FAILED=0                         # success: the EXIT trap prints no logs
#
# The EXIT trap runs the function named by INTEROP_ON_EXIT (if set; stop
# the clients there), always stops the server (SIGTERM, then SIGKILL after 5 s),
# prints the server log and the client stderr unless FAILED=0 and the exit
# status is 0, and removes the temporary directory (kept with
# INTEROP_KEEP=1).
#
# Environment understood here:
#   XMPPD_BIN=PATH       use this xmppd binary instead of building one
#   INTEROP_KEEP=1       keep the temporary directory (printed) afterwards

INTEROP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$INTEROP_DIR/../.." && pwd)
: "${INTEROP_NAME:=$(basename "$0")}"
DOMAIN=interop.test
POLICY=/usr/sbin/policy-rc.d # blocks service starts by package post-install scripts
PY=/usr/bin/python3          # not the first python3 on PATH: that one may lack Debian's modules
# The python scripts import each other; keep __pycache__ out of the tree.
export PYTHONDONTWRITEBYTECODE=1

TMP=""
DATA=""
CFG=""
BIN=""
PORT=""
CERT=""
SERVER_PID=""
INTEROP_ON_EXIT="" # a function the EXIT trap runs first (stop the clients)
CREATED_POLICY=""
SUDO=""
FAILED=1

log() { printf '[%s %s] %s\n' "$INTEROP_NAME" "$(date +%H:%M:%S)" "$*"; }

die() {
	log "FAIL: $*"
	exit 1
}

# interop_kill_server: stop the server if it runs; SIGKILL after 5 s.
interop_kill_server() {
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$SERVER_PID" 2>/dev/null; then
			log "server did not stop on SIGTERM within 5 s; killing it"
			kill -KILL "$SERVER_PID" 2>/dev/null || true
		fi
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	SERVER_PID=""
}

interop_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$INTEROP_ON_EXIT" ]; then
		"$INTEROP_ON_EXIT" || true
	fi
	interop_kill_server
	if [ -n "$CREATED_POLICY" ]; then
		$SUDO rm -f "$POLICY" || true
	fi
	if [ "$FAILED" = 1 ] || [ "$rc" != 0 ]; then
		if [ -n "$TMP" ] && [ -s "$TMP/server.log" ]; then
			echo "----- xmppd server log ($TMP/server.log) -----"
			cat "$TMP/server.log"
			echo "----- end of server log -----"
		fi
		if [ -n "$TMP" ] && [ -s "$TMP/client.stderr" ]; then
			echo "----- client stderr -----"
			cat "$TMP/client.stderr"
			echo "----- end of client stderr -----"
		fi
		[ "$rc" != 0 ] || rc=1
		log "FAIL (exit $rc)"
	fi
	interop_remove_tmp
	exit "$rc"
}

# interop_remove_tmp: remove $TMP, if set; with INTEROP_KEEP=1, keep it and
# say where it is.
interop_remove_tmp() {
	[ -n "$TMP" ] || return 0
	if [ "${INTEROP_KEEP:-}" = 1 ]; then
		log "kept $TMP"
	else
		rm -rf "$TMP"
	fi
}

# interop_apt_get_install PACKAGE...: apt-get install the packages (root or
# passwordless sudo), with a policy-rc.d that keeps their post-install
# scripts from starting services (they would grab ports); apt-get update
# first if the lists lack the first one, and once more on failure.
interop_apt_get_install() {
	command -v apt-get >/dev/null || die "$* missing and there is no apt-get to install it"
	if [ "$(id -u)" != 0 ]; then
		sudo -n true 2>/dev/null || die "$* missing: install it (needs root or passwordless sudo)"
		SUDO="sudo -n"
	fi
	if [ ! -e "$POLICY" ]; then
		log "creating $POLICY (exit 101) for the install; removed afterwards"
		printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
		$SUDO chmod 755 "$POLICY"
		CREATED_POLICY=1
	fi
	local apt=($SUDO env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=120)
	if ! apt-cache show "$1" >/dev/null 2>&1; then
		log "apt-get update ($1 not in the package lists)"
		timeout 300 "${apt[@]}" update
	fi
	log "apt-get install $*"
	if ! timeout 600 "${apt[@]}" install -y --no-install-recommends "$@"; then
		log "install failed; apt-get update and retry"
		timeout 300 "${apt[@]}" update
		timeout 600 "${apt[@]}" install -y --no-install-recommends "$@"
	fi
	if [ -n "$CREATED_POLICY" ]; then
		$SUDO rm -f "$POLICY"
		CREATED_POLICY=""
	fi
}

# interop_apt_install COMMAND PACKAGE: install PACKAGE unless COMMAND is on
# PATH; die if COMMAND is still missing afterwards.
interop_apt_install() {
	if command -v "$1" >/dev/null; then
		log "$2 is installed"
		return
	fi
	interop_apt_get_install "$2"
	command -v "$1" >/dev/null || die "$2 installed but there is no $1 on PATH"
}

# ensure_slixmpp: install Debian's python3-slixmpp if $PY cannot import it.
ensure_slixmpp() {
	if "$PY" -c 'import slixmpp' 2>/dev/null; then
		log "python3-slixmpp is installed"
		return
	fi
	interop_apt_get_install python3-slixmpp
	"$PY" -c 'import slixmpp' 2>/dev/null || die "python3-slixmpp installed but $PY cannot import slixmpp"
}

# interop_init: traps, python3-slixmpp, the temporary directory (TMP, DATA,
# CFG) and the xmppd binary (BIN).
interop_init() {
	trap interop_cleanup EXIT
	trap 'log "interrupted"; exit 130' INT
	trap 'log "terminated"; exit 143' TERM

	ensure_slixmpp
	log "slixmpp $("$PY" -c 'import slixmpp; print(slixmpp.__version__)' 2>/dev/null), $("$PY" --version 2>&1)"

	TMP=$(mktemp -d "${TMPDIR:-/tmp}/xmppd-interop-${INTEROP_NAME%.sh}.XXXXXX")
	DATA="$TMP/data"
	CFG="$TMP/xmppd.yaml"
	mkdir -p "$DATA"

	interop_build_xmppd
}

# interop_build_xmppd: set BIN to $XMPPD_BIN, or build xmppd from this tree
# into $TMP/xmppd.
interop_build_xmppd() {
	if [ -n "${XMPPD_BIN:-}" ]; then
		BIN=$XMPPD_BIN
		[ -x "$BIN" ] || die "XMPPD_BIN=$BIN is not executable"
		log "using xmppd binary $BIN"
	else
		BIN="$TMP/xmppd"
		log "building xmppd (go build ./cmd/xmppd)"
		(cd "$REPO" && go build -o "$BIN" ./cmd/xmppd) || die "go build failed"
	fi
}

# interop_write_config MODULES [LISTENERS [EXTRA]]: write $CFG for $DOMAIN
# (self-signed certificate), loopback c2s and c2s_tls listeners on
# kernel-picked ports, SQLite in $DATA, the given modules (a YAML flow list's
# contents, e.g. "disco, ping") and debug logging. LISTENERS names more
# listener types (e.g. "https"), each on 127.0.0.1:0 (interop_listener_port
# reads the port); EXTRA is YAML appended as it is (top-level blocks such as
# web: or module_options:).
interop_write_config() {
	local l
	{
		cat <<EOF
data_dir: $DATA
hosts:
  - domain: $DOMAIN   # empty cert/key: self-signed, written to data_dir
    cert: ""
    key: ""
listeners:
  - type: c2s
    address: "127.0.0.1:0"
  - type: c2s_tls
    address: "127.0.0.1:0"
EOF
		for l in ${2:-}; do
			printf '  - type: %s\n    address: "127.0.0.1:0"\n' "$l"
		done
		cat <<EOF
storage:
  sqlite: $DATA/xmppd.db
modules: [$1]
log:
  level: debug
  format: text
EOF
		[ -z "${3:-}" ] || printf '%s\n' "$3"
	} >"$CFG"
}

# interop_listener_port TYPE: the port of the first listener of TYPE that
# the running server logged (after interop_start_server); dies if there is
# none within 10 s.
interop_listener_port() {
	local p
	for _ in $(seq 100); do
		p=$(sed -n "s/.*msg=listening type=$1 address=[^ ]*:\([0-9][0-9]*\)\( .*\)\{0,1\}\$/\1/p" "$TMP/server.log" | head -n1)
		if [ -n "$p" ] && [ "$p" != 0 ]; then
			printf '%s\n' "$p"
			return 0
		fi
		sleep 0.1
	done
	die "xmppd did not log a $1 listener within 10 s"
}

# interop_config_check: `xmppd config check`; its error output is left in
# $TMP/config-check.err (and shown) on failure.
interop_config_check() {
	if "$BIN" config check --config "$CFG" >/dev/null 2>"$TMP/config-check.err"; then
		log "config $CFG ok (domain $DOMAIN, data $DATA)"
		return 0
	fi
	log "xmppd config check rejected $CFG: $(cat "$TMP/config-check.err")"
	return 1
}

# interop_start_server: start `xmppd serve` and wait (30 s at most) for its
# listeners; sets SERVER_PID, PORT (c2s, STARTTLS) and CERT (the generated
# self-signed certificate).
interop_start_server() {
	"$BIN" serve --config "$CFG" >"$TMP/server.stdout" 2>"$TMP/server.log" &
	SERVER_PID=$!
	log "started xmppd serve (pid $SERVER_PID)"

	PORT=""
	for _ in $(seq 300); do # 30 s
		kill -0 "$SERVER_PID" 2>/dev/null || die "xmppd exited during start-up"
		PORT=$(sed -n 's/.*msg=listening type=c2s address=[^ ]*:\([0-9][0-9]*\)\( .*\)\{0,1\}$/\1/p' "$TMP/server.log" | head -n1)
		if [ -n "$PORT" ] && grep -q 'msg=listening type=c2s_tls ' "$TMP/server.log"; then
			break
		fi
		PORT=""
		sleep 0.1
	done
	[ -n "$PORT" ] || die "xmppd did not log its c2s listener within 30 s"
	[ "$PORT" != 0 ] || die "xmppd logged port 0 instead of the bound port"
	log "xmppd listening: c2s (STARTTLS) on 127.0.0.1:$PORT"
	CERT="$DATA/$DOMAIN.crt"
	[ -s "$CERT" ] || die "no generated certificate at $CERT"
}

# interop_rand: a random hex string (passwords).
interop_rand() { od -An -tx1 -N12 /dev/urandom | tr -d ' \n'; }

# interop_add_user NAME PASSWORD: add NAME@$DOMAIN.
interop_add_user() {
	printf '%s\n' "$2" | timeout 30 "$BIN" user add "$1@$DOMAIN" --password-stdin --config "$CFG" >/dev/null ||
		die "xmppd user add $1@$DOMAIN failed"
	log "added user $1@$DOMAIN"
}

# interop_add_alice_bob: add alice@$DOMAIN and bob@$DOMAIN with random
# passwords, left in PW_A and PW_B.
interop_add_alice_bob() {
	PW_A=$(interop_rand)
	PW_B=$(interop_rand)
	interop_add_user alice "$PW_A"
	interop_add_user bob "$PW_B"
}

# interop_run_clients SCRIPT ARGS...: run the python SCRIPT of this
# directory with $PY as alice@$DOMAIN/slix-a and bob@$DOMAIN/slix-b
# (passwords PW_A and PW_B, in the environment) against the server: --port,
# --jid-a, --jid-b and --ca-file, then ARGS, then --debug with
# INTEROP_DEBUG=1. Its stderr goes to $TMP/client.stderr (shown with
# INTEROP_DEBUG=1); it is killed after $CLIENT_TIMEOUT seconds. Dies unless
# SCRIPT exits 0.
interop_run_clients() {
	local script=$1 rc debug=()
	shift
	[ "${INTEROP_DEBUG:-}" = 1 ] && debug=(--debug)
	log "running $script (hard timeout ${CLIENT_TIMEOUT}s)"
	set +e
	XMPP_PASSWORD_A=$PW_A XMPP_PASSWORD_B=$PW_B timeout -k 5 "$CLIENT_TIMEOUT" \
		"$PY" "$INTEROP_DIR/$script" --port "$PORT" \
		--jid-a "alice@$DOMAIN/slix-a" --jid-b "bob@$DOMAIN/slix-b" \
		--ca-file "$CERT" "$@" "${debug[@]}" 2>"$TMP/client.stderr"
	rc=$?
	set -e
	[ "$rc" != 124 ] && [ "$rc" != 137 ] || die "$script killed after ${CLIENT_TIMEOUT}s"
	[ "$rc" = 0 ] || die "$script failed (exit $rc)"
	if [ "${INTEROP_DEBUG:-}" = 1 ]; then
		cat "$TMP/client.stderr" >&2
	fi
}

# interop_stop_server: SIGTERM; the server must exit with status 0 within
# 10 s.
interop_stop_server() {
	kill -TERM "$SERVER_PID"
	set +e
	for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$SERVER_PID" 2>/dev/null; then
		set -e
		die "xmppd did not exit within 10 s of SIGTERM"
	fi
	wait "$SERVER_PID"
	local src=$?
	set -e
	SERVER_PID=""
	[ "$src" = 0 ] || die "xmppd exited with status $src after SIGTERM"
	log "xmppd stopped cleanly on SIGTERM"
}

# interop_wait_for_text FILE TEXT SECS: wait up to SECS seconds for the
# fixed string TEXT in FILE; status 1 if it does not appear.
interop_wait_for_text() {
	local i
	for i in $(seq "$(($3 * 10))"); do
		grep -qF -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	grep -qF -- "$2" "$1" 2>/dev/null
}

# interop_sendxmpp_listen NAME PASSWORD OUT SECS: run `go-sendxmpp -d -l` as
# NAME@$DOMAIN in the background (pid in LISTEN_PID, killed after 4*SECS s
# at most), stdout and stderr (with -d: the XML) to OUT, and wait up to SECS
# seconds until the server has echoed its initial presence, so that a
# message sent afterwards cannot race it. Needs HOME and SSL_CERT_FILE set.
interop_sendxmpp_listen() {
	timeout -k 5 "$(($4 * 4))" go-sendxmpp -d -l -u "$1@$DOMAIN" -p "$2" -j "127.0.0.1:$PORT" >"$3" 2>&1 &
	LISTEN_PID=$!
	local i
	for i in $(seq "$(($4 * 10))"); do
		grep -q "<presence[^>]*to=\"$1@$DOMAIN/" "$3" && return 0
		kill -0 "$LISTEN_PID" 2>/dev/null || break
		sleep 0.1
	done
	tail -n 40 "$3" >>"$TMP/client.stderr"
	die "$1: go-sendxmpp -l not online within $4 s (or it exited)"
}

# interop_server_mechanism NAME: the SASL mechanism of NAME@$DOMAIN's first
# "c2s authenticated" line in the server log; dies if there is none.
interop_server_mechanism() {
	local mech
	mech=$(sed -n "s/.*msg=\"c2s authenticated\".*user=$1@$DOMAIN mechanism=\([^ ]*\).*/\1/p" "$TMP/server.log" | head -n1)
	[ -n "$mech" ] || die "server log has no 'c2s authenticated' line for $1@$DOMAIN"
	printf '%s\n' "$mech"
}

# interop_sendxmpp_send NAME PASSWORD TO BODY SECS: send BODY to TO with
# go-sendxmpp as NAME@$DOMAIN (SECS seconds at most); dies on failure.
interop_sendxmpp_send() {
	printf '%s\n' "$4" | timeout -k 5 "$5" go-sendxmpp -u "$1@$DOMAIN" -p "$2" \
		-j "127.0.0.1:$PORT" "$3" 2>>"$TMP/client.stderr" ||
		die "$1: go-sendxmpp to $3 failed (exit $?)"
}

# interop_log_mechanisms NAME...: log the SASL mechanism each NAME@$DOMAIN
# authenticated with, from the server log; dies if one has none.
interop_log_mechanisms() {
	local name mech
	for name in "$@"; do
		mech=$(interop_server_mechanism "$name") || exit 1
		log "$name: authenticated with SASL $mech (server log)"
	done
}
