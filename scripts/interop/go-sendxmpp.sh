#!/usr/bin/env bash
# Interop test: go-sendxmpp (Debian's go-sendxmpp) with its default settings
# logs in to xmppd over STARTTLS and delivers a message to another
# go-sendxmpp listening (-l) as a second user.
#
#   scripts/interop/go-sendxmpp.sh      # from anywhere; exit 0 = pass
#
# Installs go-sendxmpp with apt-get if missing. The server certificate is
# verified: Go's crypto/x509 reads SSL_CERT_FILE, pointed at the generated
# self-signed certificate (no -n/--no-tls-verify). The listener runs with -d
# so that the script can wait for the server's echo of its initial presence
# before alice sends (otherwise the message could race the presence).
#
# Environment: XMPPD_BIN, INTEROP_KEEP (see lib.bash); INTEROP_TIMEOUT=SECS
# (default 30) per client step.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INTEROP_NAME=go-sendxmpp.sh
STEP_TIMEOUT=${INTEROP_TIMEOUT:-30}
# shellcheck source=lib.bash
. "$HERE/lib.bash"

interop_init
interop_apt_install go-sendxmpp go-sendxmpp
log "$(go-sendxmpp --version | head -n1), package $(dpkg-query -W -f='${Version}' go-sendxmpp)"
interop_write_config "disco, ping, version, time, roster"
interop_config_check || die "xmppd config check rejected $CFG"
interop_start_server
interop_add_alice_bob

# Its own HOME: no ~/.config/go-sendxmpp/sendxmpprc of the machine's user.
export HOME="$TMP/home"
mkdir -p "$HOME"
export SSL_CERT_FILE=$CERT

# --- bob listens ---------------------------------------------------------------
log "bob: go-sendxmpp -l (STARTTLS, certificate verified via SSL_CERT_FILE)"
stop_listener() { [ -z "${LISTEN_PID:-}" ] || kill "$LISTEN_PID" 2>/dev/null || true; }
INTEROP_ON_EXIT=stop_listener
interop_sendxmpp_listen bob "$PW_B" "$TMP/bob.out" "$STEP_TIMEOUT"
log "bob: online"

# --- alice sends ---------------------------------------------------------------
BODY="hello bob from go-sendxmpp $$ $(interop_rand)"
log "alice: go-sendxmpp to bob@$DOMAIN"
interop_sendxmpp_send alice "$PW_A" "bob@$DOMAIN" "$BODY" "$STEP_TIMEOUT"
interop_wait_for_text "$TMP/bob.out" "alice@$DOMAIN: $BODY" "$STEP_TIMEOUT" ||
	{ tail -n 40 "$TMP/bob.out" >>"$TMP/client.stderr"; die "bob did not receive alice's message within ${STEP_TIMEOUT}s"; }
log "bob: received '$BODY' from alice@$DOMAIN"
stop_listener

interop_log_mechanisms alice bob

interop_stop_server
FAILED=0
log "PASS: go-sendxmpp STARTTLS login (certificate verified) and message delivery"
