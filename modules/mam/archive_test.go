package mam_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/mam"
	"github.com/xmppd/xmppd/router"
)

// TestArchiveBothEnds: a message between two local accounts is archived
// once in each archive, the recipient's copy carrying the stanza-id of
// the recipient's archive (also in carbons), the sender's archive having
// its own id, and nothing of one archive shows in the other.
func TestArchiveBothEnds(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice", "bob")
		alice := online(t, s, "alice", "phone")
		aliceDesk := online(t, s, "alice", "desk")
		testserver.WantResult(t, aliceDesk.MustRequest(t, `<iq type="set" id="c"><enable xmlns="urn:xmpp:carbons:2"/></iq>`))
		bobPhone := online(t, s, "bob", "phone")
		bobDesk := online(t, s, "bob", "desk")
		bobLaptop := s.Login("bob", pw, testserver.LoginOptions{Resource: "laptop"}) // no presence: a carbon
		testserver.WantResult(t, bobLaptop.MustRequest(t, `<iq type="set" id="c"><enable xmlns="urn:xmpp:carbons:2"/></iq>`))

		// To the bare JID: both available resources get it, the
		// archive has it once.
		send(t, alice, "bob@localhost", "m1", "hello")
		var sid string
		for _, c := range []*testserver.Client{bobPhone, bobDesk} {
			m := c.MustNext(t, "the message", byID("m1"))
			ids := stanzaIDs(m)
			if len(ids) != 1 || ids["bob@localhost"] == "" || ids["bob@localhost"] == "DUPLICATE" {
				t.Fatalf("delivered with stanza-ids %v, want one by bob@localhost: %s", ids, m)
			}
			if sid != "" && ids["bob@localhost"] != sid {
				t.Errorf("the two resources got different stanza-ids %s and %s", sid, ids["bob@localhost"])
			}
			sid = ids["bob@localhost"]
		}
		carbon := bobLaptop.MustNext(t, "the carbon", func(e *router.Element) bool { return e.Child("urn:xmpp:carbons:2", "received") != nil })
		inner := forwarded(carbon.Child("urn:xmpp:carbons:2", "received"))
		if ids := stanzaIDs(inner); len(ids) != 1 || ids["bob@localhost"] != sid {
			t.Errorf("the carbon has stanza-ids %v, want only bob's %s: %s", ids, sid, carbon)
		}

		bp := query(t, bobPhone, q{})
		if got := bp.ids(); !slices.Equal(got, []string{sid}) {
			t.Fatalf("bob's archive holds %v, want [%s]", got, sid)
		}
		if !bp.complete() || bp.count() != "1" {
			t.Errorf("fin %s, want complete with count 1", bp.fin)
		}
		m := forwarded(bp.results[0])
		if m.Get("from") != "alice@localhost/phone" || m.Get("to") != "bob@localhost" || m.Child("", "body").Text() != "hello" {
			t.Errorf("bob's archived message: %s", m)
		}
		if d := bp.results[0].Child(mam.NSForward, "forwarded").Child(mam.NSDelay, "delay"); d == nil || d.Get("stamp") == "" {
			t.Errorf("result without a delay stamp: %s", bp.results[0])
		}

		ap := query(t, alice, q{})
		if len(ap.results) != 1 {
			t.Fatalf("alice's archive holds %v, want one message", ap.ids())
		}
		aid := ap.results[0].Get("id")
		if aid == sid || aid == "" {
			t.Errorf("alice's archive id %q, want one of its own (bob's is %s)", aid, sid)
		}
		// Her sent carbon carries her archive's id (XEP-0313 §3.2), and
		// only hers; bob's copies had only bob's (checked above).
		sent := aliceDesk.MustNext(t, "the sent carbon", func(e *router.Element) bool { return e.Child("urn:xmpp:carbons:2", "sent") != nil })
		if ids := stanzaIDs(forwarded(sent.Child("urn:xmpp:carbons:2", "sent"))); len(ids) != 1 || ids["alice@localhost"] != aid {
			t.Errorf("the sent carbon has stanza-ids %v, want only alice's %s: %s", ids, aid, sent)
		}
		am := forwarded(ap.results[0])
		// Archived as routed, as Prosody does: the archive's own id is the
		// result's, and bob's is not in alice's archive.
		if ids := stanzaIDs(am); len(ids) != 0 {
			t.Errorf("alice's archived copy has stanza-ids %v, want none: %s", ids, am)
		}

		// A message to oneself is archived once.
		// To oneself, by full JID or with no 'to' at all: archived once,
		// delivered with the id of the account's archive.
		send(t, alice, "alice@localhost/phone", "self", "note to self")
		alice.MustSend(t, `<message id="nt" type="chat"><body>no to</body></message>`)
		alice.MustSync(t)
		for _, id := range []string{"self", "nt"} {
			m := alice.MustNext(t, "the message to self", byID(id))
			if ids := stanzaIDs(m); len(ids) != 1 || ids["alice@localhost"] == "" {
				t.Errorf("%s: delivered with stanza-ids %v, want alice's: %s", id, ids, m)
			}
		}
		if p := query(t, alice, q{fields: map[string][]string{"with": {"alice@localhost"}}}); len(p.results) != 2 {
			t.Errorf("two messages to oneself are archived %d times", len(p.results))
		}
		if p := query(t, alice, q{}); len(p.results) != 3 {
			t.Errorf("alice's archive holds %d messages, want 3", len(p.results))
		}
	})
}

// TestWhatIsArchived runs each kind of message through the filter and
// checks which are archived, at both ends, and carry a stanza-id.
func TestWhatIsArchived(t *testing.T) {
	cases := []struct {
		name    string
		typ     string
		payload string
		want    bool
	}{
		{"chat with body", "chat", `<body>hi</body>`, true},
		{"normal with body", "", `<body>hi</body>`, true},
		{"normal typed with body", "normal", `<body>hi</body>`, true},
		{"chat state only", "chat", `<composing xmlns="http://jabber.org/protocol/chatstates"/>`, false},
		{"empty chat", "chat", ``, false},
		{"receipt", "chat", `<received xmlns="urn:xmpp:receipts" id="x"/>`, true},
		{"marker", "chat", `<displayed xmlns="urn:xmpp:chat-markers:0" id="x"/>`, true},
		{"correction", "chat", `<replace xmlns="urn:xmpp:message-correct:0" id="x"/>`, true},
		{"retraction", "chat", `<retract xmlns="urn:xmpp:message-retract:1" id="x"/>`, true},
		{"reaction", "chat", `<reactions xmlns="urn:xmpp:reactions:0" id="x"><reaction>👍</reaction></reactions>`, true},
		{"call invitation", "chat", `<propose xmlns="urn:xmpp:jingle-message:0" id="x"/>`, true},
		{"omemo", "chat", `<encrypted xmlns="eu.siacs.conversations.axolotl"><header sid="1"/></encrypted>`, true},
		{"omemo 2", "chat", `<encrypted xmlns="urn:xmpp:omemo:2"><header sid="1"/></encrypted>`, true},
		{"ox", "chat", `<openpgp xmlns="urn:xmpp:openpgp:0">AAAA</openpgp>`, true},
		{"store hint", "chat", `<store xmlns="urn:xmpp:hints"/>`, true},
		{"no-store", "chat", `<body>hi</body><no-store xmlns="urn:xmpp:hints"/>`, false},
		{"no-permanent-store", "chat", `<body>hi</body><no-permanent-store xmlns="urn:xmpp:hints"/>`, false},
		{"headline", "headline", `<body>news</body>`, false},
		{"groupchat", "groupchat", `<body>room</body>`, false},
		{"error", "error", `<body>hi</body><error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error>`, false},
	}
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice", "bob")
		alice := online(t, s, "alice", "phone")
		bob := online(t, s, "bob", "phone")
		var want []string
		for i, c := range cases {
			id := fmt.Sprintf("k%d", i)
			// To the full JID, so that groupchat and errors reach bob.
			alice.MustSend(t, fmt.Sprintf(`<message to="bob@localhost/phone" id="%s" type="%s">%s</message>`, id, c.typ, c.payload))
			if c.want {
				want = append(want, id)
			}
		}
		alice.MustSync(t)
		bob.MustSync(t)
		for i, c := range cases {
			id := fmt.Sprintf("k%d", i)
			m, err := bob.Next(byID(id))
			if err != nil {
				if c.typ != "groupchat" {
					t.Errorf("%s: not delivered: %v", c.name, err)
				}
				continue
			}
			if got := stanzaIDs(m)["bob@localhost"] != ""; got != c.want {
				t.Errorf("%s: delivered with a stanza-id %v, want %v: %s", c.name, got, c.want, m)
			}
		}
		for _, who := range []*testserver.Client{alice, bob} {
			p := query(t, who, q{rsm: "<max>100</max>"})
			var got []string
			for _, r := range p.results {
				got = append(got, forwarded(r).Get("id"))
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s's archive holds %v, want %v", who.LocalAddr(), got, want)
			}
		}
	})
}
