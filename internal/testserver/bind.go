package testserver

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/router"
)

// bindResource is the client side of resource binding (RFC 6120 §7) that
// asks for a given resource. mellium's own BindResource always sends an
// empty <resource/> (its bindPayload writes the JID, which is still empty,
// as the resource text), so the server would always pick the resource.
func bindResource(resource string) xmpp.StreamFeature {
	return xmpp.StreamFeature{
		Name:       xml.Name{Space: nsBind, Local: "bind"},
		Necessary:  xmpp.Authn,
		Prohibited: xmpp.Ready,
		Parse: func(_ context.Context, d *xml.Decoder, _ *xml.StartElement) (bool, any, error) {
			return true, nil, d.Skip()
		},
		Negotiate: func(_ context.Context, session *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, error) {
			id := "bind-" + router.NewID()
			iq := router.NewElement("", "iq", "type", "set", "id", id).Append(
				router.NewElement(nsBind, "bind").Append(
					router.NewElement(nsBind, "resource").AppendText(resource)))
			if err := writeRaw(session.TokenWriter(), session.Conn(), iq.String()); err != nil {
				return 0, nil, err
			}
			r := session.TokenReader()
			defer r.Close()
			var start xml.StartElement
			for {
				tok, err := r.Token()
				if err != nil {
					return 0, nil, err
				}
				if s, ok := tok.(xml.StartElement); ok {
					start = s.Copy()
					break
				}
			}
			resp, err := readElement(start, r)
			if err != nil {
				return 0, nil, err
			}
			if resp.Name.Local != "iq" || resp.Get("id") != id {
				return 0, nil, fmt.Errorf("bind: unexpected answer %s", resp)
			}
			if cond, typ := ErrorCondition(resp); resp.Get("type") == "error" {
				return 0, nil, stanza.Error{Type: stanza.ErrorType(typ), Condition: stanza.Condition(cond)}
			}
			b := resp.Child(nsBind, "bind")
			if resp.Get("type") != "result" || b == nil || b.Child(nsBind, "jid") == nil {
				return 0, nil, fmt.Errorf("bind: unexpected answer %s", resp)
			}
			j, err := jid.Parse(b.Child(nsBind, "jid").Text())
			if err != nil {
				return 0, nil, fmt.Errorf("bind: %w", err)
			}
			session.UpdateAddr(j)
			return xmpp.Ready, nil, nil
		},
	}
}
