package disco

import (
	"cmp"
	"crypto/sha1"
	"encoding/base64"
	"slices"
	"strings"

	"github.com/xmppd/xmppd/router"
)

// Entity capabilities (XEP-0115) of the server itself: a <c/> in the
// stream features offered after authentication, whose ver is the hash of
// the server's disco#info, so that a client which has seen this ver before
// need not ask disco#info again at every login.
const (
	// NSCaps is the namespace of XEP-0115.
	NSCaps = "http://jabber.org/protocol/caps"
	// CapsNode names the software in the caps node attribute (XEP-0115
	// §4: a URL where a user finds out about it): the project's home,
	// which is also its Go module path.
	CapsNode = "https://github.com/xmppd/xmppd"
	// nsData is the namespace of XEP-0004 data forms, the XEP-0128
	// extended information in a disco#info answer.
	nsData = "jabber:x:data"
)

// capsCache is the ver last computed, with the router's feature
// generation it was computed under.
type capsCache struct {
	generation uint64
	ver        string
}

// capsVer returns the ver of the server's disco#info. It is hashed again
// only after a module added or removed a feature, so a login costs an
// atomic load. The server's answer is the same on every served domain (the
// router keeps features per target, not per domain), so one ver serves
// all.
func (d *Disco) capsVer() string {
	gen := d.h.Router().FeatureGeneration()
	if c := d.caps.Load(); c != nil && c.generation == gen {
		return c.ver
	}
	// Read after gen: if features change meanwhile, the next call sees a
	// newer generation and computes again.
	ver := Ver(d.infoQuery(router.ToServer))
	d.caps.Store(&capsCache{generation: gen, ver: ver})
	return ver
}

// capsFeature is the <c/> stream feature (XEP-0115 §6.3) for a client
// authenticated on domain.
func (d *Disco) capsFeature(string) *router.Element {
	return router.NewElement(NSCaps, "c", "hash", "sha-1", "node", CapsNode, "ver", d.capsVer())
}

// capsNode is the disco node NODE#VER that the server answers like plain
// disco#info (XEP-0115 §6.2).
func (d *Disco) capsNode() string { return CapsNode + "#" + d.capsVer() }

// identity is one disco#info identity, as XEP-0115 §5.1 sorts it.
type identity struct{ category, typ, lang, name string }

// Ver is the XEP-0115 §5.1 verification string (hash sha-1) of a
// disco#info <query/>: its identities, features and XEP-0128 forms. The
// XEP prescribes no escaping: S is built from attribute values and
// character data as they are, each followed by '<'. A form without a
// FORM_TYPE is left out, as §5.4 has receivers ignore it.
func Ver(q *router.Element) string {
	var ids []identity
	var features []string
	var forms []*router.Element
	for _, c := range q.Elements() {
		switch {
		case c.Name.Space == NSInfo && c.Name.Local == "identity":
			ids = append(ids, identity{c.Get("category"), c.Get("type"), xmlLang(c), c.Get("name")})
		case c.Name.Space == NSInfo && c.Name.Local == "feature":
			features = append(features, c.Get("var"))
		case c.Name.Space == nsData && c.Name.Local == "x" && formType(c) != "":
			forms = append(forms, c)
		}
	}
	slices.SortFunc(ids, func(a, b identity) int {
		return cmp.Or(strings.Compare(a.category, b.category), strings.Compare(a.typ, b.typ),
			strings.Compare(a.lang, b.lang), strings.Compare(a.name, b.name))
	})
	slices.Sort(features)
	slices.SortFunc(forms, func(a, b *router.Element) int { return strings.Compare(formType(a), formType(b)) })

	var s strings.Builder
	add := func(parts ...string) {
		for _, p := range parts {
			s.WriteString(p)
		}
		s.WriteByte('<')
	}
	for _, id := range ids {
		add(id.category, "/", id.typ, "/", id.lang, "/", id.name)
	}
	for _, f := range features {
		add(f)
	}
	for _, form := range forms {
		writeForm(form, add)
	}
	sum := sha1.Sum([]byte(s.String()))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// writeForm adds a form to S: its FORM_TYPE, then each other field by var
// with its values sorted (XEP-0115 §5.1 step 7).
func writeForm(form *router.Element, add func(...string)) {
	add(formType(form))
	var fields []*router.Element
	for _, f := range form.Elements() {
		if f.Name.Local == "field" && f.Get("var") != "FORM_TYPE" {
			fields = append(fields, f)
		}
	}
	slices.SortStableFunc(fields, func(a, b *router.Element) int { return strings.Compare(a.Get("var"), b.Get("var")) })
	for _, f := range fields {
		add(f.Get("var"))
		values := fieldValues(f)
		slices.Sort(values)
		for _, v := range values {
			add(v)
		}
	}
}

// formType is the value of a form's FORM_TYPE field, "" if it has none.
func formType(form *router.Element) string {
	for _, f := range form.Elements() {
		if f.Name.Local == "field" && f.Get("var") == "FORM_TYPE" {
			if v := fieldValues(f); len(v) > 0 {
				return v[0]
			}
		}
	}
	return ""
}

func fieldValues(field *router.Element) []string {
	var out []string
	for _, v := range field.Elements() {
		if v.Name.Local == "value" {
			out = append(out, v.Text())
		}
	}
	return out
}

// xmlLang is an element's xml:lang, "" if it has none.
func xmlLang(e *router.Element) string {
	for _, a := range e.Attr {
		if a.Name.Local == "lang" && (a.Name.Space == "xml" || a.Name.Space == "http://www.w3.org/XML/1998/namespace") {
			return a.Value
		}
	}
	return ""
}
