package testserver

import (
	"context"
	"testing"

	"github.com/xmppd/xmppd/router"
)

// EchoOwner is the owner the echo service registers as.
const EchoOwner = "echo"

// NSDiscoInfo is the XEP-0030 namespace the echo service answers.
const NSDiscoInfo = "http://jabber.org/protocol/disco#info"

// AddEcho makes r serve a test-only service at echo.DOMAIN (DOMAIN being
// domain) the way a module owns conference.DOMAIN: a message to the
// service or to any JID under it comes back to its sender from the address
// it was sent to, with the same type, id and body; disco#info to the service
// names it (category component, type generic, name echo); anything else is
// left to the router (so an IQ gets service-unavailable). It is removed when
// the test ends, and returns the service address.
func AddEcho(t testing.TB, r *router.Router, domain string) string {
	t.Helper()
	addr := "echo." + domain
	svc, err := r.AddService(EchoOwner, addr, func(ctx context.Context, st *router.Stanza) bool {
		if st.Kind() != router.KindMessage || st.Type() == "error" {
			return false
		}
		reply := st.Reply()
		if typ := st.Type(); typ != "" {
			reply.SetAttr("type", typ)
		}
		if b := st.Child("", "body"); b != nil {
			reply.Append(b.Copy())
		}
		r.Route(ctx, reply)
		return true
	})
	if err != nil {
		t.Fatalf("echo service: %v", err)
	}
	t.Cleanup(svc.Remove)
	info, err := r.HandleServiceIQ(EchoOwner, addr, "get", NSDiscoInfo, func(_ context.Context, iq *router.Stanza) *router.Stanza {
		q := router.NewElement(NSDiscoInfo, "query")
		q.Append(router.NewElement(NSDiscoInfo, "identity", "category", "component", "type", "generic", "name", "echo"))
		q.Append(router.NewElement(NSDiscoInfo, "feature", "var", NSDiscoInfo))
		return iq.Reply(q)
	})
	if err != nil {
		t.Fatalf("echo service: %v", err)
	}
	t.Cleanup(info.Remove)
	return addr
}
