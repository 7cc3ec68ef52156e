#!/usr/bin/env bash
# Interop test: Converse.js 14.0 (the web client, `converse.js` from the npm
# registry) in Debian's Chromium, headless, driven by playwright-core,
# against xmppd over WebSocket (RFC 7395), with a slixmpp user on the other
# side (issue 13 point 7):
#
#   1. xmppd runs with its usual modules and upload (XEP-0363, at
#      upload.interop.test), an https listener (WebSocket at
#      /xmpp-websocket, the upload URLs) and web.access_log on; alice and
#      bob are accounts with a mutual subscription (`xmppd roster add`);
#   2. bob logs in with slixmpp (slixmpp_conversejs.py);
#   3. conversejs.mjs serves a page on http://127.0.0.1:PORT that loads
#      Converse.js with websocket_url = wss://interop.test:HTTPS/xmpp-websocket
#      and its defaults otherwise; web.websocket.origins allows that page's
#      origin (127.0.0.1), the configuration a site embedding Converse needs;
#   4. in Chromium: alice logs in through Converse's login form, opens bob
#      from the roster and sends him a message; bob replies and the reply
#      must show in Converse's chat view;
#   5. alice sends a PNG with the toolbar's paperclip (the file chooser on
#      Converse's <input type=file>): Converse requests a slot, PUTs the file
#      and sends its GET URL (body and XEP-0066 OOB); it must show the image
#      (loaded from xmppd) in the chat; bob must get the URL, download it
#      and find the same SHA-256 as the file picked;
#   6. a screenshot of the chat is kept at $INTEROP_OUT/conversejs-chat.png
#      (default /var/cache/xmppd-interop/out; on failure also
#      conversejs-chat-failure.png and .html there), bob still online;
#   7. alice logs out in Converse (profile, Log out, Confirm): Converse
#      sends <close/>, bob sees her go offline, the server log shows her
#      WebSocket session closed (not hibernating); xmppd's access log
#      (web.access_log) must show the WebSocket upgrade, the browser's CORS
#      preflight (OPTIONS) of its cross-origin PUT, the PUT (201) and two
#      GETs (Chromium showing the image, bob); xmppd stops cleanly.
#
#   scripts/interop/conversejs.sh      # from anywhere; exit 0 = pass
#
# Installs, each only when missing: Debian's chromium and chromium-driver
# (apt), nodejs and npm (apt), and converse.js 14.0 with playwright-core 1.65
# (`npm install --prefix` into INTEROP_CONVERSE_NPM_PREFIX, default
# /var/cache/xmppd-interop/npm-conversejs). Playwright drives
# /usr/bin/chromium over CDP (no Playwright browser download; chromium-driver
# is installed for WebDriver users but not used here). Everything is on
# loopback: Chromium maps interop.test and *.interop.test to 127.0.0.1 and
# trusts only the key of xmppd's generated certificate.
#
# Environment: XMPPD_BIN, INTEROP_KEEP (see lib.bash); INTEROP_DEBUG=1
# (slixmpp's XML on stderr); INTEROP_OUT=DIR (the screenshot);
# INTEROP_CONVERSE_NPM_PREFIX=DIR; INTEROP_TIMEOUT=SECS (default 240) for
# the browser run (bob's slixmpp gets 30 s more; the Chromium run also stops
# itself after 150 s and each UI step after 30 s; npm install 300 s).
# Timing here (2 shared cores): warm caches about 12 s in all, the browser
# part about 6 s; see docs/INTEROP.md for Converse's behaviour.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INTEROP_NAME=conversejs.sh
CLIENT_TIMEOUT=${INTEROP_TIMEOUT:-240}
NPM_PREFIX=${INTEROP_CONVERSE_NPM_PREFIX:-/var/cache/xmppd-interop/npm-conversejs}
NPM_PKGS=(converse.js@14.0 playwright-core@1.65)
OUT=${INTEROP_OUT:-/var/cache/xmppd-interop/out}
SHOT="$OUT/conversejs-chat.png"
MODULES="disco, ping, version, time, roster, offline, blocking, carbons, vcard, private, last, mam, pep, upload"
BOB_PID=""
# shellcheck source=lib.bash
. "$HERE/lib.bash"

# stop_bob (the EXIT trap's INTEROP_ON_EXIT): stop the slixmpp client if it
# still runs, and show its output unless the test passed.
stop_bob() {
	if [ -n "$BOB_PID" ] && kill -0 "$BOB_PID" 2>/dev/null; then
		kill -TERM "$BOB_PID" 2>/dev/null || true
		wait "$BOB_PID" 2>/dev/null || true
	fi
	if [ "$FAILED" = 1 ] && [ -n "$TMP" ]; then
		for f in bob.out bob.stderr; do
			[ -s "$TMP/$f" ] || continue
			echo "----- slixmpp (bob) $f -----"
			cat "$TMP/$f"
			echo "----- end of $f -----"
		done
	fi
}
INTEROP_ON_EXIT=stop_bob

# --- 1. software -------------------------------------------------------------
interop_init
t_install=$(date +%s)
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
	log "chromium and chromium-driver are installed"
else
	interop_apt_get_install chromium chromium-driver
	command -v chromium >/dev/null && command -v chromedriver >/dev/null ||
		die "chromium and chromium-driver installed but chromium or chromedriver is not on PATH"
fi
[ -x /usr/bin/chromium ] || die "no /usr/bin/chromium"
interop_apt_install node nodejs
interop_apt_install npm npm
MODS="$NPM_PREFIX/node_modules"
if [ ! -f "$MODS/converse.js/package.json" ] || [ ! -f "$MODS/playwright-core/package.json" ]; then
	log "npm install --prefix $NPM_PREFIX ${NPM_PKGS[*]}"
	mkdir -p "$NPM_PREFIX"
	timeout 300 npm install --prefix "$NPM_PREFIX" --no-audit --no-fund "${NPM_PKGS[@]}" >"$TMP/npm.log" 2>&1 ||
		{ cat "$TMP/npm.log" >>"$TMP/client.stderr"; die "npm install ${NPM_PKGS[*]} failed"; }
fi
CONVERSE_VERSION=$(node -p "require('$MODS/converse.js/package.json').version")
PLAYWRIGHT_VERSION=$(node -p "require('$MODS/playwright-core/package.json').version")
case $CONVERSE_VERSION in 14.0.*) ;; *) die "$MODS has converse.js $CONVERSE_VERSION, want 14.0.x" ;; esac
case $PLAYWRIGHT_VERSION in 1.65.*) ;; *) die "$MODS has playwright-core $PLAYWRIGHT_VERSION, want 1.65.x" ;; esac
CHROMIUM_VERSION=$(dpkg-query -W -f '${Version}' chromium)
log "converse.js $CONVERSE_VERSION, playwright-core $PLAYWRIGHT_VERSION (from $MODS)," \
	"chromium $CHROMIUM_VERSION, chromium-driver $(dpkg-query -W -f '${Version}' chromium-driver), node $(node --version)" \
	"(checked/installed in $(($(date +%s) - t_install))s)"

# --- 2. xmppd, accounts ---------------------------------------------------------
interop_write_config "$MODULES" "https" "web:
  access_log: true       # every HTTP request in the server log (checked below)
  websocket:
    origins: [127.0.0.1]   # the page's origin (http://127.0.0.1:PORT)"
interop_config_check || die "xmppd config check rejected $CFG"
interop_start_server
HTTPS_PORT=$(interop_listener_port https)
log "xmppd https listener on 127.0.0.1:$HTTPS_PORT"
interop_add_alice_bob
timeout 30 "$BIN" roster add "alice@$DOMAIN" "bob@$DOMAIN" --name Bob --config "$CFG" >/dev/null ||
	die "xmppd roster add alice@$DOMAIN bob@$DOMAIN failed"
log "alice and bob are contacts (subscription both, xmppd roster add)"

# The file alice sends: a 160x96 PNG, a red-green gradient with random
# blue, so each run's bytes (and SHA-256) are new.
UPLOAD="$TMP/xmppd-interop-$(interop_rand).png"
"$PY" - "$UPLOAD" <<'EOF' || die "cannot write the test PNG"
import os, struct, sys, zlib
w, h = 160, 96
blue = os.urandom(w * h)
raw = b"".join(b"\0" + bytes(c for x in range(w) for c in (x * 255 // w, y * 255 // h, blue[y * w + x] // 2 + 64))
               for y in range(h))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
       + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
open(sys.argv[1], "wb").write(png)
EOF
SHA=$(sha256sum "$UPLOAD" | cut -d' ' -f1)
log "file to upload: $(basename "$UPLOAD"), $(stat -c %s "$UPLOAD") bytes, sha256 $SHA"

mkdir -p "$OUT"
rm -f "$OUT"/conversejs-chat*.png "$OUT"/conversejs-chat*.html

# --- 3. bob (slixmpp) ------------------------------------------------------------
BODY="Hello Bob, this is Alice in Converse.js $(interop_rand | cut -c1-8) ✓"
REPLY="Hi Alice, Bob here on slixmpp: got it $(interop_rand | cut -c1-8)"
debug=()
[ "${INTEROP_DEBUG:-}" = 1 ] && debug=(--debug)
BOB_TIMEOUT=$((CLIENT_TIMEOUT + 30))
log "starting slixmpp_conversejs.py as bob (hard timeout ${BOB_TIMEOUT}s)"
XMPP_PASSWORD_B=$PW_B timeout -k 5 "$BOB_TIMEOUT" "$PY" "$HERE/slixmpp_conversejs.py" \
	--port "$PORT" --jid "bob@$DOMAIN/slix-b" --peer "alice@$DOMAIN" --ca-file "$CERT" \
	--body "$BODY" --reply "$REPLY" --sha256 "$SHA" \
	--wait "$CLIENT_TIMEOUT" --timeout "$((BOB_TIMEOUT - 10))" "${debug[@]}" \
	>"$TMP/bob.out" 2>"$TMP/bob.stderr" &
BOB_PID=$!
interop_wait_for_text "$TMP/bob.out" "READY" 30 || die "slixmpp (bob) not online within 30 s"
log "bob is online (slixmpp)"

# --- 4./5. Converse.js in Chromium ---------------------------------------------
log "running conversejs.mjs (Chromium headless; hard timeout ${CLIENT_TIMEOUT}s)"
set +e
XMPP_PASSWORD_A=$PW_A CONVERSE_BODY=$BODY CONVERSE_REPLY=$REPLY \
	timeout -k 5 "$CLIENT_TIMEOUT" node "$HERE/conversejs.mjs" "$MODS" "$DOMAIN" \
	"wss://$DOMAIN:$HTTPS_PORT/xmpp-websocket" "$CERT" "$UPLOAD" "$SHOT" \
	2>"$TMP/client.stderr"
rc=$?
set -e
[ "$rc" != 124 ] && [ "$rc" != 137 ] || die "conversejs.mjs killed after ${CLIENT_TIMEOUT}s"
[ "$rc" = 0 ] || die "conversejs.mjs failed (exit $rc)"

set +e
wait "$BOB_PID"
brc=$?
set -e
BOB_PID=""
cat "$TMP/bob.out"
[ "$brc" != 124 ] && [ "$brc" != 137 ] || die "slixmpp_conversejs.py killed after ${BOB_TIMEOUT}s"
[ "$brc" = 0 ] || die "slixmpp_conversejs.py failed (exit $brc)"
[ -s "$SHOT" ] || die "no screenshot at $SHOT"
log "screenshot of the chat: $SHOT ($(stat -c %s "$SHOT") bytes)"

# The server saw alice log in over WebSocket and the file uploaded.
grep -q "msg=\"c2s session bound\".* transport=websocket jid=alice@$DOMAIN/" "$TMP/server.log" ||
	die "the server log has no WebSocket session of alice"
grep -q "msg=\"file uploaded\" module=upload account=alice@$DOMAIN .* bytes=$(stat -c %s "$UPLOAD")" "$TMP/server.log" ||
	die "the server log has no upload of $(stat -c %s "$UPLOAD") bytes by alice"
grep -q "msg=\"c2s connection closed\" .* transport=websocket jid=alice@$DOMAIN/" "$TMP/server.log" ||
	die "the server log has no end of alice's WebSocket connection after she logged out"
! grep -q "msg=\"c2s session hibernating\" .* jid=alice@$DOMAIN/" "$TMP/server.log" ||
	die "alice's session hibernated: the server did not take Converse's <close/> as the end of the stream"
log "server log: alice's session over WebSocket, her upload of $(stat -c %s "$UPLOAD") bytes," \
	"her connection closed at logout (no hibernation)"
# The HTTP side (web.access_log): the WebSocket upgrade, the browser's CORS
# preflight of its cross-origin PUT, the PUT, and the GETs (Chromium
# showing the image, bob downloading it).
UPATH=$(sed -n 's/.*B: received a file message from .* = body = https:\/\/[^/]*\(\/[^?]*\).*/\1/p' "$TMP/bob.out")
[ -n "$UPATH" ] || die "no upload URL in bob's output"
access() { grep "msg=\"http request\" method=$1 path=$2 .* status=$3 " "$TMP/server.log"; }
access GET /xmpp-websocket 101 >/dev/null || die "the access log has no WebSocket upgrade (GET /xmpp-websocket 101)"
access OPTIONS "$UPATH" '2[0-9][0-9]' >/dev/null || die "the access log has no successful CORS preflight (OPTIONS $UPATH)"
access PUT "$UPATH" 201 >/dev/null || die "the access log has no PUT $UPATH 201"
[ "$(access GET "$UPATH" 200 | wc -l)" -ge 2 ] || die "the access log has fewer than two GET $UPATH 200 (Chromium, bob)"
grep "msg=\"http request\"" "$TMP/server.log" | sed 's/^time=[^ ]* level=[A-Z]* msg="http request" /  http: /; s/ user_agent=.*//'
interop_log_mechanisms alice bob

# --- 6. clean shutdown -----------------------------------------------------------
interop_stop_server
FAILED=0
log "PASS: Converse.js $CONVERSE_VERSION in Chromium $CHROMIUM_VERSION (WebSocket) chatted with slixmpp" \
	"and sent a file by HTTP File Upload that slixmpp downloaded with the same SHA-256"
log "output: $OUT (conversejs-chat.png)"
