package pep_test

import (
	"slices"
	"testing"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/caps"
	"github.com/xmppd/xmppd/modules/pep"
	"github.com/xmppd/xmppd/modules/pubsub/core"
	"github.com/xmppd/xmppd/router"
)

const (
	nsBookmarks2 = pep.NSBookmarks2
	nsLegacy     = pep.NSLegacyBookmarks
	nsPrivate    = "jabber:iq:private"
)

// bookmarks2Options are the publish-options of XEP-0402 §3.3, which
// Conversations, Dino and Gajim send with every bookmark.
var bookmarks2Options = []string{core.FieldPersistItems, "true", core.FieldMaxItems, "max", core.FieldSendLast, "never", core.FieldAccessModel, "whitelist"}

// privateBookmarks returns the conferences of the XEP-0048 bookmarks in
// private XML storage, by JID, and the storage element.
func privateBookmarks(t *testing.T, c *client) (map[string]*router.Element, *router.Element) {
	t.Helper()
	e := c.iq("get", "", `<query xmlns='`+nsPrivate+`'><storage xmlns='`+nsLegacy+`'/></query>`)
	testserver.WantResult(t, e)
	st := e.Child(nsPrivate, "query").Child(nsLegacy, "storage")
	return conferences(st), st
}

// conferences indexes the conferences of a legacy storage element.
func conferences(st *router.Element) map[string]*router.Element {
	out := map[string]*router.Element{}
	for _, c := range st.Elements() {
		if c.Name.Local == "conference" {
			out[c.Get("jid")] = c
		}
	}
	return out
}

// bookmarks2 returns the Bookmarks 2 items by room.
func bookmarks2(t *testing.T, c *client) map[string]*router.Element {
	t.Helper()
	e := c.iq("get", "", itemsXML(nsBookmarks2, ""))
	testserver.WantResult(t, e)
	out := map[string]*router.Element{}
	for _, it := range e.Child(core.NS, "pubsub").Child(core.NS, "items").Elements() {
		out[it.Get("id")] = it.Child(nsBookmarks2, "conference")
	}
	return out
}

// TestBookmarksCompat replays a Bookmarks 2 client (Conversations: publish
// with XEP-0402's publish-options, retract with notify) beside an old
// client that keeps XEP-0048 bookmarks in private XML storage (XEP-0049):
// each sees the other's bookmarks, the Bookmarks 2 client is notified of
// the rooms the old client added, changed or removed and of no other, and
// what the old format cannot hold (extensions) survives its edits.
func TestBookmarksCompat(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "juliet")
		juliet := bare("juliet")
		modern := online(t, s, "juliet", "conversations", caps.Notify(nsBookmarks2))
		old := login(t, s, "juliet", "psi")
		modern.MustSync(t)

		e := modern.iq("get", juliet, `<query xmlns='`+nsDiscoInfo+`'/>`)
		for _, f := range []string{pep.FeatureBookmarksCompat, pep.FeatureBookmarksCompatPEP} {
			if !testserver.HasFeature(e, f) {
				t.Errorf("feature %s not advertised", f)
			}
		}

		// The modern client adds two rooms.
		const play, orchard, council = "theplay@conference.shakespeare.lit", "orchard@conference.shakespeare.lit", "council@conference.underhill.org"
		testserver.WantResult(t, modern.iq("set", "", publishXML(nsBookmarks2, play,
			`<conference xmlns='`+nsBookmarks2+`' name='The Play&apos;s the Thing' autojoin='true'><nick>JC</nick></conference>`, bookmarks2Options...)))
		modern.MustNext(t, "its own bookmark", isEvent(juliet, nsBookmarks2, "item", play))
		testserver.WantResult(t, modern.iq("set", "", publishXML(nsBookmarks2, orchard,
			`<conference xmlns='`+nsBookmarks2+`' name='The Orchard'><nick>JC</nick><extensions><state xmlns='http://myclient.example/bookmark/state' minimized='true'/></extensions></conference>`, bookmarks2Options...)))
		modern.MustNext(t, "its own bookmark", isEvent(juliet, nsBookmarks2, "item", orchard))

		confs, _ := privateBookmarks(t, old)
		if c := confs[play]; c == nil || c.Get("name") != "The Play's the Thing" || !slices.Contains([]string{"true", "1"}, c.Get("autojoin")) || c.Child(nsLegacy, "nick").Text() != "JC" {
			t.Fatalf("private bookmark of %s: %v", play, c)
		}
		if c := confs[orchard]; c == nil || c.Get("autojoin") == "true" || len(confs) != 2 {
			t.Fatalf("private bookmarks %v", confs)
		}

		// The old client stores its list: the play renamed, the orchard
		// as it was (without the extensions, which it does not know), a
		// new room and a URL bookmark.
		testserver.WantResult(t, old.iq("set", "", `<query xmlns='`+nsPrivate+`'><storage xmlns='`+nsLegacy+`'>`+
			`<conference jid='`+play+`' name='The Play' autojoin='true'><nick>JC</nick></conference>`+
			`<conference jid='`+orchard+`' name='The Orchard' autojoin='false'><nick>JC</nick></conference>`+
			`<conference jid='`+council+`' name='Council of Oberon' autojoin='1'><nick>Puck</nick><password>pw</password></conference>`+
			`<url name='Complete Works' url='http://the-tech.mit.edu/Shakespeare/'/></storage></query>`))
		modern.MustNext(t, "the renamed room", isEvent(juliet, nsBookmarks2, "item", play))
		modern.MustNext(t, "the new room", isEvent(juliet, nsBookmarks2, "item", council))
		modern.ExpectNone(t, "an unchanged room", isEvent(juliet, nsBookmarks2, "item", orchard))
		marks := bookmarks2(t, modern)
		if len(marks) != 3 || marks[play].Get("name") != "The Play" || marks[council].Child(nsBookmarks2, "password").Text() != "pw" || !slices.Contains([]string{"true", "1"}, marks[council].Get("autojoin")) {
			t.Fatalf("bookmarks 2 after the old client's edit: %v", marks)
		}
		if ext := marks[orchard].Child(nsBookmarks2, "extensions"); ext == nil || ext.Child("http://myclient.example/bookmark/state", "state") == nil {
			t.Fatalf("extensions lost by the old client's edit: %s", marks[orchard])
		}

		// The modern client removes a room; the old client's list loses
		// it and keeps its URL.
		testserver.WantResult(t, modern.iq("set", "", `<pubsub xmlns='`+core.NS+`'><retract node='`+nsBookmarks2+`' notify='true'><item id='`+play+`'/></retract></pubsub>`))
		modern.MustNext(t, "the retraction", isEvent(juliet, nsBookmarks2, "retract", play))
		confs, st := privateBookmarks(t, old)
		if _, ok := confs[play]; ok || len(confs) != 2 || st.Child(nsLegacy, "url") == nil {
			t.Fatalf("private bookmarks after the retraction: %s", st)
		}

		// The old client removes a room: it is retracted.
		testserver.WantResult(t, old.iq("set", "", `<query xmlns='`+nsPrivate+`'><storage xmlns='`+nsLegacy+`'>`+
			`<conference jid='`+council+`' name='Council of Oberon' autojoin='1'><nick>Puck</nick><password>pw</password></conference></storage></query>`))
		modern.MustNext(t, "the old client's removal", isEvent(juliet, nsBookmarks2, "retract", orchard))
		if marks := bookmarks2(t, modern); len(marks) != 1 || marks[council] == nil {
			t.Fatalf("bookmarks 2 after the old client's removal: %v", marks)
		}
	})
}

// TestBookmarksCompatPEP replays a client of XEP-0048 1.1, which publishes
// its whole list as the one item of the PEP node storage:bookmarks with
// XEP-0223's options (#compat-pep): the Bookmarks 2 items follow, the
// private XML storage too, and a Bookmarks 2 change comes back to that
// node, notified to the old client.
func TestBookmarksCompatPEP(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "juliet")
		juliet := bare("juliet")
		modern := online(t, s, "juliet", "dino", caps.Notify(nsBookmarks2))
		old := online(t, s, "juliet", "legacy", caps.Notify(nsLegacy))
		modern.MustSync(t)
		old.MustSync(t)
		const play, council = "theplay@conference.shakespeare.lit", "council@conference.underhill.org"
		testserver.WantResult(t, old.iq("set", "", publishXML(nsLegacy, "", `<storage xmlns='`+nsLegacy+`'><conference jid='`+play+`' autojoin='true' name='The Play&apos;s the Thing'><nick>JC</nick><password>Gl0b3</password></conference></storage>`,
			core.FieldPersistItems, "true", core.FieldAccessModel, "whitelist")))
		modern.MustNext(t, "the room the old client bookmarked", isEvent(juliet, nsBookmarks2, "item", play))
		if marks := bookmarks2(t, modern); marks[play] == nil || marks[play].Child(nsBookmarks2, "password").Text() != "Gl0b3" {
			t.Fatalf("bookmarks 2 %v", marks)
		}
		if confs, _ := privateBookmarks(t, old); confs[play] == nil {
			t.Fatalf("private bookmarks %v", confs)
		}

		testserver.WantResult(t, modern.iq("set", "", publishXML(nsBookmarks2, council,
			`<conference xmlns='`+nsBookmarks2+`' name='Council of Oberon' autojoin='true'><nick>Puck</nick></conference>`, bookmarks2Options...)))
		var legacyItem *router.Element
		old.MustNext(t, "the legacy node's new list", func(e *router.Element) bool {
			if ev := e.Child(core.NSEvent, "event"); ev != nil && ev.Child(core.NSEvent, "items") != nil && ev.Child(core.NSEvent, "items").Get("node") == nsLegacy {
				legacyItem = ev.Child(core.NSEvent, "items").Child(core.NSEvent, "item")
				return conferences(legacyItem.Child(nsLegacy, "storage"))[council] != nil
			}
			return false
		})
		if confs := conferences(legacyItem.Child(nsLegacy, "storage")); len(confs) != 2 || confs[play] == nil {
			t.Fatalf("legacy node's list %s", legacyItem)
		}
		e := old.iq("get", "", itemsXML(nsLegacy, ""))
		if ids := itemIDs(t, e); len(ids) != 1 {
			t.Fatalf("legacy node items %v", ids)
		}
		f, _ := core.ParseForm(old.iq("get", "", ownerXML("configure", nsBookmarks2, "")).Child(core.NSOwner, "pubsub").Child(core.NSOwner, "configure").Child("jabber:x:data", "x"))
		if f.Fields[core.FieldAccessModel][0] != "whitelist" || f.Fields[core.FieldMaxItems][0] != "max" {
			t.Errorf("bookmarks 2 node made from legacy bookmarks configured %v", f.Fields)
		}
	})
}
