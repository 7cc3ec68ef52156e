#!/usr/bin/env bash
# Interop test: profanity (Debian's profanity, libstrophe) with its default
# settings, driven under a private tmux server, logs in to xmppd over
# STARTTLS and exchanges a message both ways with a go-sendxmpp peer.
#
#   scripts/interop/profanity.sh        # from anywhere; exit 0 = pass
#
# Installs profanity, tmux and go-sendxmpp with apt-get if missing.
# profanity runs with HOME (and the XDG directories) in the temporary
# directory, so it starts from a fresh configuration; it is typed at with
# `tmux send-keys` (`/connect JID server 127.0.0.1 port PORT tls force`,
# the password pasted from a tmux buffer loaded from a file, so that it is
# not in a process's arguments) and read with `tmux capture-pane`. The
# server certificate is verified: OpenSSL's default verify paths, which
# libstrophe uses, honour SSL_CERT_FILE.
#
# Environment: XMPPD_BIN, INTEROP_KEEP (see lib.bash); INTEROP_TIMEOUT=SECS
# (default 30) per step.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INTEROP_NAME=profanity.sh
STEP_TIMEOUT=${INTEROP_TIMEOUT:-30}
# shellcheck source=lib.bash
. "$HERE/lib.bash"

interop_init
interop_apt_install profanity profanity
interop_apt_install tmux tmux
interop_apt_install go-sendxmpp go-sendxmpp
log "profanity $(dpkg-query -W -f='${Version}' profanity), libstrophe $(dpkg-query -W -f='${Version}' 'libstrophe0' 2>/dev/null || echo '?'), $(tmux -V)"
interop_write_config "disco, ping, version, time, roster"
interop_config_check || die "xmppd config check rejected $CFG"
interop_start_server
interop_add_alice_bob

export HOME="$TMP/home" XDG_CONFIG_HOME="$TMP/home/.config" XDG_DATA_HOME="$TMP/home/.local/share"
mkdir -p "$XDG_CONFIG_HOME" "$XDG_DATA_HOME"
export SSL_CERT_FILE=$CERT
TMUX_SOCK="xmppd-interop-$$"
TM=(tmux -L "$TMUX_SOCK")
PANE="$TMP/pane.txt"

stop_clients() {
	[ -z "${LISTEN_PID:-}" ] || kill "$LISTEN_PID" 2>/dev/null || true
	if "${TM[@]}" has-session 2>/dev/null; then
		"${TM[@]}" capture-pane -p -t prof -S -200 >"$PANE" 2>/dev/null || true
		if [ "$FAILED" = 1 ]; then
			{ echo "--- profanity screen ---"; grep -v '^ *$' "$PANE"; } >>"$TMP/client.stderr" || true
			[ -f "$XDG_DATA_HOME/profanity/logs/profanity.log" ] &&
				tail -n 60 "$XDG_DATA_HOME/profanity/logs/profanity.log" >>"$TMP/client.stderr"
		fi
		"${TM[@]}" kill-server 2>/dev/null || true
	fi
}
INTEROP_ON_EXIT=stop_clients

# screen_has TEXT: wait up to STEP_TIMEOUT s for TEXT on profanity's screen.
screen_has() {
	local i
	for i in $(seq "$((STEP_TIMEOUT * 10))"); do
		"${TM[@]}" capture-pane -p -t prof -S -200 >"$PANE" 2>/dev/null || return 1
		grep -qF -- "$1" "$PANE" && return 0
		sleep 0.1
	done
	return 1
}

# --- bob (go-sendxmpp) listens -------------------------------------------------
interop_sendxmpp_listen bob "$PW_B" "$TMP/bob.out" "$STEP_TIMEOUT"
log "bob: go-sendxmpp -l online"

# --- alice (profanity) logs in -------------------------------------------------
"${TM[@]}" -f /dev/null new-session -d -s prof -x 200 -y 50 \
	"env TERM=xterm-256color profanity -l DEBUG; sleep 600"
screen_has "Profanity" || die "profanity did not start"
"${TM[@]}" send-keys -t prof "/connect alice@$DOMAIN server 127.0.0.1 port $PORT tls force" Enter
screen_has "Enter password" || die "profanity did not ask for the password"
(umask 077 && printf '%s' "$PW_A" >"$TMP/pw")
"${TM[@]}" load-buffer -b pw "$TMP/pw"
rm -f "$TMP/pw"
"${TM[@]}" paste-buffer -d -b pw -t prof
"${TM[@]}" send-keys -t prof Enter
screen_has "logged in successfully" ||
	die "profanity: alice did not log in within ${STEP_TIMEOUT}s: $(grep -iE 'fail|error' "$PANE" | tail -n 3 | tr -s ' ')"
log "profanity: $(grep -F 'logged in successfully' "$PANE" | tail -n1 | tr -s ' ')"

# --- alice -> bob --------------------------------------------------------------
BODY_AB="hello bob from profanity $$ $(interop_rand)"
"${TM[@]}" send-keys -t prof -l "/msg bob@$DOMAIN $BODY_AB"
"${TM[@]}" send-keys -t prof Enter
interop_wait_for_text "$TMP/bob.out" "alice@$DOMAIN: $BODY_AB" "$STEP_TIMEOUT" ||
	{ tail -n 40 "$TMP/bob.out" >>"$TMP/client.stderr"; die "bob did not receive profanity's message within ${STEP_TIMEOUT}s"; }
log "bob: received '$BODY_AB' from alice@$DOMAIN"

# --- bob -> alice --------------------------------------------------------------
BODY_BA="hi alice from go-sendxmpp $$ $(interop_rand)"
interop_sendxmpp_send bob "$PW_B" "alice@$DOMAIN" "$BODY_BA" "$STEP_TIMEOUT"
screen_has "$BODY_BA" || die "profanity did not show bob's message within ${STEP_TIMEOUT}s"
log "profanity: shows '$BODY_BA' from bob"

"${TM[@]}" send-keys -t prof "/quit" Enter
interop_log_mechanisms alice bob
stop_clients
interop_stop_server
FAILED=0
log "PASS: profanity STARTTLS login (certificate verified) and a message each way"
