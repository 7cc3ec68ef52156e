#!/usr/bin/env bash
# Interop test: an IM scenario with real slixmpp clients (Debian's
# python3-slixmpp) against a freshly started xmppd with the modules disco,
# ping, version, time, roster and offline:
#
#   1. alice (A) and bob (B) log in over STARTTLS (certificate verified) with
#      SCRAM-SHA-256, fetch their rosters and send presence;
#   2. A subscribes to B, B approves and subscribes back, A approves; both
#      clients' rosters reach subscription 'both' through the server's pushes;
#   3. B sees A come and go and come back, A sees B through the probe;
#   4. a message to offline B is delivered at B's next login with a XEP-0203
#      delay, once only.
#
#   scripts/interop/slixmpp_im.sh          # from anywhere; exit 0 = pass
#
# The steps are in slixmpp_im.py (one line per step); the start/stop code is
# shared with slixmpp.sh in lib.bash. If the server does not know the module
# "offline", steps 1-3 still run and step 4 fails with "offline module
# missing".
#
# Environment:
#   XMPPD_BIN=PATH       use this xmppd binary instead of building one
#   INTEROP_KEEP=1       keep the temporary directory (printed) afterwards
#   INTEROP_DEBUG=1      slixmpp debug log (the XML) on stderr
#   INTEROP_TIMEOUT=SECS hard limit for the client run (default 90)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INTEROP_NAME=slixmpp_im.sh
CLIENT_TIMEOUT=${INTEROP_TIMEOUT:-90}
MODULES="disco, ping, version, time, roster"
# shellcheck source=lib.bash
. "$HERE/lib.bash"

# --- 1. python3-slixmpp, xmppd, configuration ------------------------------------
interop_init
offline=()
interop_write_config "$MODULES, offline"
if ! interop_config_check; then
	grep -q 'unknown module "offline"' "$TMP/config-check.err" ||
		die "xmppd config check rejected $CFG"
	log "offline module missing: this xmppd does not know the module ID \"offline\" (XEP-0160);" \
		"running steps 1-3 without it, step 4 will fail"
	offline=(--offline-missing)
	interop_write_config "$MODULES"
	interop_config_check || die "xmppd config check rejected $CFG"
fi
interop_start_server

# --- 2. accounts ---------------------------------------------------------------
interop_add_alice_bob

# --- 3. the scenario -------------------------------------------------------------
interop_run_clients slixmpp_im.py \
	--timeout "$((CLIENT_TIMEOUT > 20 ? CLIENT_TIMEOUT - 10 : CLIENT_TIMEOUT / 2))" "${offline[@]}"

# --- 4. clean shutdown ---------------------------------------------------------
interop_stop_server

FAILED=0
log "PASS: slixmpp roster subscriptions, presence and offline messages"
