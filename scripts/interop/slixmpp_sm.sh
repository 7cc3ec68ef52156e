#!/usr/bin/env bash
# Interop test: stream management with resumption (XEP-0198) with a real
# slixmpp client (Debian's python3-slixmpp, plugin xep_0198 with its default
# settings) against a freshly started xmppd:
#
#   1. alice (A) logs in and enables SM with resume (slixmpp's default once
#      the plugin is registered), bob (B) logs in without SM;
#   2. B sends A messages, A gets them;
#   3. A stops reading, B sends messages that the server writes to A's
#      socket but A never handles; A's TCP connection is reset (no
#      </stream:stream>, no TLS close); B sends more messages, before and
#      after the server has noticed;
#   4. A connects again and resumes; it gets every message sent meanwhile
#      exactly once and in order, nothing of step 2 again;
#   5. the server log shows one bind, one hibernation and one resumption of
#      A's session (no second bind), with the unhandled stanzas sent again.
#
#   scripts/interop/slixmpp_sm.sh          # from anywhere; exit 0 = pass
#
# The client steps are in slixmpp_sm.py; the start/stop code is shared in
# lib.bash.
#
# Environment:
#   XMPPD_BIN=PATH       use this xmppd binary instead of building one
#   INTEROP_KEEP=1       keep the temporary directory (printed) afterwards
#   INTEROP_DEBUG=1      slixmpp debug log (the XML) on stderr
#   INTEROP_TIMEOUT=SECS hard limit for the client run (default 60)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INTEROP_NAME=slixmpp_sm.sh
CLIENT_TIMEOUT=${INTEROP_TIMEOUT:-60}
# shellcheck source=lib.bash
. "$HERE/lib.bash"

# --- 1. python3-slixmpp, xmppd, configuration ------------------------------------
interop_init
interop_write_config "disco, ping, roster, offline"
interop_config_check || die "xmppd config check rejected $CFG"
interop_start_server

# --- 2. accounts ---------------------------------------------------------------
interop_add_alice_bob

# --- 3. the scenario -------------------------------------------------------------
interop_run_clients slixmpp_sm.py --server-log "$TMP/server.log" \
	--timeout "$((CLIENT_TIMEOUT > 20 ? CLIENT_TIMEOUT - 10 : CLIENT_TIMEOUT / 2))"

# --- 4. the server's view --------------------------------------------------------
# count TEXT: lines of the server log with TEXT and alice's full JID.
count() { grep -F -- "$1" "$TMP/server.log" | grep -cF "jid=alice@$DOMAIN/slix-a" || true; }
binds=$(count 'msg="c2s session bound"')
hib=$(count 'msg="c2s session hibernating"')
res=$(count 'msg="c2s session resumed"')
log "server log for alice@$DOMAIN/slix-a: $binds bind, $hib hibernation, $res resumption"
[ "$binds" = 1 ] || die "server log: $binds 'c2s session bound' lines for alice, want 1 (a resumption is no new bind)"
[ "$hib" = 1 ] || die "server log: $hib 'c2s session hibernating' lines for alice, want 1"
[ "$res" = 1 ] || die "server log: $res 'c2s session resumed' lines for alice, want 1"
line=$(grep -F 'msg="c2s session resumed"' "$TMP/server.log")
log "  $line"
# Batch 2 was in A's socket buffer, unread, when the connection was reset:
# the server must have sent it again on resumption.
resent=$(printf '%s\n' "$line" | sed -n 's/.* resent=\([0-9][0-9]*\).*/\1/p')
[ -n "$resent" ] && [ "$resent" -ge 1 ] ||
	die "server log: resumption resent ${resent:-?} stanzas, want at least 1 (batch 2, unacked)"
if grep -F 'resumption refused' "$TMP/server.log"; then
	die "server log: a resumption was refused"
fi

# --- 5. clean shutdown ---------------------------------------------------------
interop_stop_server

FAILED=0
log "PASS: slixmpp XEP-0198 resumption: every message sent while A was cut off arrived exactly once"
