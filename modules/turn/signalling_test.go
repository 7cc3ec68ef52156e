package turn_test

import (
	"strings"
	"testing"

	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

const nsJMI = "urn:xmpp:jingle-message:0"

// jmi matches a XEP-0353 message carrying the element local (propose,
// proceed…) of call id, directly or inside a carbon or an archive result.
func jmi(local, id string) func(*router.Element) bool {
	return func(e *router.Element) bool {
		s := e.String()
		return e.Name.Local == "message" && strings.Contains(s, "<"+local+" xmlns=\""+nsJMI+"\" id=\""+id+"\"")
	}
}

// TestCallSignalling checks what the server does with XEP-0353 call set-up
// messages as Conversations sends them (type chat, store hint): a propose
// reaches every resource of the callee and a carbon of it the caller's
// other resource; the callee's proceed goes back the same way; both are
// in both archives; so do retract, reject, accept and finish; a propose to an account with no session waits
// offline and is delivered at login.
func TestCallSignalling(t *testing.T) {
	s, _ := start(t, nil)
	s.AddUser("carol", password)
	login := func(local, resource string) *testserver.Client {
		c := s.Login(local, password, testserver.LoginOptions{Resource: resource})
		testserver.WantResult(t, c.MustRequest(t, `<iq type='set' id='cb'><enable xmlns='urn:xmpp:carbons:2'/></iq>`))
		c.MustSend(t, `<presence/>`)
		c.MustSync(t)
		return c
	}
	bobPhone, bobLaptop := login("bob", "phone"), login("bob", "laptop")
	alicePhone := login("alice", "phone2")
	alicePC := login("alice", "pc")
	propose := func(to, id string) string {
		return `<message type='chat' to='` + to + `' id='m-` + id + `'><propose xmlns='` + nsJMI + `' id='` + id +
			`'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose><store xmlns='urn:xmpp:hints'/></message>`
	}
	bobPhone.MustSend(t, propose("alice@localhost", "call1"))
	for _, c := range []*testserver.Client{alicePhone, alicePC} {
		c.MustNext(t, "propose", jmi("propose", "call1"))
	}
	bobLaptop.MustNext(t, "carbon of the propose", func(e *router.Element) bool {
		return e.Child("urn:xmpp:carbons:2", "sent") != nil && jmi("propose", "call1")(e)
	})
	alicePC.MustSend(t, `<message type='chat' to='`+bobPhone.LocalAddr().String()+`'><proceed xmlns='`+nsJMI+`' id='call1'/><store xmlns='urn:xmpp:hints'/></message>`)
	bobPhone.MustNext(t, "proceed", jmi("proceed", "call1"))
	alicePhone.MustNext(t, "carbon of the proceed", func(e *router.Element) bool {
		return e.Child("urn:xmpp:carbons:2", "sent") != nil && jmi("proceed", "call1")(e)
	})
	for _, c := range []*testserver.Client{bobLaptop, alicePhone} {
		c.MustSend(t, `<iq type='set' id='mam'><query xmlns='urn:xmpp:mam:2' queryid='q'/></iq>`)
		c.MustNext(t, "archived propose", func(e *router.Element) bool {
			return e.Child("urn:xmpp:mam:2", "result") != nil && jmi("propose", "call1")(e)
		})
		c.MustNext(t, "archived proceed", func(e *router.Element) bool {
			return e.Child("urn:xmpp:mam:2", "result") != nil && jmi("proceed", "call1")(e)
		})
	}
	// The other XEP-0353 messages take the same way: to every resource of
	// the bare JID, a carbon to the sender's other resource, archived.
	for _, tt := range []struct {
		local        string
		from         *testserver.Client
		sentCarbonTo *testserver.Client
		to           string
		receivers    []*testserver.Client
	}{
		{"retract", bobPhone, bobLaptop, "alice@localhost", []*testserver.Client{alicePhone, alicePC}},
		{"reject", alicePC, alicePhone, "bob@localhost", []*testserver.Client{bobPhone, bobLaptop}},
		{"accept", alicePC, alicePhone, "bob@localhost", []*testserver.Client{bobPhone, bobLaptop}},
		{"finish", bobPhone, bobLaptop, "alice@localhost", []*testserver.Client{alicePhone, alicePC}},
	} {
		id := "call-" + tt.local
		tt.from.MustSend(t, `<message type='chat' to='`+tt.to+`'><`+tt.local+` xmlns='`+nsJMI+`' id='`+id+`'/><store xmlns='urn:xmpp:hints'/></message>`)
		for _, c := range tt.receivers {
			c.MustNext(t, tt.local, jmi(tt.local, id))
		}
		tt.sentCarbonTo.MustNext(t, "carbon of the "+tt.local, func(e *router.Element) bool {
			return e.Child("urn:xmpp:carbons:2", "sent") != nil && jmi(tt.local, id)(e)
		})
		tt.receivers[0].MustSend(t, `<iq type='set' id='mam-`+id+`'><query xmlns='urn:xmpp:mam:2' queryid='q-`+id+`'/></iq>`)
		tt.receivers[0].MustNext(t, "archived "+tt.local, func(e *router.Element) bool {
			return e.Child("urn:xmpp:mam:2", "result") != nil && jmi(tt.local, id)(e)
		})
	}

	bobPhone.MustSend(t, propose("carol@localhost", "call2"))
	bobPhone.MustSync(t)
	carol := s.Login("carol", password, testserver.LoginOptions{Resource: "phone"})
	carol.MustSend(t, `<presence/>`)
	carol.MustNext(t, "offline propose", jmi("propose", "call2"))
}

// TestJingleOverFederation sends a Jingle session-initiate between full
// JIDs of two federated domains and gets the callee's answer back.
func TestJingleOverFederation(t *testing.T) {
	servers := testserver.StartFederation(t, nil, "a.test", "b.test")
	servers[0].AddUser("alice", password)
	servers[1].AddUser("bob", password)
	var got *router.Element
	alice := servers[0].Login("alice", password, testserver.LoginOptions{Resource: "phone", AnswerIQ: func(req *router.Element) *router.Element {
		got = req
		return router.NewElement("", "iq", "type", "result", "id", req.Get("id"), "to", req.Get("from"))
	}})
	bob := servers[1].Login("bob", password, testserver.LoginOptions{Resource: "pc"})
	resp := bob.MustRequest(t, `<iq type='set' id='j1' to='`+alice.LocalAddr().String()+`'><jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' initiator='bob@b.test/pc' sid='s1'><content creator='initiator' name='voice'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'/></content></jingle></iq>`)
	testserver.WantResult(t, resp)
	if got == nil || got.Get("from") != "bob@b.test/pc" || got.Child("urn:xmpp:jingle:1", "jingle") == nil {
		t.Fatalf("callee got %v", got)
	}
}
