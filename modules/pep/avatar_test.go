package pep_test

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/caps"
	"github.com/xmppd/xmppd/modules/pep"
	"github.com/xmppd/xmppd/modules/pubsub/core"
	"github.com/xmppd/xmppd/router"
)

const (
	nsVCard     = "vcard-temp"
	nsAvatarDat = pep.NSAvatarData
)

// image is a made-up PNG and its XEP-0084 id.
type image struct{ b64, id string }

func newImage(content string) image {
	raw := "\x89PNG\r\n\x1a\n" + content
	sum := sha1.Sum([]byte(raw))
	return image{base64.StdEncoding.EncodeToString([]byte(raw)), hex.EncodeToString(sum[:])}
}

// publishAvatar replays Conversations: the data, then the metadata, both
// with publish-options (access_model open when open).
func publishAvatar(t *testing.T, c *client, img image, open bool) {
	t.Helper()
	var opts []string
	if open {
		opts = []string{core.FieldAccessModel, "open"}
	}
	testserver.WantResult(t, c.iq("set", "", publishXML(nsAvatarDat, img.id, `<data xmlns='`+nsAvatarDat+`'>`+img.b64+`</data>`, opts...)))
	n, _ := base64.StdEncoding.DecodeString(img.b64)
	testserver.WantResult(t, c.iq("set", "", publishXML(nsAvatar, img.id,
		`<metadata xmlns='`+nsAvatar+`'><info bytes='`+strconv.Itoa(len(n))+`' height='96' id='`+img.id+`' type='image/png' width='96'/></metadata>`, opts...)))
}

// photoHash returns the XEP-0153 hash of a presence, and whether it has
// the <x/> at all.
func photoHash(e *router.Element) (string, bool) {
	x := e.Child(pep.NSVCardUpdate, "x")
	if x == nil || x.Child(pep.NSVCardUpdate, "photo") == nil {
		return "", false
	}
	return x.Child(pep.NSVCardUpdate, "photo").Text(), true
}

// presenceFrom matches an available presence from a resource of local.
func presenceFrom(local string) func(*router.Element) bool {
	return func(e *router.Element) bool {
		return e.Name.Local == "presence" && e.Get("type") == "" && strings.HasPrefix(e.Get("from"), bare(local)+"/")
	}
}

// vcardPhoto returns the BINVAL of a vCard answer ("" for none).
func vcardPhoto(t *testing.T, e *router.Element) string {
	t.Helper()
	testserver.WantResult(t, e)
	if p := e.Child(nsVCard, "vCard").Child(nsVCard, "PHOTO"); p != nil {
		return p.Child(nsVCard, "BINVAL").Text()
	}
	return ""
}

// TestAvatarConversion checks XEP-0398 both ways. An avatar Conversations
// publishes through PEP is the hash in the account's presence (to its
// contacts, its own other resources, a directed presence) and the PHOTO of
// its vCard; a presence-only avatar is the PHOTO only for who may read the
// nodes. A vCard PHOTO set by an old client becomes the PEP avatar, data
// and metadata, notified to the contacts that ask for it, and the hash.
// A presence with an empty <photo/> keeps it.
func TestAvatarConversion(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice", "bob", "carol")
		befriend(t, s, "alice", "bob")
		a := online(t, s, "alice", "conversations")
		e := a.iq("get", bare("alice"), `<query xmlns='`+nsDiscoInfo+`'/>`)
		if !testserver.HasFeature(e, "urn:xmpp:pep-vcard-conversion:0") {
			t.Errorf("conversion not advertised: %s", e)
		}
		bc := online(t, s, "bob", "pc", caps.Notify(nsAvatar))
		bc.MustNext(t, "alice's presence", presenceFrom("alice"))
		carol := login(t, s, "carol", "x")

		img := newImage("one")
		publishAvatar(t, a, img, true)
		a.MustSend(t, `<presence><show>chat</show></presence>`)
		p := bc.MustNext(t, "alice's presence with the hash", presenceFrom("alice"))
		if h, _ := photoHash(p); h != img.id {
			t.Fatalf("hash in presence %q, want %q: %s", h, img.id, p)
		}
		other := online(t, s, "alice", "laptop")
		p = other.MustNext(t, "the other resource's presence", presenceFrom("alice"))
		if h, _ := photoHash(p); h != img.id {
			t.Errorf("hash in the presence to its own resource: %s", p)
		}
		a.MustSend(t, `<presence to='`+bare("carol")+`/x'><x xmlns='`+pep.NSVCardUpdate+`'/></presence>`)
		if h, _ := photoHash(carol.MustNext(t, "directed presence", presenceFrom("alice"))); h != img.id {
			t.Errorf("hash not put in a directed presence with an empty <x/>")
		}
		a.MustSend(t, `<presence to='`+bare("carol")+`/x'><x xmlns='`+pep.NSVCardUpdate+`'><photo/></x></presence>`)
		if h, ok := photoHash(carol.MustNext(t, "directed presence", presenceFrom("alice"))); !ok || h != "" {
			t.Errorf("empty <photo/> replaced by %q", h)
		}
		for _, c := range []*client{a, bc, carol} {
			if got := vcardPhoto(t, c.iq("get", bare("alice"), `<vCard xmlns='`+nsVCard+`'/>`)); got != img.b64 {
				t.Errorf("vCard PHOTO %q, want the open PEP avatar", got)
			}
		}

		// A presence-only avatar: contacts see it, strangers do not.
		img2 := newImage("two")
		testserver.WantResult(t, a.iq("set", "", ownerXML("configure", nsAvatarDat, form(core.FormNodeConfig, "submit", core.FieldAccessModel, "presence"))))
		publishAvatar(t, a, img2, false)
		bc.MustNext(t, "the new avatar", isEvent(bare("alice"), nsAvatar, "item", img2.id))
		if got := vcardPhoto(t, bc.iq("get", bare("alice"), `<vCard xmlns='`+nsVCard+`'/>`)); got != img2.b64 {
			t.Errorf("contact's vCard PHOTO %q", got)
		}
		// alice stored no vCard: to a stranger she has none.
		testserver.WantIQError(t, carol.iq("get", bare("alice"), `<vCard xmlns='`+nsVCard+`'/>`), "service-unavailable", "cancel")
		testserver.WantResult(t, a.iq("set", "", `<vCard xmlns='`+nsVCard+`'><FN>Alice</FN></vCard>`))
		if got := vcardPhoto(t, carol.iq("get", bare("alice"), `<vCard xmlns='`+nsVCard+`'/>`)); got != "" {
			t.Errorf("a stranger got a presence-only avatar in the vCard")
		}

		// An old client sets its vCard with a photo.
		img3 := newImage("three")
		old := login(t, s, "bob", "old")
		testserver.WantResult(t, old.iq("set", "", `<vCard xmlns='`+nsVCard+`'><FN>Bob</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>`+img3.b64[:8]+"\n"+img3.b64[8:]+`</BINVAL></PHOTO></vCard>`))
		ids := itemIDs(t, a.iq("get", bare("bob"), itemsXML(nsAvatarDat, "")))
		if len(ids) != 1 || ids[0] != img3.id {
			t.Fatalf("avatar data from the vCard: %v", ids)
		}
		e = a.iq("get", bare("bob"), itemsXML(nsAvatar, ""))
		info := e.Child(core.NS, "pubsub").Child(core.NS, "items").Child(core.NS, "item").Child(nsAvatar, "metadata").Child(nsAvatar, "info")
		if info == nil || info.Get("id") != img3.id || info.Get("type") != "image/png" || info.Get("bytes") != "13" {
			t.Fatalf("avatar metadata from the vCard: %s", e)
		}
		bc.MustNext(t, "its own avatar from its vCard", isEvent(bare("bob"), nsAvatar, "item", img3.id))
		bc.MustSend(t, `<presence/>`)
		a.MustNext(t, "bob's presence with the hash of the vCard's photo", func(e *router.Element) bool {
			h, _ := photoHash(e)
			return presenceFrom("bob")(e) && h == img3.id
		})
		// The same photo again is not published again.
		testserver.WantResult(t, old.iq("set", "", `<vCard xmlns='`+nsVCard+`'><FN>Robert</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>`+img3.b64+`</BINVAL></PHOTO></vCard>`))
		bc.MustSync(t)
		bc.ExpectNone(t, "the same avatar again", isEvent(bare("bob"), nsAvatar, "item", img3.id))
		if e := carol.iq("get", bare("bob"), `<vCard xmlns='`+nsVCard+`'/>`); vcardPhoto(t, e) != img3.b64 || e.Child(nsVCard, "vCard").Child(nsVCard, "FN").Text() != "Robert" {
			t.Errorf("vCard after the second set: %s", e)
		}
	})
}
