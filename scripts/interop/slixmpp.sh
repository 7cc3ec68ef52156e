#!/usr/bin/env bash
# Interop test: two slixmpp clients (Debian's python3-slixmpp) chat through
# xmppd over STARTTLS with slixmpp's default SASL settings.
#
#   scripts/interop/slixmpp.sh          # from anywhere; exit 0 = pass
#
# It installs python3-slixmpp if missing (apt, needs root or passwordless
# sudo), builds xmppd into a temporary directory, starts `xmppd serve` with
# its own data dir and a self-signed certificate for the test domain on
# loopback ports picked by the kernel (port 0; the real ports are read from
# the "listening" log lines), adds two users, and runs slixmpp_chat.py with
# /usr/bin/python3. The server is always stopped on exit; its log is printed
# on failure. The shared start/stop code is in lib.bash.
#
# Environment:
#   XMPPD_BIN=PATH       use this xmppd binary instead of building one
#   INTEROP_KEEP=1       keep the temporary directory (printed) afterwards
#   INTEROP_DEBUG=1      slixmpp debug log (the XML) on stderr
#   INTEROP_TIMEOUT=SECS hard limit for the client run (default 60)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INTEROP_NAME=slixmpp.sh
CLIENT_TIMEOUT=${INTEROP_TIMEOUT:-60}
# shellcheck source=lib.bash
. "$HERE/lib.bash"

# --- 1, 2. python3-slixmpp, xmppd ----------------------------------------------
interop_init
interop_write_config "disco, ping, version, time, roster"
interop_config_check || die "xmppd config check rejected $CFG"
interop_start_server

# --- 3. accounts ---------------------------------------------------------------
interop_add_alice_bob

# --- 4. the clients ------------------------------------------------------------
interop_run_clients slixmpp_chat.py --timeout "$((CLIENT_TIMEOUT - 10))"

# The server's view.
interop_log_mechanisms alice bob

# --- 5. clean shutdown ---------------------------------------------------------
interop_stop_server

FAILED=0
log "PASS: slixmpp (default SASL settings) STARTTLS login and chat both ways"
