package caps_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/internal/routertest"
	"github.com/xmppd/xmppd/modules/caps"
	"github.com/xmppd/xmppd/router"
)

// FuzzVerificationString feeds a peer's disco#info answer, which is
// hostile input, to ParseInfo, Check and VerHash: none may panic, and S
// must not depend on the order of the answer's children (nor of a form's
// fields), since the XEP sorts them all.
func FuzzVerificationString(f *testing.F) {
	f.Add(simpleInfo)
	f.Add(complexInfo)
	f.Add(`<query xmlns='http://jabber.org/protocol/disco#info'><identity category='a' type='b' name='&amp;lt;'/><x xmlns='jabber:x:data'><field var='FORM_TYPE'/></x></query>`)
	f.Fuzz(func(t *testing.T, s string) {
		// Read as the server reads a stanza, with limits on size and
		// depth.
		rd := router.NewReader(strings.NewReader(routertest.StreamHeader+s), router.NSClient, 65536, 16)
		if _, err := rd.Header(); err != nil {
			t.Fatal(err)
		}
		q, err := rd.Next()
		if err != nil {
			return
		}
		info := caps.ParseInfo(q)
		_ = info.Check()
		for _, h := range []string{caps.SHA1, caps.SHA256, caps.SHA512, "md5"} {
			caps.VerHash(info, h)
		}
		reversed := q.Copy()
		slices.Reverse(reversed.Children)
		for _, c := range reversed.Elements() {
			if c.Name.Local == "x" {
				slices.Reverse(c.Children)
			}
		}
		if a, b := info.VerificationString(), caps.ParseInfo(reversed).VerificationString(); a != b {
			t.Errorf("S depends on the order of children:\n%q\n%q", a, b)
		}
	})
}
