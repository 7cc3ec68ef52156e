package roster

import (
	"reflect"
	"strings"
	"testing"

	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/router"
)

// TestParseGroups: the group rules of RFC 6121 §2.3.3 on one <item/>.
func TestParseGroups(t *testing.T) {
	// Names that sort in the order they are made, so that the expected
	// result is the list itself.
	names := make([]string, maxGroups+1)
	var many []string
	for i := range names {
		names[i] = "g" + strings.Repeat("x", i)
		many = append(many, "<group>"+names[i]+"</group>")
	}
	for _, tc := range []struct {
		name, groups string
		want         []string
		cond         stanza.Condition
	}{
		{name: "none", groups: ""},
		{name: "sorted", groups: "<group>Work</group><group>Friends</group><group>Ünicode</group>", want: []string{"Friends", "Work", "Ünicode"}},
		{name: "case matters", groups: "<group>team</group><group>Team</group>", want: []string{"Team", "team"}},
		{name: "other children ignored", groups: "<group>A</group><foo>B</foo><group xmlns='urn:example'>C</group>", want: []string{"A"}},
		{name: "duplicate", groups: "<group>A</group><group>B</group><group>A</group>", cond: stanza.BadRequest},
		{name: "empty", groups: "<group>A</group><group></group>", cond: stanza.NotAcceptable},
		{name: "longest allowed", groups: "<group>" + strings.Repeat("g", maxGroupLength) + "</group>", want: []string{strings.Repeat("g", maxGroupLength)}},
		{name: "too long", groups: "<group>" + strings.Repeat("g", maxGroupLength+1) + "</group>", cond: stanza.NotAcceptable},
		{name: "most allowed", groups: strings.Join(many[:maxGroups], ""), want: names[:maxGroups]},
		{name: "too many", groups: strings.Join(many, ""), cond: stanza.NotAcceptable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			item, err := router.ParseElement([]byte("<item xmlns='"+NS+"' jid='bob@localhost'>"+tc.groups+"</item>"), router.NSClient)
			if err != nil {
				t.Fatal(err)
			}
			got, cond := parseGroups(item)
			if cond != tc.cond {
				t.Fatalf("condition %q, want %q", cond, tc.cond)
			}
			if cond == "" && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("groups %q, want %q", got, tc.want)
			}
		})
	}
}
