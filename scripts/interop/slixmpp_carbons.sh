#!/usr/bin/env bash
# Interop test: Message Carbons (XEP-0280) with real slixmpp clients
# (Debian's python3-slixmpp, its xep_0280 plugin) against a freshly started
# xmppd with the modules disco, ping, roster and carbons:
#
#   1. two resources of alice (A1, A2) and bob log in over STARTTLS
#      (certificate verified); the server's disco#info lists
#      urn:xmpp:carbons:2; A1 and A2 enable carbons;
#   2. bob writes to A1's full JID: A2 gets the <received/> carbon, A1 none;
#   3. A1 writes to bob: A2 gets the <sent/> carbon, A1 none;
#   4. A2 disables carbons and gets no carbon of bob's next message to A1.
#
#   scripts/interop/slixmpp_carbons.sh     # from anywhere; exit 0 = pass
#
# The steps are in slixmpp_carbons.py (one line per step); the start/stop
# code is lib.bash. If the server does not know the module "carbons", the
# clients still run and fail at step 1 with "carbons module missing".
#
# Environment:
#   XMPPD_BIN=PATH       use this xmppd binary instead of building one
#   INTEROP_KEEP=1       keep the temporary directory (printed) afterwards
#   INTEROP_DEBUG=1      slixmpp debug log (the XML) on stderr
#   INTEROP_TIMEOUT=SECS hard limit for the client run (default 70)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INTEROP_NAME=slixmpp_carbons.sh
CLIENT_TIMEOUT=${INTEROP_TIMEOUT:-70}
MODULES="disco, ping, roster"
# shellcheck source=lib.bash
. "$HERE/lib.bash"

# --- 1. python3-slixmpp, xmppd, configuration ------------------------------------
interop_init
missing=()
interop_write_config "$MODULES, carbons"
if ! interop_config_check; then
	grep -q 'unknown module "carbons"' "$TMP/config-check.err" ||
		die "xmppd config check rejected $CFG"
	log "carbons module missing: this xmppd does not know the module ID \"carbons\" (XEP-0280);" \
		"running the clients without it, step 1 will fail"
	missing=(--carbons-missing)
	interop_write_config "$MODULES"
	interop_config_check || die "xmppd config check rejected $CFG"
fi
interop_start_server

# --- 2. accounts ---------------------------------------------------------------
interop_add_alice_bob

# --- 3. the scenario -------------------------------------------------------------
interop_run_clients slixmpp_carbons.py \
	--timeout "$((CLIENT_TIMEOUT > 20 ? CLIENT_TIMEOUT - 10 : CLIENT_TIMEOUT / 2))" "${missing[@]}"

# --- 4. clean shutdown ---------------------------------------------------------
interop_stop_server

FAILED=0
log "PASS: slixmpp message carbons: received and sent copies to the other resource, disable"
