package blocking

import (
	"fmt"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// TestListBlocks checks the JID matching of XEP-0191 §6 (XEP-0016's).
func TestListBlocks(t *testing.T) {
	for _, tc := range []struct {
		item string
		jid  string
		want bool
	}{
		// user@domain/resource: only that resource.
		{"romeo@montague.net/orchard", "romeo@montague.net/orchard", true},
		{"romeo@montague.net/orchard", "romeo@montague.net/garden", false},
		{"romeo@montague.net/orchard", "romeo@montague.net", false},
		// user@domain: any resource.
		{"romeo@montague.net", "romeo@montague.net", true},
		{"romeo@montague.net", "romeo@montague.net/orchard", true},
		{"romeo@montague.net", "juliet@montague.net", false},
		{"romeo@montague.net", "montague.net", false},
		// domain/resource: only that resource of the domain.
		{"montague.net/bot", "montague.net/bot", true},
		{"montague.net/bot", "montague.net/other", false},
		{"montague.net/bot", "montague.net", false},
		{"montague.net/bot", "romeo@montague.net/bot", false},
		// domain: the domain and everything at it.
		{"montague.net", "montague.net", true},
		{"montague.net", "montague.net/bot", true},
		{"montague.net", "romeo@montague.net", true},
		{"montague.net", "romeo@montague.net/orchard", true},
		{"montague.net", "romeo@capulet.com", false},
		{"montague.net", "chat.montague.net", false},
		// Normalised forms match (RFC 7622 case mapping).
		{"Romeo@Montague.NET", "romeo@montague.net/x", true},
	} {
		t.Run(tc.item+" "+tc.jid, func(t *testing.T) {
			l := newList([]jid.JID{jid.MustParse(tc.item)})
			if got := l.blocks(jid.MustParse(tc.jid)); got != tc.want {
				t.Errorf("blocks = %v, want %v", got, tc.want)
			}
		})
	}
	var empty *list
	if empty.blocks(jid.MustParse("a@b")) || newList(nil).blocks(jid.MustParse("a@b")) {
		t.Error("an empty list blocks")
	}
}

func TestParseItems(t *testing.T) {
	for _, tc := range []struct {
		name string
		xml  string
		want []string
		cond string
	}{
		{"none", `<unblock xmlns="urn:xmpp:blocking"/>`, nil, ""},
		{"normalised and deduplicated", `<block xmlns="urn:xmpp:blocking"><item jid="Romeo@Montague.net"/><item jid="romeo@montague.net"/><item jid="iago@shakespeare.lit/x"/></block>`,
			[]string{"romeo@montague.net", "iago@shakespeare.lit/x"}, ""},
		{"other elements ignored", `<block xmlns="urn:xmpp:blocking"><item jid="a@b"/><item xmlns="other" jid="c@d"/><note/></block>`, []string{"a@b"}, ""},
		{"missing jid", `<block xmlns="urn:xmpp:blocking"><item/></block>`, nil, "bad-request"},
		{"malformed jid", `<block xmlns="urn:xmpp:blocking"><item jid="@nodomain"/></block>`, nil, "jid-malformed"},
		{"malformed jid after good", `<block xmlns="urn:xmpp:blocking"><item jid="a@b"/><item jid="a@b@c"/></block>`, nil, "jid-malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := router.ParseElement([]byte(tc.xml), router.NSClient)
			if err != nil {
				t.Fatal(err)
			}
			items, cond := parseItems(e)
			if string(cond) != tc.cond {
				t.Fatalf("condition %q, want %q", cond, tc.cond)
			}
			var got []string
			for _, j := range items {
				got = append(got, j.String())
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("items %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPresenceTargets(t *testing.T) {
	roster := []storage.RosterItem{
		{Contact: jid.MustParse("both@a.example"), Subscription: storage.SubBoth},
		{Contact: jid.MustParse("from@a.example"), Subscription: storage.SubFrom},
		{Contact: jid.MustParse("to@a.example"), Subscription: storage.SubTo},
		{Contact: jid.MustParse("none@a.example"), Subscription: storage.SubNone},
		{Contact: jid.MustParse("x@b.example"), Subscription: storage.SubBoth},
		{Contact: jid.MustParse("gw.example"), Subscription: storage.SubBoth},
	}
	for _, tc := range []struct {
		name  string
		items []string
		want  []string
	}{
		{"bare jids by subscription", []string{"both@a.example", "from@a.example", "to@a.example", "none@a.example", "stranger@a.example"},
			[]string{"both@a.example", "from@a.example"}},
		{"domain covers its contacts", []string{"a.example"}, []string{"both@a.example", "from@a.example"}},
		{"full jid of a contact", []string{"x@b.example/phone"}, []string{"x@b.example/phone"}},
		{"full jid of a non-subscriber", []string{"to@a.example/phone"}, nil},
		{"full jid already covered by its bare jid", []string{"x@b.example", "x@b.example/phone"}, []string{"x@b.example"}},
		{"domain/resource of a domain contact", []string{"gw.example/bot"}, []string{"gw.example/bot"}},
		{"nothing", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var items []jid.JID
			for _, s := range tc.items {
				items = append(items, jid.MustParse(s))
			}
			var got []string
			for _, j := range presenceTargets(roster, items) {
				got = append(got, j.String())
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("targets %v, want %v", got, tc.want)
			}
		})
	}
}
