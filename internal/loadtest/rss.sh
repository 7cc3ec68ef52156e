#!/usr/bin/env bash
# Measures the resident memory of a real server process per idle,
# authenticated TLS session: the server runs as its own process (the built
# xmppd binary, or Prosody), xmppd-load opens N sessions from another process,
# and the server's VmRSS is read from /proc before, while holding, and after.
#
#   internal/loadtest/rss.sh xmppd   [N]   # default N=2000
#   internal/loadtest/rss.sh prosody [N]   # needs the Debian prosody package (0.12), run as root
#
# Loopback only, ports 15222 (xmppd) and 15322 (Prosody); everything lives in
# a temporary directory that is removed at the end. See docs/PERFORMANCE.md.
set -euo pipefail

server=${1:?usage: rss.sh xmppd|prosody [N]}
n=${2:-2000}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/xmppd-rss.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
	status=$?
	if [ "$status" != 0 ]; then
		for f in "$work/server.log" "$work/prosody.log"; do
			[ -s "$f" ] || continue
			echo "--- $f (last lines)" >&2
			tail -n 20 "$f" >&2
		done
	fi
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$1/status"; }

echo "building xmppd-load" >&2
(cd "$root" && go build -o "$work/xmppd-load" ./cmd/xmppd-load)
password=load-test-password

case $server in
xmppd)
	(cd "$root" && go build -o "$work/xmppd" ./cmd/xmppd)
	port=15222
	cat >"$work/xmppd.yaml" <<EOF
data_dir: $work/data
hosts:
  - domain: localhost
listeners:
  - type: c2s
    address: "127.0.0.1:$port"
limits:
  max_sessions_per_user: 10
log:
  level: warn
EOF
	echo "$password" | "$work/xmppd" --config "$work/xmppd.yaml" user add load0@localhost --password-stdin >&2
	# The other accounts get load0's credentials: deriving 2000 SCRAM keys
	# would take minutes and changes nothing that is measured.
	sqlite3 "$work/data/xmppd.db" <<EOF
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < $n - 1)
INSERT INTO users SELECT u.domain, 'load' || seq.i, u.created_at FROM users u, seq WHERE u.local = 'load0';
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < $n - 1)
INSERT INTO credentials SELECT c.domain, 'load' || seq.i, c.mechanism, c.salt, c.iterations, c.stored_key, c.server_key
  FROM credentials c, seq WHERE c.local = 'load0';
EOF
	"$work/xmppd" --config "$work/xmppd.yaml" serve 2>"$work/server.log" &
	spid=$!
	pids+=("$spid")
	mech=SCRAM-SHA-256
	;;
prosody)
	command -v prosody >/dev/null || { echo "prosody is not installed (apt-get install prosody)" >&2; exit 1; }
	port=15322
	mkdir -p "$work/data/localhost/accounts"
	# internal_plain keeps one small Lua file per account, so thousands of
	# accounts are written directly; Prosody derives SCRAM from them.
	for ((i = 0; i < n; i++)); do
		printf 'return {\n\t["password"] = "%s";\n};\n' "$password" >"$work/data/localhost/accounts/load$i.dat"
	done
	mkdir -p "$work/certs"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
		-keyout "$work/certs/localhost.key" -out "$work/certs/localhost.crt" 2>/dev/null
	cat >"$work/prosody.cfg.lua" <<EOF
pidfile = "$work/prosody.pid"
data_path = "$work/data"
log = { warn = "$work/prosody.log" }
interfaces = { "127.0.0.1" }
c2s_ports = { $port }
c2s_direct_tls_ports = {}
s2s_ports = {}
http_ports = {}
https_ports = {}
certificates = "$work/certs"
modules_enabled = { "roster", "saslauth", "tls", "disco", "ping", "version", "time", "posix" }
modules_disabled = { "s2s" }
authentication = "internal_plain"
c2s_require_encryption = true
allow_unencrypted_plain_auth = false
VirtualHost "localhost"
	ssl = { key = "$work/certs/localhost.key", certificate = "$work/certs/localhost.crt" }
EOF
	chown -R prosody: "$work"
	ulimit -n "$(ulimit -Hn)"
	# setpriv rather than runuser: PAM would lower the open-files limit to
	# 1024 and Prosody would fail past a thousand sessions.
	setpriv --reuid=prosody --regid=prosody --init-groups -- prosody -F --config "$work/prosody.cfg.lua" 2>>"$work/server.log" &
	spid=$!
	pids+=("$spid")
	mech=SCRAM-SHA-1
	;;
*)
	echo "unknown server $server" >&2
	exit 2
	;;
esac

# Wait for the listener.
for _ in $(seq 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
	sleep 0.1
done
sleep 2
before=$(rss "$spid")
ulimit -n "$(ulimit -Hn)"
coproc LOAD { XMPPD_LOAD_PASSWORD=$password exec "$work/xmppd-load" -addr "127.0.0.1:$port" -domain localhost \
	-n "$n" -user 'load%d' -resource load -mech "$mech" -insecure -stdin-eof -hold 10m; }
pids+=("$LOAD_PID")
read -r ready <&"${LOAD[0]}"
echo "load client: $ready" >&2
sleep 5
held=$(rss "$spid")
held_threads=$(threads "$spid")
exec {LOAD[1]}>&-
wait "$LOAD_PID" || true
sleep 5
after=$(rss "$spid")
after_threads=$(threads "$spid")
awk -v s="$server" -v n="$n" -v b="$before" -v h="$held" -v a="$after" -v t="$held_threads" -v ta="$after_threads" 'BEGIN {
	printf "%s: %d sessions; VmRSS before %d KiB, held %d KiB, after close %d KiB; %.1f KiB per session; OS threads %d held, %d after close\n",
		s, n, b, h, a, (h - b) / n, t, ta
}'
