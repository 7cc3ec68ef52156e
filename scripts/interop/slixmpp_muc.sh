#!/usr/bin/env bash
# Interop test: multi-user chat (XEP-0045) with real slixmpp clients
# (Debian's python3-slixmpp, its xep_0045 plugin with default settings)
# against a freshly started xmppd and its service at conference.DOMAIN:
#
#   1. alice (A), bob (B) and carol (C) log in;
#   2. A creates a room and configures it with the muc#roomconfig form;
#   3. B joins; A and B chat (exact bodies at both ends);
#   4. B changes its nick (303), the new nick works;
#   5. A sets the subject; C joins later and gets the history and subject;
#   6. C and B exchange private messages through the room;
#   7. A kicks B (307); A and C leave; the server stops cleanly.
#
#   scripts/interop/slixmpp_muc.sh          # from anywhere; exit 0 = pass
#
# The client steps are in slixmpp_muc.py; the start/stop code is shared in
# lib.bash.
#
# Environment:
#   XMPPD_BIN=PATH       use this xmppd binary instead of building one
#   INTEROP_KEEP=1       keep the temporary directory (printed) afterwards
#   INTEROP_DEBUG=1      slixmpp debug log (the XML) on stderr
#   INTEROP_TIMEOUT=SECS hard limit for the client run (default 60)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INTEROP_NAME=slixmpp_muc.sh
CLIENT_TIMEOUT=${INTEROP_TIMEOUT:-60}
# shellcheck source=lib.bash
. "$HERE/lib.bash"

# --- 1. python3-slixmpp, xmppd, configuration ------------------------------------
interop_init
interop_write_config "disco, ping, roster, muc"
interop_config_check || die "xmppd config check rejected $CFG"
interop_start_server

# --- 2. accounts ---------------------------------------------------------------
interop_add_alice_bob
PW_C=$(interop_rand)
interop_add_user carol "$PW_C"
export XMPP_PASSWORD_C=$PW_C

# --- 3. the scenario -------------------------------------------------------------
interop_run_clients slixmpp_muc.py --jid-c "carol@$DOMAIN/slix-c" \
	--timeout "$((CLIENT_TIMEOUT > 20 ? CLIENT_TIMEOUT - 10 : CLIENT_TIMEOUT / 2))"

# --- 4. clean shutdown ---------------------------------------------------------
interop_stop_server

FAILED=0
log "PASS: slixmpp XEP-0045: room created and configured, chat, nick change (303), history with delay, subject, private messages, kick (307)"
