#!/usr/bin/env bash
# Interop test: two slixmpp clients (Debian's python3-slixmpp) chat through
# xmppd over STARTTLS with SASL SCRAM-SHA-256.
#
#   scripts/interop/slixmpp.sh          # from anywhere; exit 0 = pass
#
# It installs python3-slixmpp if missing (apt, needs root or passwordless
# sudo), builds xmppd into a temporary directory, starts `xmppd serve` with
# its own data dir and a self-signed certificate for the test domain on
# loopback ports picked by the kernel (port 0; the real ports are read from
# the "listening" log lines), adds two users, and runs slixmpp_chat.py with
# /usr/bin/python3. The server is always stopped on exit; its log is printed
# on failure.
#
# Environment:
#   XMPPD_BIN=PATH       use this xmppd binary instead of building one
#   INTEROP_KEEP=1       keep the temporary directory (printed) afterwards
#   INTEROP_DEBUG=1      slixmpp debug log (the XML) on stderr
#   INTEROP_TIMEOUT=SECS hard limit for the client run (default 60)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
DOMAIN=interop.test
CLIENT_TIMEOUT=${INTEROP_TIMEOUT:-60}
POLICY=/usr/sbin/policy-rc.d # blocks service starts by package post-install scripts
PY=/usr/bin/python3 # not the first python3 on PATH: that one may lack Debian's modules

log() { printf '[slixmpp.sh %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

TMP=""
SERVER_PID=""
CREATED_POLICY=""
SUDO=""
FAILED=1

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$SERVER_PID" 2>/dev/null; then
			log "server did not stop on SIGTERM within 5 s; killing it"
			kill -KILL "$SERVER_PID" 2>/dev/null || true
		fi
		wait "$SERVER_PID" 2>/dev/null || true
	fi
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
	if [ -n "$TMP" ]; then
		if [ "${INTEROP_KEEP:-}" = 1 ]; then
			log "kept $TMP"
		else
			rm -rf "$TMP"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

die() {
	log "FAIL: $*"
	exit 1
}

# --- 1. python3-slixmpp ------------------------------------------------------
ensure_slixmpp() {
	if "$PY" -c 'import slixmpp' 2>/dev/null; then
		log "python3-slixmpp is installed"
		return
	fi
	command -v apt-get >/dev/null || die "slixmpp is missing for $PY and there is no apt-get to install python3-slixmpp"
	if [ "$(id -u)" != 0 ]; then
		sudo -n true 2>/dev/null || die "slixmpp is missing: install python3-slixmpp (needs root or passwordless sudo)"
		SUDO="sudo -n"
	fi
	# Post-install scripts must not start services (they would grab ports).
	if [ ! -e "$POLICY" ]; then
		log "creating $POLICY (exit 101) for the install; removed afterwards"
		printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
		$SUDO chmod 755 "$POLICY"
		CREATED_POLICY=1
	fi
	local apt=($SUDO env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=120)
	if ! apt-cache show python3-slixmpp >/dev/null 2>&1; then
		log "apt-get update (python3-slixmpp not in the package lists)"
		timeout 300 "${apt[@]}" update
	fi
	log "apt-get install python3-slixmpp"
	if ! timeout 600 "${apt[@]}" install -y --no-install-recommends python3-slixmpp; then
		log "install failed; apt-get update and retry"
		timeout 300 "${apt[@]}" update
		timeout 600 "${apt[@]}" install -y --no-install-recommends python3-slixmpp
	fi
	if [ -n "$CREATED_POLICY" ]; then
		$SUDO rm -f "$POLICY"
		CREATED_POLICY=""
	fi
	"$PY" -c 'import slixmpp' 2>/dev/null || die "python3-slixmpp installed but $PY cannot import slixmpp"
}
ensure_slixmpp
log "slixmpp $("$PY" -c 'import slixmpp; print(slixmpp.__version__)' 2>/dev/null), $("$PY" --version 2>&1)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/xmppd-interop-slixmpp.XXXXXX")
DATA="$TMP/data"
CFG="$TMP/xmppd.yaml"
mkdir -p "$DATA"

# --- 2. xmppd ------------------------------------------------------------------
if [ -n "${XMPPD_BIN:-}" ]; then
	BIN=$XMPPD_BIN
	[ -x "$BIN" ] || die "XMPPD_BIN=$BIN is not executable"
	log "using xmppd binary $BIN"
else
	BIN="$TMP/xmppd"
	log "building xmppd (go build ./cmd/xmppd)"
	(cd "$REPO" && go build -o "$BIN" ./cmd/xmppd) || die "go build failed"
fi

cat >"$CFG" <<EOF
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
storage:
  sqlite: $DATA/xmppd.db
modules: [disco, ping, version, time, roster]
log:
  level: debug
  format: text
EOF
"$BIN" config check --config "$CFG" >/dev/null || die "xmppd config check rejected $CFG"
log "config $CFG ok (domain $DOMAIN, data $DATA)"

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

# --- 3. accounts ---------------------------------------------------------------
rand() { od -An -tx1 -N12 /dev/urandom | tr -d ' \n'; }
PW_A=$(rand)
PW_B=$(rand)
for u in "alice:$PW_A" "bob:$PW_B"; do
	name=${u%%:*}
	printf '%s\n' "${u#*:}" | timeout 30 "$BIN" user add "$name@$DOMAIN" --password-stdin --config "$CFG" >/dev/null ||
		die "xmppd user add $name@$DOMAIN failed"
	log "added user $name@$DOMAIN"
done

# --- 4. the clients ------------------------------------------------------------
debug=()
[ "${INTEROP_DEBUG:-}" = 1 ] && debug=(--debug)
log "running slixmpp_chat.py (hard timeout ${CLIENT_TIMEOUT}s)"
set +e
XMPP_PASSWORD_A=$PW_A XMPP_PASSWORD_B=$PW_B timeout -k 5 "$CLIENT_TIMEOUT" \
	"$PY" "$HERE/slixmpp_chat.py" --port "$PORT" \
	--jid-a "alice@$DOMAIN/slix-a" --jid-b "bob@$DOMAIN/slix-b" \
	--ca-file "$CERT" --timeout "$((CLIENT_TIMEOUT - 10))" "${debug[@]}" 2>"$TMP/client.stderr"
rc=$?
set -e
[ "$rc" != 124 ] || die "slixmpp_chat.py killed after ${CLIENT_TIMEOUT}s"
[ "$rc" = 0 ] || die "slixmpp_chat.py failed (exit $rc)"
[ "${INTEROP_DEBUG:-}" = 1 ] && cat "$TMP/client.stderr" >&2

# The server's view, as a cross-check (log lines are not an interface: warn only).
for name in alice bob; do
	if ! grep -q "authenticated.*user=$name@$DOMAIN.*mechanism=SCRAM-SHA-256" "$TMP/server.log"; then
		log "warning: server log has no 'authenticated user=$name@$DOMAIN mechanism=SCRAM-SHA-256' line"
	fi
done

# --- 5. clean shutdown ---------------------------------------------------------
kill -TERM "$SERVER_PID"
set +e
for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$SERVER_PID" 2>/dev/null; then
	set -e
	die "xmppd did not exit within 10 s of SIGTERM"
fi
wait "$SERVER_PID"
src=$?
set -e
SERVER_PID=""
[ "$src" = 0 ] || die "xmppd exited with status $src after SIGTERM"
log "xmppd stopped cleanly on SIGTERM"

FAILED=0
log "PASS: slixmpp STARTTLS + SCRAM-SHA-256 login and chat both ways"
