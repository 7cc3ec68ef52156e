package caps_test

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/xmppd/xmppd/internal/routertest"
	"github.com/xmppd/xmppd/modules/caps"
	"github.com/xmppd/xmppd/router"
)

func parse(t *testing.T, s string) *router.Element {
	t.Helper()
	e, err := router.ParseElement([]byte(s), router.NSClient)
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return e
}

// The XEP-0115 §5.2 and §5.3 examples. The XEP prints S with a
// non-breaking space in "Psi 0.11", but the disco#info it hashes (and
// the ver it gives) has a plain space.
const (
	simpleInfo = `<query xmlns='http://jabber.org/protocol/disco#info'>
		<identity category='client' name='Exodus 0.9.1' type='pc'/>
		<feature var='http://jabber.org/protocol/muc'/>
		<feature var='http://jabber.org/protocol/disco#info'/>
		<feature var='http://jabber.org/protocol/disco#items'/>
		<feature var='http://jabber.org/protocol/caps'/>
	</query>`
	simpleS = `client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<` +
		`http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<`
	simpleVer = "QgayPKawpkPSDYmwT/WM94uAlu0="

	complexInfo = `<query xmlns='http://jabber.org/protocol/disco#info' node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='>
		<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>
		<identity xml:lang='el' category='client' name='&#936; 0.11' type='pc'/>
		<feature var='http://jabber.org/protocol/caps'/>
		<feature var='http://jabber.org/protocol/disco#info'/>
		<feature var='http://jabber.org/protocol/disco#items'/>
		<feature var='http://jabber.org/protocol/muc'/>
		<x xmlns='jabber:x:data' type='result'>
			<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>
			<field var='ip_version' type='text-multi'><value>ipv4</value><value>ipv6</value></field>
			<field var='os'><value>Mac</value></field>
			<field var='os_version'><value>10.5.1</value></field>
			<field var='software'><value>Psi</value></field>
			<field var='software_version'><value>0.11</value></field>
		</x>
	</query>`
	complexS = "client/pc/el/\u03a8 0.11<client/pc/en/Psi 0.11<http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<" +
		"http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<urn:xmpp:dataforms:softwareinfo<" +
		"ip_version<ipv4<ipv6<os<Mac<os_version<10.5.1<software<Psi<software_version<0.11<"
	complexVer = "q07IKJEyjvHSyhy//CH0CxmKi8w="
)

func sha256Of(s string) string {
	d := sha256.Sum256([]byte(s))
	return base64.StdEncoding.EncodeToString(d[:])
}

// TestVerificationString checks S and the hashes against the XEP's worked
// examples, and the order and raw characters S keeps.
func TestVerificationString(t *testing.T) {
	for _, tc := range []struct {
		name, info, wantS, wantVer string
	}{
		{"XEP-0115 §5.2 simple", simpleInfo, simpleS, simpleVer},
		{"XEP-0115 §5.3 complex", complexInfo, complexS, complexVer},
		{
			// Identities sort by category then type (not as joined
			// strings: "a-b/x" < "a/x" but "a" < "a-b"), then lang; an
			// escaped "&lt;" stays the four characters (§5.1 note),
			// "<" one.
			"identity order and raw characters", `<query xmlns='http://jabber.org/protocol/disco#info'>
				<identity category='a-b' type='x'/>
				<identity category='a' type='x' name='A &amp;lt;&lt;'/>
				<identity category='a' type='x' xml:lang='de' name='B'/>
				<feature var='urn:z'/><feature var='urn:a'/>
			</query>`,
			"a/x//A &lt;<<a/x/de/B<a-b/x//<urn:a<urn:z<", "",
		},
		{
			// Forms by FORM_TYPE, fields by var, values sorted; a form
			// without FORM_TYPE, or whose FORM_TYPE is not hidden, is
			// left out (§5.4 step 3.6).
			"forms", `<query xmlns='http://jabber.org/protocol/disco#info'>
				<identity category='server' type='im'/>
				<x xmlns='jabber:x:data' type='result'>
					<field var='zeta'><value>2</value><value>1</value></field>
					<field var='FORM_TYPE' type='hidden'><value>urn:b</value></field>
					<field var='alpha'><value>x</value></field>
				</x>
				<x xmlns='jabber:x:data' type='result'>
					<field var='FORM_TYPE'><value>urn:a</value></field>
					<field var='k'><value>v</value></field>
				</x>
				<x xmlns='jabber:x:data' type='result'><field var='nope'><value>ignored</value></field></x>
				<x xmlns='jabber:x:data' type='result'>
					<field var='FORM_TYPE' type='text-single'><value>urn:c</value></field>
				</x>
			</query>`,
			"server/im//<urn:a<k<v<urn:b<alpha<x<zeta<1<2<", "",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info := caps.ParseInfo(parse(t, tc.info))
			if s := info.VerificationString(); s != tc.wantS {
				t.Errorf("S = %q\nwant %q", s, tc.wantS)
			}
			if tc.wantVer != "" {
				if v := caps.Ver(info); v != tc.wantVer {
					t.Errorf("Ver = %s; the XEP says %s", v, tc.wantVer)
				}
				if v, ok := caps.VerHash(info, caps.SHA1); !ok || v != tc.wantVer {
					t.Errorf("VerHash(sha-1) = %s, %v; want %s", v, ok, tc.wantVer)
				}
			}
			if v, ok := caps.VerHash(info, caps.SHA256); !ok || v != sha256Of(tc.wantS) {
				t.Errorf("VerHash(sha-256) = %s, %v; want %s", v, ok, sha256Of(tc.wantS))
			}
			for _, h := range []string{"md5", "SHA-1", "sha3-256", ""} {
				if v, ok := caps.VerHash(info, h); ok {
					t.Errorf("VerHash(%q) = %s, true; want not supported", h, v)
				}
			}
		})
	}
}

// TestCheck checks the answers XEP-0115 §5.4 says not to verify.
func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name, info string
		ill        bool
	}{
		{"complex example", complexInfo, false},
		{"same identity twice", `<query xmlns='http://jabber.org/protocol/disco#info'>
			<identity category='client' type='pc' name='x'/><identity category='client' type='pc' name='x'/></query>`, true},
		{"same identity, other lang", `<query xmlns='http://jabber.org/protocol/disco#info'>
			<identity category='client' type='pc' name='x'/><identity xml:lang='de' category='client' type='pc' name='x'/></query>`, false},
		{"same feature twice", `<query xmlns='http://jabber.org/protocol/disco#info'>
			<feature var='urn:a'/><feature var='urn:a'/></query>`, true},
		{"same FORM_TYPE twice", `<query xmlns='http://jabber.org/protocol/disco#info'>
			<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:f</value></field></x>
			<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:f</value></field></x></query>`, true},
		{"FORM_TYPE with two values", `<query xmlns='http://jabber.org/protocol/disco#info'>
			<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:f</value><value>urn:g</value></field></x></query>`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := caps.ParseInfo(parse(t, tc.info)).Check()
			if got := errors.Is(err, caps.ErrIllFormed); got != tc.ill || (err != nil && !got) {
				t.Errorf("Check = %v; ill-formed %v", err, tc.ill)
			}
		})
	}
}

// TestFromPresence checks what is read of a presence's <c/>.
func TestFromPresence(t *testing.T) {
	long := make([]byte, 200)
	for i := range long {
		long[i] = 'A'
	}
	for _, tc := range []struct {
		name, presence string
		want           caps.Caps
		ok, legacy     bool
	}{
		{"XEP-0115 §6.1", `<presence from='romeo@montague.lit/orchard'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://code.google.com/p/exodus' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>`,
			caps.Caps{Node: "http://code.google.com/p/exodus", Ver: "QgayPKawpkPSDYmwT/WM94uAlu0=", Hash: "sha-1"}, true, false},
		{"legacy: no hash", `<presence><c xmlns='http://jabber.org/protocol/caps' node='http://psi-im.org/caps' ver='0.11' ext='cs ep'/></presence>`,
			caps.Caps{Node: "http://psi-im.org/caps", Ver: "0.11"}, true, true},
		{"no ver", `<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n'/></presence>`, caps.Caps{}, false, false},
		{"ver too long", `<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='` + string(long) + `'/></presence>`, caps.Caps{}, false, false},
		{"other namespace", `<presence><c xmlns='urn:other' hash='sha-1' node='n' ver='v'/></presence>`, caps.Caps{}, false, false},
		{"no c", `<presence/>`, caps.Caps{}, false, false},
		{"not a presence", `<message><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/></message>`, caps.Caps{}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := caps.FromPresence(routertest.Stanza(t, tc.presence))
			if got != tc.want || ok != tc.ok || (ok && got.Legacy() != tc.legacy) {
				t.Errorf("FromPresence = %+v, %v (legacy %v); want %+v, %v (legacy %v)", got, ok, got.Legacy(), tc.want, tc.ok, tc.legacy)
			}
		})
	}
	if n := (caps.Caps{Node: "http://code.google.com/p/exodus", Ver: simpleVer}).QueryNode(); n != "http://code.google.com/p/exodus#"+simpleVer {
		t.Errorf("QueryNode = %s", n)
	}
}

// TestFeatures checks the set.
func TestFeatures(t *testing.T) {
	f := caps.NewFeatures("urn:b", "urn:a", "urn:b", "urn:xmpp:avatar:metadata+notify")
	if f.Len() != 3 || !f.Has("urn:a") || !f.Has("urn:xmpp:avatar:metadata+notify") || f.Has("urn:c") {
		t.Errorf("features %v", f.List())
	}
	l := f.List()
	l[0] = "changed"
	if !f.Has("urn:a") {
		t.Error("List shares the set's slice")
	}
}
