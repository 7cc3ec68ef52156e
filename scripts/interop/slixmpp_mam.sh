#!/usr/bin/env bash
# Interop test: message archive queries (XEP-0313, urn:xmpp:mam:2) with
# XEP-0059 paging by a real slixmpp client (Debian's python3-slixmpp,
# plugins xep_0313 and xep_0059) against a freshly started xmppd:
#
#   1. alice (A) and bob (B) log in;
#   2. they exchange messages, taking turns;
#   3. A pages through its archive with B: each message once, in order;
#   4. B does the same with its archive (both ends are archived);
#   5. A pages backwards from the last page: the same, newest first;
#   6. the server stops cleanly.
#
#   scripts/interop/slixmpp_mam.sh          # from anywhere; exit 0 = pass
#
# The client steps are in slixmpp_mam.py; the start/stop code is shared in
# lib.bash.
#
# Environment:
#   XMPPD_BIN=PATH       use this xmppd binary instead of building one
#   INTEROP_KEEP=1       keep the temporary directory (printed) afterwards
#   INTEROP_DEBUG=1      slixmpp debug log (the XML) on stderr
#   INTEROP_TIMEOUT=SECS hard limit for the client run (default 60)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INTEROP_NAME=slixmpp_mam.sh
CLIENT_TIMEOUT=${INTEROP_TIMEOUT:-60}
# shellcheck source=lib.bash
. "$HERE/lib.bash"

# --- 1. python3-slixmpp, xmppd, configuration ------------------------------------
interop_init
interop_write_config "disco, ping, roster, offline, mam"
interop_config_check || die "xmppd config check rejected $CFG"
interop_start_server

# --- 2. accounts ---------------------------------------------------------------
interop_add_alice_bob

# --- 3. the scenario -------------------------------------------------------------
interop_run_clients slixmpp_mam.py \
	--timeout "$((CLIENT_TIMEOUT > 20 ? CLIENT_TIMEOUT - 10 : CLIENT_TIMEOUT / 2))"

# --- 4. clean shutdown ---------------------------------------------------------
interop_stop_server

FAILED=0
log "PASS: slixmpp XEP-0313 queries with XEP-0059 paging: every message once, in order, at both ends, both ways"
