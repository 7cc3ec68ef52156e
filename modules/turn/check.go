package turn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/modules"
)

// Check is `xmppd check turn`, as `prosodyctl check turn` is for Prosody:
// it makes credentials for account from the configured secret (so it runs
// where the server's data_dir is), allocates a relayed address over UDP
// and over TCP at the turn listener, sends a packet through each to an
// echo peer on this machine and reads it back. It returns a line per
// step and whether every step worked; a configuration it cannot use is an
// error. A relay that listens on a public address refuses loopback peers
// unless allow_peers lets them in (127.0.0.1/32), which the report says.
func Check(ctx context.Context, cfg *config.Config, account string) (string, bool, error) {
	opts := DefaultOptions()
	if err := cfg.DecodeModuleOptions(ID, &opts); err != nil {
		return "", false, err
	}
	var address string
	for _, l := range cfg.Listeners {
		if l.Type == config.ListenerTURN {
			address = l.Address
			break
		}
	}
	if address == "" {
		return "", false, errors.New("check turn: no listener of type turn in the configuration")
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return "", false, fmt.Errorf("check turn: turn listener %q: %w", address, err)
	}
	host := ap.Addr()
	if host.IsUnspecified() {
		host = netip.MustParseAddr("127.0.0.1")
	}
	server := net.JoinHostPort(host.String(), strconv.Itoa(int(ap.Port())))
	secret, err := modules.LoadSecret(opts.Secret, filepath.Join(cfg.DataDir, secretFile))
	if err != nil {
		return "", false, fmt.Errorf("check turn: %w", err)
	}
	realm := "xmppd"
	if len(cfg.Hosts) > 0 {
		realm = cfg.Hosts[0].Domain
	}
	if account == "" {
		account = "turn-check@" + realm
	}
	user, pass := Credentials(secret, account, time.Now().Add(10*time.Minute))
	var b strings.Builder
	fmt.Fprintf(&b, "relay %s, credentials for %s\n", server, account)
	ok := true
	for _, transport := range []string{"udp", "tcp"} {
		if err := ctx.Err(); err != nil {
			return b.String(), false, err
		}
		res, err := Probe{Server: server, Transport: transport, Username: user, Password: pass, Realm: realm}.Run()
		if err != nil {
			ok = false
			fmt.Fprintf(&b, "%s: FAILED: %v\n", transport, err)
			if strings.Contains(err.Error(), "send to peer") && !host.IsLoopback() {
				fmt.Fprintf(&b, "%s: the echo peer is on 127.0.0.1, which a public relay refuses: add 127.0.0.1/32 to module_options.turn.allow_peers to test\n", transport)
			}
			continue
		}
		fmt.Fprintf(&b, "%s: ok: relayed address %s, seen as %s, echo through the relay in %v\n",
			transport, res.Relayed, res.Reflexive, res.RTT.Round(time.Microsecond))
	}
	return b.String(), ok, nil
}
