// Package version answers XEP-0092 software version queries to the server,
// which operators and clients use to see what they are talking to.
package version

import (
	"context"
	"runtime"
	"runtime/debug"

	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/router"
)

// NS is the XEP-0092 namespace.
const NS = "jabber:iq:version"

// Name is the software name reported.
const Name = "xmppd"

func init() {
	modules.Register("version", func() *Version { return new(Version) })
}

// Version is the version module.
type Version struct{}

var _ modules.Starter = (*Version)(nil)

// String is the version of this build: the module version from the build
// information when there is one, else "devel".
func String() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// Start implements modules.Starter.
func (*Version) Start(_ context.Context, h *modules.Host) error {
	h.AddFeature(router.ToServer, NS)
	return h.HandleIQ(router.ToServer, stanza.GetIQ, NS, func(_ context.Context, iq *router.Stanza) *router.Stanza {
		q := router.NewElement(NS, "query").Append(
			router.NewElement(NS, "name").AppendText(Name),
			router.NewElement(NS, "version").AppendText(String()),
			router.NewElement(NS, "os").AppendText(runtime.GOOS),
		)
		return iq.Reply(q)
	})
}
