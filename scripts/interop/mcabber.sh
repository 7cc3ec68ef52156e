#!/usr/bin/env bash
# Interop test: mcabber (Debian's mcabber, loudmouth + GnuTLS) logs in to
# xmppd over STARTTLS and exchanges a message both ways with a go-sendxmpp
# peer.
#
#   scripts/interop/mcabber.sh          # from anywhere; exit 0 = pass
#
# Installs mcabber, tmux and go-sendxmpp with apt-get if missing. mcabber
# needs a terminal: it runs under a private tmux server. Its mcabberrc (in a
# HOME inside the temporary directory) sets only the account (jid, password,
# server 127.0.0.1, port), tls = 1 (STARTTLS; the example file's setting),
# ssl_ca (the generated certificate, so that it is verified), a command FIFO
# (how the script types /say_to) and the message history (how it reads what
# arrived); everything else is mcabber's default.
#
# Environment: XMPPD_BIN, INTEROP_KEEP (see lib.bash); INTEROP_TIMEOUT=SECS
# (default 30) per step.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INTEROP_NAME=mcabber.sh
STEP_TIMEOUT=${INTEROP_TIMEOUT:-30}
# shellcheck source=lib.bash
. "$HERE/lib.bash"

interop_init
interop_apt_install mcabber mcabber
interop_apt_install tmux tmux
interop_apt_install go-sendxmpp go-sendxmpp
log "mcabber $(dpkg-query -W -f='${Version}' mcabber), loudmouth $(dpkg-query -W -f='${Version}' libloudmouth1-0 2>/dev/null || echo '?'), $(tmux -V)"
interop_write_config "disco, ping, version, time, roster"
interop_config_check || die "xmppd config check rejected $CFG"
interop_start_server
interop_add_alice_bob

export HOME="$TMP/home"
MC="$HOME/.mcabber"
mkdir -p "$MC/histo"
chmod 700 "$MC"
export SSL_CERT_FILE=$CERT # for the go-sendxmpp peer
(umask 077 && cat >"$MC/mcabberrc" <<EOF2
set jid = alice@$DOMAIN
set password = $PW_A
set server = 127.0.0.1
set port = $PORT
set tls = 1
set ssl_ca = $CERT
set fifo_name = $MC/mcabber.fifo
module load fifo
set logging = 1
set logging_dir = $MC/histo/
set tracelog_level = 2
set tracelog_file = $MC/mcabber.log
EOF2
)
TM=(tmux -L "xmppd-interop-$$")

stop_clients() {
	[ -z "${LISTEN_PID:-}" ] || kill "$LISTEN_PID" 2>/dev/null || true
	if "${TM[@]}" has-session 2>/dev/null; then
		if [ "$FAILED" = 1 ]; then
			{ echo "--- mcabber screen ---"; "${TM[@]}" capture-pane -p -t mc | grep -v '^ *$'; } >>"$TMP/client.stderr" || true
			[ -f "$MC/mcabber.log" ] && tail -n 60 "$MC/mcabber.log" >>"$TMP/client.stderr"
		fi
		"${TM[@]}" kill-server 2>/dev/null || true
	fi
}
INTEROP_ON_EXIT=stop_clients

# mc_command LINE: write LINE to mcabber's FIFO (10 s at most: an open of a
# FIFO that nobody reads blocks).
mc_command() {
	timeout 10 bash -c 'printf "%s\n" "$1" >"$2"' _ "$1" "$MC/mcabber.fifo" ||
		die "mcabber: could not write '$1' to its FIFO"
}

# --- bob (go-sendxmpp) listens -------------------------------------------------
interop_sendxmpp_listen bob "$PW_B" "$TMP/bob.out" "$STEP_TIMEOUT"
log "bob: go-sendxmpp -l online"

# --- alice (mcabber) logs in ---------------------------------------------------
"${TM[@]}" -f /dev/null new-session -d -s mc -x 200 -y 50 \
	"env TERM=xterm-256color mcabber -f '$MC/mcabberrc'; sleep 600"
interop_wait_for_text "$MC/mcabber.log" "Your status has been set" "$STEP_TIMEOUT" ||
	die "mcabber: alice did not log in within ${STEP_TIMEOUT}s"
log "mcabber: logged in ($(grep -o 'GNUTLS negotiated cipher suite: .*' "$MC/mcabber.log" | head -n1))"
for _ in $(seq 50); do [ -p "$MC/mcabber.fifo" ] && break; sleep 0.1; done
[ -p "$MC/mcabber.fifo" ] || die "mcabber did not create its FIFO $MC/mcabber.fifo"

# --- alice -> bob --------------------------------------------------------------
BODY_AB="hello bob from mcabber $$ $(interop_rand)"
mc_command "/say_to bob@$DOMAIN $BODY_AB"
interop_wait_for_text "$TMP/bob.out" "alice@$DOMAIN: $BODY_AB" "$STEP_TIMEOUT" ||
	{ tail -n 40 "$TMP/bob.out" >>"$TMP/client.stderr"; die "bob did not receive mcabber's message within ${STEP_TIMEOUT}s"; }
log "bob: received '$BODY_AB' from alice@$DOMAIN"

# --- bob -> alice --------------------------------------------------------------
BODY_BA="hi alice from go-sendxmpp $$ $(interop_rand)"
interop_sendxmpp_send bob "$PW_B" "alice@$DOMAIN" "$BODY_BA" "$STEP_TIMEOUT"
interop_wait_for_text "$MC/histo/bob@$DOMAIN" "$BODY_BA" "$STEP_TIMEOUT" ||
	die "mcabber did not record bob's message within ${STEP_TIMEOUT}s"
log "mcabber: history has '$BODY_BA' from bob"

mc_command /quit
interop_log_mechanisms alice bob
stop_clients
interop_stop_server
FAILED=0
log "PASS: mcabber STARTTLS login (certificate verified) and a message each way"
