#!/usr/bin/env bash
# Interop test: PEP (XEP-0163 on XEP-0060) with a real slixmpp client
# (Debian's python3-slixmpp, plugins xep_0060, xep_0163, xep_0084, xep_0048
# with xep_0049 and xep_0223, xep_0054) against a freshly started xmppd:
#
#   1. alice (A, and a second resource A2) and bob (B) log in;
#   2. A and B subscribe to each other;
#   3. A publishes an avatar: B is notified (caps +notify) and fetches it;
#   4. A's vCard PHOTO is that avatar (XEP-0398);
#   5. A stores XEP-0048 bookmarks in private XML: A2 is notified of them
#      as Bookmarks 2 (XEP-0402 #compat);
#   6. A stores them through PEP (XEP-0223): A2 is notified again
#      (#compat-pep), B gets nothing of them;
#   7. the server stops cleanly.
#
#   scripts/interop/slixmpp_pep.sh          # from anywhere; exit 0 = pass
#
# The client steps are in slixmpp_pep.py; the start/stop code is shared in
# lib.bash.
#
# Environment:
#   XMPPD_BIN=PATH       use this xmppd binary instead of building one
#   INTEROP_KEEP=1       keep the temporary directory (printed) afterwards
#   INTEROP_DEBUG=1      slixmpp debug log (the XML) on stderr
#   INTEROP_TIMEOUT=SECS hard limit for the client run (default 60)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INTEROP_NAME=slixmpp_pep.sh
CLIENT_TIMEOUT=${INTEROP_TIMEOUT:-60}
# shellcheck source=lib.bash
. "$HERE/lib.bash"

# --- 1. python3-slixmpp, xmppd, configuration ------------------------------------
interop_init
interop_write_config "disco, ping, roster, offline, vcard, private, pep"
interop_config_check || die "xmppd config check rejected $CFG"
interop_start_server

# --- 2. accounts ---------------------------------------------------------------
interop_add_alice_bob

# --- 3. the scenario -------------------------------------------------------------
interop_run_clients slixmpp_pep.py \
	--timeout "$((CLIENT_TIMEOUT > 20 ? CLIENT_TIMEOUT - 10 : CLIENT_TIMEOUT / 2))"

# --- 4. clean shutdown ---------------------------------------------------------
interop_stop_server

FAILED=0
log "PASS: slixmpp avatar (XEP-0084) notified to a contact and in the vCard (XEP-0398), XEP-0048 bookmarks notified as Bookmarks 2 to another resource"
