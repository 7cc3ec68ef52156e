package offline

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/internal/routertest"
	"github.com/xmppd/xmppd/router"
)

// TestShouldStore checks XEP-0160 §3 and the XEP-0334 hints.
func TestShouldStore(t *testing.T) {
	const (
		active   = `<active xmlns="http://jabber.org/protocol/chatstates"/>`
		store    = `<store xmlns="urn:xmpp:hints"/>`
		noStore  = `<no-store xmlns="urn:xmpp:hints"/>`
		noPerm   = `<no-permanent-store xmlns="urn:xmpp:hints"/>`
		receipt  = `<received xmlns="urn:xmpp:receipts" id="x"/>`
		originID = `<origin-id xmlns="urn:xmpp:sid:0" id="o"/>`
	)
	for _, tc := range []struct {
		name string
		xml  string
		want bool
	}{
		{"no type", `<message><body>hi</body></message>`, true},
		{"normal", `<message type="normal"><body>hi</body></message>`, true},
		{"chat", `<message type="chat"><body>hi</body></message>`, true},
		{"unknown type is normal", `<message type="bogus"><body>hi</body></message>`, true},
		{"groupchat", `<message type="groupchat"><body>hi</body></message>`, false},
		{"headline", `<message type="headline"><body>news</body></message>`, false},
		{"error", `<message type="error"><body>hi</body></message>`, false},
		{"chat state only", `<message type="chat">` + active + `</message>`, false},
		{"composing only", `<message type="chat"><composing xmlns="http://jabber.org/protocol/chatstates"/></message>`, false},
		{"chat state with thread, hint and origin-id", `<message type="chat">` + active + `<thread>t</thread>` + noPerm + originID + `</message>`, false},
		{"normal chat state only", `<message>` + active + `</message>`, false},
		{"chat state with body", `<message type="chat"><body>hi</body>` + active + `</message>`, true},
		{"chat state with subject", `<message>` + active + `<subject>s</subject></message>`, true},
		{"chat state with receipt", `<message type="chat">` + active + receipt + `</message>`, true},
		{"receipt only", `<message>` + receipt + `</message>`, true},
		{"empty message", `<message/>`, true},
		{"no-store", `<message type="chat"><body>otr</body>` + noStore + `</message>`, false},
		{"no-permanent-store still stored offline", `<message type="chat"><body>otr</body>` + noPerm + `</message>`, true},
		{"store on headline", `<message type="headline"><body>news</body>` + store + `</message>`, true},
		{"store on chat state", `<message type="chat">` + active + store + `</message>`, true},
		{"store on error", `<message type="error"><body>x</body>` + store + `</message>`, false},
		{"no-store wins over store", `<message><body>x</body>` + store + noStore + `</message>`, false},
		{"hint in another namespace ignored", `<message type="headline"><body>x</body><store xmlns="urn:example"/></message>`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := shouldStore(routertest.Stanza(t, tc.xml)); got != tc.want {
				t.Errorf("shouldStore = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestStamped checks the XEP-0203 delay added to stored messages.
func TestStamped(t *testing.T) {
	now := time.Date(2002, 9, 10, 23, 8, 25, 123456789, time.FixedZone("X", 2*3600))
	for _, tc := range []struct {
		name string
		xml  string
		// wantStamps are the stamps of delays from localhost afterwards.
		wantStamps []string
		// otherDelays is the number of delays from others, kept.
		otherDelays int
	}{
		{"plain", `<message><body>hi</body></message>`, []string{"2002-09-10T21:08:25.123Z"}, 0},
		{"delay from someone else kept", `<message><body>hi</body><delay xmlns="urn:xmpp:delay" from="room@muc.example" stamp="2001-01-01T00:00:00Z"/></message>`,
			[]string{"2002-09-10T21:08:25.123Z"}, 1},
		{"our delay kept, not doubled", `<message><body>hi</body><delay xmlns="urn:xmpp:delay" from="localhost" stamp="2001-01-01T00:00:00Z"/></message>`,
			[]string{"2001-01-01T00:00:00Z"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := routertest.Stanza(t, tc.xml)
			before := st.String()
			out := stamped(st, "localhost", now)
			if st.String() != before {
				t.Errorf("the original was changed: %s", st)
			}
			var stamps []string
			others := 0
			for _, c := range out.Elements() {
				if c.Name.Space != NSDelay || c.Name.Local != "delay" {
					continue
				}
				if c.Get("from") == "localhost" {
					stamps = append(stamps, c.Get("stamp"))
				} else {
					others++
				}
			}
			if fmt.Sprint(stamps) != fmt.Sprint(tc.wantStamps) || others != tc.otherDelays {
				t.Errorf("delays from localhost %v and %d others, want %v and %d: %s", stamps, others, tc.wantStamps, tc.otherDelays, out)
			}
			if !strings.Contains(out.String(), `<delay xmlns="urn:xmpp:delay"`) {
				t.Errorf("delay not in the delay namespace: %s", out)
			}
		})
	}
}

// TestStoredRoundTrip checks that a stamped message survives being stored
// as XML and read back.
func TestStoredRoundTrip(t *testing.T) {
	st := routertest.Stanza(t, `<message from="bob@localhost/x" to="alice@localhost" type="chat" id="m1"><body>a &amp; b &lt;c&gt;</body><x xmlns="urn:example"><y a="1"/></x></message>`)
	out := stamped(st, "localhost", time.Now())
	back, err := parse(out.AppendXML(nil, router.NSClient))
	if err != nil {
		t.Fatal(err)
	}
	if back.String() != out.String() {
		t.Errorf("read back\n%s\nwant\n%s", back, out)
	}
	if back.Child("", "body").Text() != "a & b <c>" || back.From.String() != "bob@localhost/x" {
		t.Errorf("content or address lost: %s", back)
	}
}
