package muc_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/mam/query"
	"github.com/xmppd/xmppd/modules/muc"
	"github.com/xmppd/xmppd/router"
)

// mamQuery sends a XEP-0313 query to a room with the form fields given
// (var, value pairs) and the inside of an RSM <set/>, and returns the
// forwarded messages of the results, their ids and the IQ answer.
func (u *user) mamQuery(roomName, rsm string, fields ...string) (msgs []*router.Element, ids []string, answer *router.Element) {
	u.t.Helper()
	qid := router.NewID()
	var b strings.Builder
	fmt.Fprintf(&b, `<iq type='set' id='%s' to='%s'><query xmlns='%s' queryid='%s'>`, qid, room(roomName), query.NS, qid)
	if len(fields) > 0 {
		b.WriteString(testserver.DataForm(query.NS, "submit", fields...))
	}
	if rsm != "" {
		b.WriteString(`<set xmlns='` + query.NSRSM + `'>` + rsm + `</set>`)
	}
	b.WriteString(`</query></iq>`)
	answer, results := u.MustRequestAfter(u.t, b.String(), func(e *router.Element) bool {
		r := e.Child(query.NS, "result")
		return e.Name.Local == "message" && r != nil && r.Get("queryid") == qid
	})
	for _, e := range results {
		if e.Get("from") != room(roomName) {
			u.t.Errorf("result from %q, want the room: %s", e.Get("from"), e)
		}
		msgs = append(msgs, forwardedMessage(u.t, e))
		ids = append(ids, e.Child(query.NS, "result").Get("id"))
	}
	return msgs, ids, answer
}

// forwardedMessage is the archived message in the result message e, which
// must have it forwarded with a delay.
func forwardedMessage(t *testing.T, e *router.Element) *router.Element {
	t.Helper()
	f := e.Child(query.NS, "result").Child(query.NSForward, "forwarded")
	if f == nil || f.Child(query.NSDelay, "delay") == nil {
		t.Fatalf("result without forwarded and delay: %s", e)
	}
	m := f.Child(router.NSClient, "message")
	if m == nil {
		m = f.Child("", "message")
	}
	if m == nil {
		t.Fatalf("result without a message: %s", e)
	}
	return m
}

// bodies returns the bodies of messages.
func bodies(msgs []*router.Element) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, childText(m, "", "body"))
	}
	return out
}

// realJID is the jid of the muc#user item of an archived message, "" if
// it has none.
func realJID(m *router.Element) string {
	if x := m.Child(muc.NSUser, "x"); x != nil {
		if it := x.Child(muc.NSUser, "item"); it != nil {
			return it.Get("jid")
		}
	}
	return ""
}

// roomStanzaID is the stanza-id by the room on a message.
func roomStanzaID(m *router.Element, roomName string) string {
	for _, c := range m.Elements() {
		if c.Name.Space == "urn:xmpp:sid:0" && c.Name.Local == "stanza-id" && c.Get("by") == room(roomName) {
			return c.Get("id")
		}
	}
	return ""
}

// say sends a groupchat message and waits for its reflection to the
// sender; it returns the reflection.
func (u *user) say(roomName, nick, body string) *router.Element {
	u.t.Helper()
	u.send(`<message type='groupchat' to='` + room(roomName) + `'><body>` + body + `</body></message>`)
	return u.MustNext(u.t, "reflection of "+body, groupchatFrom(occ(roomName, nick), body))
}

// TestArchiveQuery checks MAM on the room's JID (XEP-0313 §6.1.2, §8.2.2)
// on both backends: advertised only while archiving is on, results from
// the room with the occupant JID as the sender, no 'to', the stanza-ids
// occupants saw, the real JID only to those who may see it, 'with' by
// occupant JID, RSM paging, the form and metadata; anyone but outcasts may
// read an open room's archive, only members a members-only room's, and a
// room without archiving answers service-unavailable.
func TestArchiveQuery(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice", "bob", "carol", "dave")
		alice, bob, carol, dave := online(t, s, "alice"), online(t, s, "bob"), online(t, s, "carol"), online(t, s, "dave")
		alice.create("coven", "alice")
		info := carol.iq(room("coven"), "get", `<query xmlns='`+nsInfo+`'/>`)
		if testserver.HasFeature(info, query.NS) {
			t.Errorf("mam advertised without archiving: %s", info)
		}
		_, _, answer := carol.mamQuery("coven", "")
		wantError(t, answer, "service-unavailable", "cancel")

		testserver.WantResult(t, alice.configure("coven", "muc#roomconfig_enablearchiving", "1"))
		info = carol.iq(room("coven"), "get", `<query xmlns='`+nsInfo+`'/>`)
		if !testserver.HasFeature(info, query.NS) || !testserver.HasFeature(info, query.NSExtended) {
			t.Errorf("mam not advertised with archiving: %s", info)
		}
		bob.enter("coven", "bob")
		var live []string
		for i, u := range []*user{alice, bob, alice} {
			nick := u.name
			m := u.say("coven", nick, fmt.Sprintf("line %d", i+1))
			live = append(live, roomStanzaID(m, "coven"))
		}
		// A sender's own muc#user <x/> claims nothing, live or archived.
		bob.send(`<message type='groupchat' to='` + room("coven") + `'><body>spoof</body><x xmlns='` + muc.NSUser + `'><item jid='alice@localhost/pc'/></x></message>`)
		spoof := alice.MustNext(t, "spoof", groupchatFrom(occ("coven", "bob"), "spoof"))
		if spoof.Child(muc.NSUser, "x") != nil {
			t.Errorf("the room passed on a sender's muc#user x: %s", spoof)
		}
		live = append(live, roomStanzaID(spoof, "coven"))
		bob.MustNext(t, "spoof reflection", groupchatFrom(occ("coven", "bob"), "spoof"))

		// Carol never entered: she reads the archive of an open room, without real JIDs.
		msgs, ids, answer := carol.mamQuery("coven", "")
		testserver.WantResult(t, answer)
		if got := bodies(msgs); strings.Join(got, ",") != "line 1,line 2,line 3,spoof" {
			t.Fatalf("archive %v", got)
		}
		if !slices.Equal(ids, live) {
			t.Errorf("result ids %v, want the stanza-ids occupants got %v", ids, live)
		}
		for i, m := range msgs {
			want := []string{"alice", "bob", "alice", "bob"}[i]
			if m.Get("from") != occ("coven", want) || m.Get("to") != "" || m.Get("type") != "groupchat" {
				t.Errorf("archived message %d: %s", i, m)
			}
			if realJID(m) != "" {
				t.Errorf("a real JID to a non-moderator of a semi-anonymous room: %s", m)
			}
		}
		fin := answer.Child(query.NS, "fin")
		if fin == nil || fin.Get("complete") != "true" {
			t.Errorf("fin: %s", answer)
		}

		// The owner sees real JIDs, the ones the room saw.
		msgs, _, _ = alice.mamQuery("coven", "")
		if len(msgs) != 4 || realJID(msgs[0]) != alice.full() || realJID(msgs[1]) != bob.full() || realJID(msgs[3]) != bob.full() {
			t.Errorf("real JIDs to the owner: %v", msgs)
		}

		// 'with' an occupant JID; paging.
		msgs, _, _ = carol.mamQuery("coven", "", "with", occ("coven", "bob"))
		if got := bodies(msgs); strings.Join(got, ",") != "line 2,spoof" {
			t.Errorf("with bob: %v", got)
		}
		msgs, ids, answer = carol.mamQuery("coven", "<max>2</max><before/>")
		if got := bodies(msgs); strings.Join(got, ",") != "line 3,spoof" || answer.Child(query.NS, "fin").Get("complete") == "true" {
			t.Errorf("last page: %v %s", got, answer)
		}
		msgs, _, _ = carol.mamQuery("coven", "<max>2</max><before>"+ids[0]+"</before>")
		if got := bodies(msgs); strings.Join(got, ",") != "line 1,line 2" {
			t.Errorf("page before: %v", got)
		}
		_, _, answer = carol.mamQuery("coven", "<after>nosuchid</after>")
		wantError(t, answer, "item-not-found", "cancel")

		// The form and the metadata.
		form := carol.iq(room("coven"), "get", `<query xmlns='`+query.NS+`'/>`)
		if x := form.Child(query.NS, "query").Child(query.NSData, "x"); x == nil || !strings.Contains(x.String(), `var="with"`) {
			t.Errorf("query form: %s", form)
		}
		md := carol.iq(room("coven"), "get", `<metadata xmlns='`+query.NS+`'/>`)
		testserver.WantResult(t, md)
		if st := md.Child(query.NS, "metadata").Child(query.NS, "start"); st == nil || st.Get("id") != live[0] {
			t.Errorf("metadata: %s", md)
		}

		// An outcast may not read it.
		testserver.WantResult(t, alice.iq(room("coven"), "set", admin(`<item affiliation='outcast' jid='dave@localhost'/>`)))
		_, _, answer = dave.mamQuery("coven", "")
		wantError(t, answer, "forbidden", "auth")

		// Members-only: members may, others may not.
		testserver.WantResult(t, alice.configure("coven", "muc#roomconfig_membersonly", "1"))
		_, _, answer = carol.mamQuery("coven", "")
		wantError(t, answer, "forbidden", "auth")
		testserver.WantResult(t, alice.iq(room("coven"), "set", admin(`<item affiliation='member' jid='carol@localhost'/>`)))
		msgs, _, answer = carol.mamQuery("coven", "")
		testserver.WantResult(t, answer)
		if len(msgs) != 4 {
			t.Errorf("a member read %d messages, want 4", len(msgs))
		}

		// Non-anonymous: everyone sees real JIDs.
		testserver.WantResult(t, alice.configure("coven", "muc#roomconfig_whois", "anyone"))
		msgs, _, _ = carol.mamQuery("coven", "")
		if len(msgs) != 4 || realJID(msgs[1]) != bob.full() {
			t.Errorf("real JIDs in a non-anonymous room: %v", msgs)
		}

		// A room that is not there.
		_, _, answer = carol.mamQuery("nowhere", "")
		wantError(t, answer, "item-not-found", "cancel")
	})
}
