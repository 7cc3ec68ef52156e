package mam_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/mam"
	"github.com/xmppd/xmppd/router"
)

// prefs is the <prefs/> of an answer as default and lists.
func prefs(t *testing.T, answer *router.Element) (def string, always, never []string) {
	t.Helper()
	testserver.WantResult(t, answer)
	p := answer.Child(mam.NS, "prefs")
	if p == nil {
		t.Fatalf("no <prefs/> in %s", answer)
	}
	list := func(name string) []string {
		l := p.Child(mam.NS, name)
		if l == nil {
			t.Fatalf("<prefs/> without <%s/>: %s", name, answer)
		}
		var out []string
		for _, j := range l.Elements() {
			out = append(out, j.Text())
		}
		return out
	}
	return p.Get("default"), list("always"), list("never")
}

func setPrefs(def, always, never string) string {
	return fmt.Sprintf(`<iq type="set" id="sp"><prefs xmlns="urn:xmpp:mam:2" default="%s"><always>%s</always><never>%s</never></prefs></iq>`, def, always, never)
}

func jids(j ...string) string {
	s := ""
	for _, x := range j {
		s += "<jid>" + x + "</jid>"
	}
	return s
}

// TestPrefs sets preferences and checks what they archive: the lists win
// over the default (never over always), roster mode archives contacts
// only, and the server's allowed modes bound what may be set.
func TestPrefs(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, func(c *config.Config) {
			c.Archive.Allowed = []string{config.ArchiveAlways, config.ArchiveNever, config.ArchiveRoster}
		}, "alice", "bob", "carol", "dave")
		alice := online(t, s, "alice", "phone")
		if def, always, never := prefs(t, alice.MustRequest(t, `<iq type="get" id="gp"><prefs xmlns="urn:xmpp:mam:2"/></iq>`)); def != "always" || len(always)+len(never) != 0 {
			t.Errorf("initial prefs %s %v %v, want the server's always and empty lists", def, always, never)
		}

		// never: only the always list is archived; the never list
		// wins over it.
		def, always, never := prefs(t, alice.MustRequest(t, setPrefs("never", jids("bob@localhost", "carol@localhost/pc"), jids("carol@localhost/pc"))))
		if def != "never" || !slices.Equal(always, []string{"bob@localhost", "carol@localhost/pc"}) || !slices.Equal(never, []string{"carol@localhost/pc"}) {
			t.Errorf("set answered %s %v %v", def, always, never)
		}
		def2, always2, never2 := prefs(t, alice.MustRequest(t, `<iq type="get" id="gp2"><prefs xmlns="urn:xmpp:mam:2"/></iq>`))
		if def2 != def || !slices.Equal(always, always2) || !slices.Equal(never, never2) {
			t.Errorf("get after set: %s %v %v", def2, always2, never2)
		}
		send(t, alice, "bob@localhost/x", "n1", "to bob, always")
		send(t, alice, "carol@localhost/pc", "n2", "to carol/pc, never")
		send(t, alice, "carol@localhost/other", "n3", "to carol/other, default never")
		send(t, alice, "dave@localhost", "n4", "to dave, default never")

		// roster: dave is a contact, carol not.
		testserver.WantResult(t, alice.MustRequest(t, `<iq type="set" id="r1"><query xmlns="jabber:iq:roster"><item jid="dave@localhost"/></query></iq>`))
		prefs(t, alice.MustRequest(t, setPrefs("roster", "", jids("bob@localhost"))))
		send(t, alice, "dave@localhost", "r1", "to dave, in roster")
		send(t, alice, "carol@localhost", "r2", "to carol, not in roster")
		send(t, alice, "bob@localhost", "r3", "to bob, never")
		dave := online(t, s, "dave", "pc")
		dave.MustSend(t, `<message to="alice@localhost" id="r4" type="chat"><body>from dave</body></message>`)
		dave.MustSync(t)

		// always with a never list.
		prefs(t, alice.MustRequest(t, setPrefs("always", "", jids("bob@localhost"))))
		send(t, alice, "carol@localhost", "a1", "to carol, always")
		send(t, alice, "bob@localhost/y", "a2", "to bob, never")

		var got []string
		for _, r := range query(t, alice, q{rsm: "<max>50</max>"}).results {
			got = append(got, forwarded(r).Get("id"))
		}
		if want := []string{"n1", "r1", "r4", "a1"}; !slices.Equal(got, want) {
			t.Errorf("alice's archive holds %v, want %v", got, want)
		}
		// The other ends keep their own archives, whatever alice chose.
		var bobs []string
		bob := online(t, s, "bob", "pc")
		for _, r := range query(t, bob, q{}).results {
			bobs = append(bobs, forwarded(r).Get("id"))
		}
		if want := []string{"n1", "r3", "a2"}; !slices.Equal(bobs, want) {
			t.Errorf("bob's archive holds %v, want %v", bobs, want)
		}

		// Bad preferences.
		testserver.WantIQError(t, alice.MustRequest(t, setPrefs("sometimes", "", "")), "bad-request", "modify")
		testserver.WantIQError(t, alice.MustRequest(t, `<iq type="set" id="nd"><prefs xmlns="urn:xmpp:mam:2"/></iq>`), "bad-request", "modify")
		testserver.WantIQError(t, alice.MustRequest(t, setPrefs("always", jids("@@"), "")), "jid-malformed", "modify")
	})
}

// TestAllowedModes: a mode the operator does not allow cannot be set, and
// the server's default applies to accounts that set none.
func TestAllowedModes(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, func(c *config.Config) {
			c.Archive.Default = config.ArchiveNever
			c.Archive.Allowed = []string{config.ArchiveNever, config.ArchiveAlways}
		}, "alice", "bob")
		alice := online(t, s, "alice", "phone")
		if def, _, _ := prefs(t, alice.MustRequest(t, `<iq type="get" id="gp"><prefs xmlns="urn:xmpp:mam:2"/></iq>`)); def != "never" {
			t.Errorf("default %s, want the server's never", def)
		}
		send(t, alice, "bob@localhost", "m1", "not archived")
		if p := query(t, alice, q{}); len(p.results) != 0 {
			t.Errorf("archived under the server's never: %v", p.ids())
		}
		testserver.WantIQError(t, alice.MustRequest(t, setPrefs("roster", "", "")), "not-acceptable", "modify")
		prefs(t, alice.MustRequest(t, setPrefs("always", "", "")))
		send(t, alice, "bob@localhost", "m2", "archived")
		if p := query(t, alice, q{}); len(p.results) != 1 {
			t.Errorf("alice's archive holds %v, want m2 only", p.ids())
		}
	})
}

// TestIsolation: an account reads and configures only its own archive.
func TestIsolation(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice", "bob", "carol")
		alice := online(t, s, "alice", "phone")
		bob := online(t, s, "bob", "phone")
		send(t, alice, "carol@localhost", "secret", "for carol")
		for _, iq := range []string{
			q{to: "alice@localhost"}.xml("x1"),
			`<iq type="get" id="x2" to="alice@localhost"><prefs xmlns="urn:xmpp:mam:2"/></iq>`,
			`<iq type="set" id="x3" to="alice@localhost"><prefs xmlns="urn:xmpp:mam:2" default="never"><always/><never/></prefs></iq>`,
			`<iq type="get" id="x4" to="alice@localhost"><metadata xmlns="urn:xmpp:mam:2"/></iq>`,
			`<iq type="get" id="x5" to="alice@localhost"><query xmlns="urn:xmpp:mam:2"/></iq>`,
			q{to: "nobody@localhost"}.xml("x6"),
		} {
			testserver.WantIQError(t, bob.MustRequest(t, iq), "forbidden", "auth")
		}
		bob.ExpectNone(t, "a result of alice's archive", func(e *router.Element) bool { return e.Child(mam.NS, "result") != nil })
		if p := query(t, bob, q{}); len(p.results) != 0 {
			t.Errorf("bob's archive holds %v", p.ids())
		}
		if p := query(t, alice, q{to: "alice@localhost"}); len(p.results) != 1 {
			t.Errorf("alice's archive, queried at her bare JID, holds %v", p.ids())
		}
	})
}

// TestFormMetadataDisco: the query form lists every field, metadata names
// the first and last message, and disco lists what works.
func TestFormMetadataDisco(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice", "bob")
		alice := online(t, s, "alice", "phone")

		form := alice.MustRequest(t, `<iq type="get" id="f"><query xmlns="urn:xmpp:mam:2"/></iq>`)
		testserver.WantResult(t, form)
		x := form.Child(mam.NS, "query").Child(mam.NSData, "x")
		var fields []string
		for _, f := range x.Elements() {
			fields = append(fields, f.Get("var"))
		}
		if want := []string{"FORM_TYPE", "with", "start", "end", "before-id", "after-id", "ids", mam.FieldText}; !slices.Equal(fields, want) {
			t.Errorf("form fields %v, want %v", fields, want)
		}

		md := alice.MustRequest(t, `<iq type="get" id="m0"><metadata xmlns="urn:xmpp:mam:2"/></iq>`)
		testserver.WantResult(t, md)
		if e := md.Child(mam.NS, "metadata"); e == nil || len(e.Elements()) != 0 {
			t.Errorf("metadata of an empty archive: %s", md)
		}
		send(t, alice, "bob@localhost", "m1", "one")
		send(t, alice, "bob@localhost", "m2", "two")
		p := query(t, alice, q{})
		md = alice.MustRequest(t, `<iq type="get" id="m1"><metadata xmlns="urn:xmpp:mam:2"/></iq>`)
		e := md.Child(mam.NS, "metadata")
		st, end := e.Child(mam.NS, "start"), e.Child(mam.NS, "end")
		if st == nil || end == nil || st.Get("id") != p.ids()[0] || end.Get("id") != p.ids()[1] || st.Get("timestamp") == "" {
			t.Errorf("metadata %s, want start %s and end %s", md, p.ids()[0], p.ids()[1])
		}
		stamp := p.results[0].Child(mam.NSForward, "forwarded").Child(mam.NSDelay, "delay").Get("stamp")
		if st.Get("timestamp") != stamp {
			t.Errorf("metadata start timestamp %s, the message's stamp %s", st.Get("timestamp"), stamp)
		}

		info := alice.MustRequest(t, `<iq type="get" id="d" to="alice@localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
		for _, f := range []string{mam.NS, mam.NSExtended, mam.NSSID} {
			if !testserver.HasFeature(info, f) {
				t.Errorf("disco#info of the account lacks %s: %s", f, info)
			}
		}
	})
}
