#!/usr/bin/env bash
# Interop test: two @xmpp/client 0.14 clients (from the npm registry, run
# with Debian's node) log in to xmppd with the library's default settings
# over TCP (xmpp://127.0.0.1:PORT, STARTTLS) and chat both ways
# (xmpp_client.mjs).
#
#   scripts/interop/xmpp-client.sh      # from anywhere; exit 0 = pass
#
# The package is installed with `npm install --prefix` into a cache outside
# the tree (INTEROP_NPM_PREFIX, default /var/cache/xmppd-interop/npm) unless
# it is there already; nodejs and npm come from apt if missing. The server
# certificate is verified: NODE_EXTRA_CA_CERTS names the generated one.
#
# Environment: XMPPD_BIN, INTEROP_KEEP (see lib.bash);
# INTEROP_NPM_PREFIX=DIR; INTEROP_TIMEOUT=SECS (default 60) for the clients.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INTEROP_NAME=xmpp-client.sh
CLIENT_TIMEOUT=${INTEROP_TIMEOUT:-60}
NPM_PREFIX=${INTEROP_NPM_PREFIX:-/var/cache/xmppd-interop/npm}
NPM_PKG=@xmpp/client@0.14
# shellcheck source=lib.bash
. "$HERE/lib.bash"

interop_init
interop_apt_install node nodejs
interop_apt_install npm npm
MODS="$NPM_PREFIX/node_modules"
if [ ! -f "$MODS/@xmpp/client/package.json" ]; then
	log "npm install --prefix $NPM_PREFIX $NPM_PKG"
	mkdir -p "$NPM_PREFIX"
	timeout 300 npm install --prefix "$NPM_PREFIX" --no-audit --no-fund "$NPM_PKG" >"$TMP/npm.log" 2>&1 ||
		{ cat "$TMP/npm.log" >>"$TMP/client.stderr"; die "npm install $NPM_PKG failed"; }
fi
VERSION=$(node -p "require('$MODS/@xmpp/client/package.json').version")
case $VERSION in 0.14.*) ;; *) die "$MODS has @xmpp/client $VERSION, want 0.14.x" ;; esac
log "@xmpp/client $VERSION (from $MODS), node $(node --version)"

interop_write_config "disco, ping, version, time, roster"
interop_config_check || die "xmppd config check rejected $CFG"
interop_start_server
interop_add_alice_bob

log "running xmpp_client.mjs (hard timeout ${CLIENT_TIMEOUT}s)"
set +e
XMPP_NODE_MODULES=$MODS NODE_EXTRA_CA_CERTS=$CERT XMPP_PASSWORD_A=$PW_A XMPP_PASSWORD_B=$PW_B \
	timeout -k 5 "$CLIENT_TIMEOUT" node --experimental-websocket "$HERE/xmpp_client.mjs" "$PORT" "$DOMAIN" \
	2>"$TMP/client.stderr"
rc=$?
set -e
[ "$rc" != 124 ] && [ "$rc" != 137 ] || die "xmpp_client.mjs killed after ${CLIENT_TIMEOUT}s"
[ "$rc" = 0 ] || die "xmpp_client.mjs failed (exit $rc)"

interop_log_mechanisms alice bob

interop_stop_server
FAILED=0
log "PASS: @xmpp/client $VERSION STARTTLS login (certificate verified) and chat both ways"
